"""The secret scan itself: the index finds what it must, and the plugin fails a session that leaks."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from security.scanner import BLOCK, SecretIndex

TESTS = Path(__file__).resolve().parents[1]


def test_index_finds_secrets_wherever_they_sit():
    token = secrets.token_hex(32)
    jwt = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + secrets.token_urlsafe(60) + "." + secrets.token_urlsafe(32)
    )
    signature = "ab+/cd" + secrets.token_urlsafe(30) + "=="
    short_but_counted = "looker-secret"  # 13 chars: below the block size, checked directly
    index = SecretIndex()
    for value, kind in (
        (token, "refresh_token"),
        (jwt, "access_token"),
        (signature, "webhook_signature"),
        (short_but_counted, "looker_client_secret"),
        ("seven77", "too_short"),
    ):
        index.add(value, kind)
    assert len(index) == 4  # under 8 characters is not a secret worth scanning for

    for offset in range(2 * BLOCK):  # every alignment against the text's blocks
        text = "x" * offset + "glued" + token + "glued"
        assert index.find(text) == [("refresh_token", 1)], offset
    assert index.find(f"line one\nAuthorization: Bearer {jwt}\n") == [("access_token", 2)]
    assert index.find(f"sig={quote(signature, safe='')}") == [("webhook_signature", 1)]
    assert index.find(f"secret={short_but_counted}") == [("looker_client_secret", 1)]
    assert index.find("seven77 " + token[:-1]) == []  # a short value and a partial token are not leaks
    long_text = ("filler " * 400_000) + "\n" + token  # spans several scan chunks
    assert index.find(long_text) == [("refresh_token", 2)]
    # a JWT header shared by every access token never makes an unrelated one match
    assert index.find(jwt.split(".")[0] + ".nothing") == []


@pytest.mark.parametrize("workers", [[], ["-p", "xdist.plugin", "-n", "2"]], ids=["serial", "xdist"])
def test_plugin_fails_a_leaking_session_and_names_test_and_kind_never_the_value(tmp_path, workers):
    """Also under pytest-xdist (the test command runs the suite with workers): the controller scans
    what the workers' tests issued, printed and saved."""
    leaked = {
        "printed": secrets.token_hex(20),
        "logged": secrets.token_hex(20),
        "saved": secrets.token_hex(20),
        "other_process": secrets.token_hex(20),
        "in_a_data_file": secrets.token_hex(20),
    }
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(f"""
        import logging, os
        from freshbooks_emulator import issued_secrets
        from security.outputs import save_output

        def test_prints():
            print("token:", issued_secrets.record("access_token", "{leaked["printed"]}"))

        def test_logs():
            logging.getLogger("x").warning("refresh %s", issued_secrets.record("refresh_token", "{leaked["logged"]}"))

        def test_saves_subprocess_output():
            save_output("a child's stderr", "code=" + issued_secrets.record("authorization_code", "{leaked["saved"]}"))

        def test_secret_from_another_process():
            with open(os.environ[issued_secrets.ENV_VAR], "a") as fh:  # what an emulator process appends
                fh.write("callback_verifier\\t{leaked["other_process"]}\\n")
            print("{leaked["other_process"]}")

        def test_data_file_is_not_output(tmp_path):
            (tmp_path / "config.json").write_text(issued_secrets.record("client_secret", "{leaked["in_a_data_file"]}"))

        def test_short_values_are_ignored():
            print(issued_secrets.record("client_secret", "abc1234"))
    """)
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    for name in ("FRESHBOOKS_EMULATOR_SECRETS_FILE", "FRESHBOOKS_TEST_OUTPUT_DIR", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "security.plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            *workers,
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output  # every inner test passed; the leak alone fails the session
    assert "6 passed" in output
    assert "test_inner.py::test_prints: access_token in Captured stdout call (line 1)" in output
    assert "test_inner.py::test_logs: refresh_token in Captured log call" in output
    assert (
        'test_inner.py::test_saves_subprocess_output: authorization_code in saved output "a child\'s stderr"'
        in output
        or "test_inner.py::test_saves_subprocess_output: authorization_code in saved output 'a child"
        in output
    )
    assert (
        "test_inner.py::test_secret_from_another_process: callback_verifier in Captured stdout call" in output
    )
    assert "test_data_file_is_not_output" not in output and "test_short_values_are_ignored" not in output
    assert output.count("LEAK ") == 4
    for value in leaked.values():
        assert value not in output  # the report never repeats a secret


def test_an_emulator_process_appends_what_it_issues_to_the_named_file(tmp_path):
    from freshbooks_emulator import issued_secrets

    secrets_file, state = tmp_path / "issued.tsv", tmp_path / "emu.json"
    env = {**os.environ, "PYTHONPATH": str(TESTS), issued_secrets.ENV_VAR: str(secrets_file)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "freshbooks_emulator",
            "serve",
            "--port",
            "0",
            "--seed",
            "empty",
            "--client-secret",
            "process-client-secret",
            "--state-file",
            str(state),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not state.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "emulator process did not start"
            time.sleep(0.05)
        grant = json.loads(state.read_text())["grant"]
    finally:
        proc.terminate()
        proc.wait(10)
    recorded, _ = issued_secrets.read_file(secrets_file)
    assert recorded[grant["access_token"]] == "access_token"
    assert recorded[grant["refresh_token"]] == "refresh_token"
    assert recorded["process-client-secret"] == "client_secret"
