"""pytest plugin: fail the run if any secret the emulators issued shows up in any test output.

Registered from ``tests/conftest.py`` (``pytest_plugins``). What it scans:

* every test report's captured sections (stdout, stderr, log, for setup, call and teardown) and the
  failure report (``longrepr``), when the report is made;
* at the end of the session, every output saved with ``security.outputs.save_output`` (what the
  subprocesses of the pipeline, tap and bridge tests printed).

What it looks for: every secret recorded in ``freshbooks_emulator.issued_secrets`` in this process, plus
those that emulators running as separate processes appended to the session's secrets file (the
``FRESHBOOKS_EMULATOR_SECRETS_FILE`` environment variable, set here so children inherit it).

Under pytest-xdist the controller process does all of it: workers inherit the secrets file and the
outputs folder, and the controller receives every report with its captured sections.

On a leak the session exits non-zero with one line per (test, output, kind of secret), never the
secret itself. Data files tests write on purpose are not outputs and are not scanned.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from freshbooks_emulator import issued_secrets
from security.outputs import OUTPUT_DIR_ENV
from security.scanner import Finding, SecretIndex


class SecretScan:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fb-secret-scan-"))
        os.chmod(self.root, 0o700)  # the secrets file below holds live test secrets
        self.outputs = self.root / "outputs"
        self.outputs.mkdir(mode=0o700)
        self.secrets_file = self.root / "issued-secrets.tsv"
        self.secrets_file.touch(mode=0o600)
        self._file_offset = 0
        self._memory_offset = 0
        self.index = SecretIndex()
        self.findings: list[Finding] = []
        self.texts_scanned = 0
        self.seconds = 0.0  # time spent scanning, in the summary line
        self._saved_env = {k: os.environ.get(k) for k in (issued_secrets.ENV_VAR, OUTPUT_DIR_ENV)}
        os.environ[issued_secrets.ENV_VAR] = str(self.secrets_file)
        os.environ[OUTPUT_DIR_ENV] = str(self.outputs)

    def close(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.root, ignore_errors=True)

    def refresh_index(self) -> None:
        from_memory, self._memory_offset = issued_secrets.issued_since(self._memory_offset)
        self.index.update(from_memory)
        from_file, self._file_offset = issued_secrets.read_file(self.secrets_file, self._file_offset)
        self.index.update(from_file)

    def scan(self, test: str, where: str, text: str) -> None:
        started = time.perf_counter()
        self.texts_scanned += 1
        for kind, line in self.index.find(text):
            finding = Finding(test, where, kind, line)
            if finding not in self.findings:
                self.findings.append(finding)
        self.seconds += time.perf_counter() - started

    def scan_report(self, report: pytest.TestReport) -> None:
        self.refresh_index()
        for title, content in report.sections:
            if title.endswith(report.when):  # later phases repeat earlier sections: scan each once
                self.scan(report.nodeid, title, content)
        if report.failed and report.longrepr is not None:
            self.scan(report.nodeid, f"failure report ({report.when})", str(report.longrepr))

    def scan_saved_outputs(self) -> None:
        self.refresh_index()
        for path in sorted(self.outputs.glob("*.json")):
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            self.scan(
                saved.get("test", "?"),
                f"saved output {saved.get('name', path.name)!r}",
                saved.get("text", ""),
            )


_SCAN = pytest.StashKey[SecretScan]()
_ACTIVE: list[SecretScan] = []  # the session's scan, for hooks that get no config


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        # A pytest-xdist worker: the controller scans. The worker inherited the controller's secrets
        # file and outputs folder through the environment, so every secret issued here (``record``
        # appends to the file) and every saved output reaches the controller's scan, and the reports
        # the controller receives carry their captured sections.
        return
    scan = SecretScan()
    config.stash[_SCAN] = scan
    _ACTIVE.append(scan)


def pytest_unconfigure(config: pytest.Config) -> None:
    scan = config.stash.get(_SCAN, None)
    if scan is not None:
        scan.close()
        _ACTIVE.remove(scan)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _ACTIVE:
        _ACTIVE[-1].scan_report(report)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    scan = session.config.stash.get(_SCAN, None)
    if scan is None:
        return
    scan.scan_saved_outputs()
    if scan.findings and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    scan = config.stash.get(_SCAN, None)
    if scan is None:
        return
    if not scan.findings:
        terminalreporter.write_line(
            f"secret scan: no leak of {len(scan.index)} issued secrets in {scan.texts_scanned} outputs "
            f"({scan.seconds:.2f} s)"
        )
        return
    terminalreporter.section("secret leak scan", sep="=", red=True, bold=True)
    terminalreporter.write_line(
        f"{len(scan.findings)} output(s) contain a secret the emulators issued "
        f"(of {len(scan.index)} issued, {scan.texts_scanned} outputs scanned); the values are not shown:"
    )
    for finding in scan.findings:
        terminalreporter.write_line(f"  LEAK {finding.describe()}", red=True)
