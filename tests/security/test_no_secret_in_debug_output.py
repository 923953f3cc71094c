"""Every secret-bearing path, with DEBUG logging on everywhere, and not one secret in the output.

One scenario drives them in order against the FreshBooks emulator and the fake Looker:
``auth login`` (paste path), a tap run that refreshes after a 401 mid-run, the bridge's ``register``
(callback verification), a signed webhook, a tampered one and a forged verification, a tap run on a
revoked grant, and a Looker datagroup refresh (also with a wrong secret). Everything any of them
printed or logged (in this process at DEBUG, in the subprocesses with DEBUG log configs) is joined
and searched for every secret issued meanwhile, plus the encryption key and the test's own forgeries.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from conftest import ROOT, TEST_FERNET_KEY, app_config
from freshbooks_emulator import issued_secrets
from freshbooks_emulator.webhooks import sign_webhook
from security.outputs import save_output
from security.scanner import SecretIndex

for _path in (ROOT / "webhook-bridge", ROOT / "tests" / "looker"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from fake_looker import FakeLooker  # noqa: E402

from bridge.helpers import BridgeServer, bridge_env, fake_meltano, wait_for  # noqa: E402

EXPECTED_KINDS = {
    "client_secret",
    "access_token",
    "refresh_token",
    "authorization_code",
    "callback_verifier",
    "webhook_signature",
    "looker_client_secret",
    "looker_access_token",
}
DEBUG_LOG_CONFIG = """version: 1
disable_existing_loggers: false
formatters:
  plain:
    format: "%(asctime)s %(levelname)s %(name)s %(message)s"
handlers:
  stderr:
    class: logging.StreamHandler
    formatter: plain
    stream: ext://sys.stderr
root:
  level: DEBUG
  handlers: [stderr]
"""


class Transcript:
    """Everything the scenario printed or logged, labelled by where it came from."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []

    def add(self, label: str, text: str) -> str:
        self.parts.append((label, text))
        save_output(f"debug scenario: {label}", text)
        return text

    def text(self) -> str:
        return "\n".join(f"===== {label}\n{text}" for label, text in self.parts)


def silent_get(url: str) -> tuple[int, dict[str, str]]:
    """The user's browser, without logging (http.client), so only the product's own logs are judged."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


def silent_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture
def debug_logs():
    """Root logger at DEBUG into a buffer, for the in-process parts (login, Looker)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def tap_env(log_config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_FRESHBOOKS")}
    env["SINGER_SDK_LOG_CONFIG"] = str(log_config)
    env["LOGLEVEL"] = "DEBUG"
    return env


def expire_tokens_after(emu, api_requests: int) -> threading.Thread:
    """Expire every access token server-side once the tap has made ``api_requests`` API calls."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            calls = [e for e in emu.request_log if "/oauth/token" not in e[1] and "/_emulator" not in e[1]]
            if len(calls) >= api_requests:
                emu.expire_access_tokens()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_no_secret_in_any_output_of_any_secret_bearing_path(emulator, tmp_path, debug_logs, capsys):
    from freshbooks_auth.login import login_command
    from freshbooks_auth.token_store import TokenStore
    from freshbooks_looker.looker_api import Settings as LookerSettings
    from freshbooks_looker.looker_api import refresh as looker_refresh

    already_issued = set(issued_secrets.issued())
    out = Transcript()
    log_config = tmp_path / "debug-logging.yml"
    log_config.write_text(DEBUG_LOG_CONFIG)
    config = {**app_config(emulator, tmp_path), "max_request_tries": 10}
    account = emulator.accounts[0]["account_id"]
    config["account_ids"] = [account]

    # 1. auth login, paste path -------------------------------------------------------------------
    printed: list[str] = []

    def paste(_prompt: str) -> str:
        url = next(w for line in printed for w in line.split() if "/oauth/authorize?" in w)
        status, headers = silent_get(url)
        assert status == 302
        return headers["Location"]

    assert login_command(config, paste=True, input_fn=paste, output=printed.append) == 0
    out.add("auth login (printed)", "\n".join(printed))
    store = TokenStore(config["token_store_path"], TEST_FERNET_KEY)
    assert store.load() is not None

    # 2. tap run: the access token dies server-side mid-run -> 401 -> refresh -> the run completes -----
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    emulator.clear_log()
    watcher = expire_tokens_after(emulator, api_requests=6)
    run = subprocess.run(
        [sys.executable, "-m", "tap_freshbooks", "--config", str(config_path)],
        env=tap_env(log_config),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    watcher.join(5)
    out.add("tap run with a 401 mid-run (stdout)", run.stdout)
    out.add("tap run with a 401 mid-run (stderr)", run.stderr)
    assert run.returncode == 0, run.stderr[-3000:]
    assert " DEBUG " in run.stderr  # DEBUG logging really was on
    log = emulator.request_log
    assert any(status == 401 for _, _, status in log), "no 401 happened mid-run"
    assert sum(1 for _, path, _ in log if path.endswith("/oauth/token")) >= 1, "no refresh happened"

    # 3. webhook bridge: register (verification handshake), a signed event, a tampered one, a forgery --
    bridge_vars = {
        "api_url": emulator.url,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "token_store_path": config["token_store_path"],
        "token_encryption_key": TEST_FERNET_KEY,
        "meltano_executable": fake_meltano(tmp_path),
        "account_ids": account,
        "log_level": "DEBUG",
    }
    server = BridgeServer(bridge_env(tmp_path, **bridge_vars), log_path=tmp_path / "bridge.log")
    server.start()
    try:
        env = {**server.env, "WEBHOOK_BRIDGE_PUBLIC_URL": server.url}
        reg = subprocess.run(
            [
                sys.executable,
                "-m",
                "webhook_bridge",
                "register",
                "--events",
                "invoice.update",
                "--wait",
                "20",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out.add("webhook-bridge register", reg.stdout + reg.stderr)
        assert reg.returncode == 0, reg.stdout + reg.stderr
        callback = next(c for c in emulator.callbacks if c["account_id"] == account)
        assert callback["verified"]
        invoice_id = emulator.truth("invoices", account)[0]["id"]
        assert emulator.deliver_event(account, "invoice.update", invoice_id) == [200]

        fields = [
            ("name", "invoice.update"),
            ("object_id", str(invoice_id)),
            ("account_id", account),
            ("business_id", str(emulator.accounts[0]["business_id"])),
            ("identity_id", "1"),
            ("user_id", "1"),
        ]
        good = sign_webhook(fields, callback["verifier"])
        tampered = [(k, "999999" if k == "object_id" else v) for k, v in fields]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (
            silent_post(
                server.url + "/webhooks/freshbooks",
                urlencode(tampered).encode(),
                {**form, "X-FreshBooks-Hmac-SHA256": good},
            )
            == 401
        )
        forged_verifier = "ForgedVerifier" + "x" * 19
        forged = [
            ("name", "callback.verify"),
            ("object_id", "424242"),
            ("verifier", forged_verifier),
            ("account_id", account),
        ]
        silent_post(server.url + "/webhooks/freshbooks", urlencode(forged).encode(), form)
        wait_for(lambda: "event queued" in server.logs(), message="the signed event to be queued")
    finally:
        server.stop()
    out.add("webhook-bridge serve log", server.logs())
    for run_log in sorted((tmp_path / "data" / "runs").glob("*.log")):
        out.add(f"bridge run {run_log.name}", run_log.read_text(errors="replace"))
    assert '"level": "debug"' in server.logs()  # the bridge really logged at DEBUG

    # 4. the grant is revoked: the next run fails in one line naming auth login -----------------------
    emulator.revoke_grant()
    emulator.expire_access_tokens()
    revoked = subprocess.run(
        [sys.executable, "-m", "tap_freshbooks", "--config", str(config_path)],
        env=tap_env(log_config),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out.add("tap run on a revoked grant (stdout)", revoked.stdout)
    out.add("tap run on a revoked grant (stderr)", revoked.stderr)
    assert revoked.returncode != 0
    assert "auth login" in revoked.stderr.strip().splitlines()[-1]

    # 5. Looker: datagroup refresh, then a wrong secret ------------------------------------------------
    looker = FakeLooker(client_secret="looker-secret-" + os.urandom(8).hex()).start()
    try:
        messages: list[str] = []
        settings = LookerSettings.from_env(
            {
                "FRESHBOOKS_LOOKER_BASE_URL": looker.url,
                "FRESHBOOKS_LOOKER_CLIENT_ID": looker.client_id,
                "FRESHBOOKS_LOOKER_CLIENT_SECRET": looker.client_secret,
            }
        )
        assert looker_refresh(settings, messages.append) == 0
        wrong = LookerSettings.from_env(
            {
                "FRESHBOOKS_LOOKER_BASE_URL": looker.url,
                "FRESHBOOKS_LOOKER_CLIENT_ID": looker.client_id,
                "FRESHBOOKS_LOOKER_CLIENT_SECRET": "wrong-" + looker.client_secret,
            }
        )
        assert looker_refresh(wrong, messages.append) == 1
        out.add("freshbooks-looker refresh", "\n".join(messages))
    finally:
        looker.stop()

    # the verdict -----------------------------------------------------------------------------------
    captured = capsys.readouterr()
    out.add("in-process stdout", captured.out)
    out.add("in-process stderr", captured.err)
    out.add("in-process DEBUG log", debug_logs.getvalue())
    assert "DEBUG urllib3" in debug_logs.getvalue()  # the in-process parts really logged at DEBUG

    issued_now = {v: k for v, k in issued_secrets.issued().items() if v not in already_issued}
    kinds = set(issued_now.values()) | {issued_secrets.issued()[emulator.client_secret]}  # fixed per emulator
    assert kinds >= EXPECTED_KINDS, sorted(kinds)
    index = SecretIndex()
    index.update(issued_secrets.issued())
    index.update(
        {
            TEST_FERNET_KEY: "token_encryption_key",
            good: "webhook_signature (test)",
            forged_verifier: "forged verifier",
            "wrong-" + looker.client_secret: "wrong looker secret",
        }
    )
    leaks = [(label, kind, line) for label, text in out.parts for kind, line in index.find(text)]
    assert leaks == [], f"secrets in the output (kind, line): {leaks}"
    print(f"{len(issued_now)} secrets issued by this scenario; {len(out.text())} chars of output checked")
