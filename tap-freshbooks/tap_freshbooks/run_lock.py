"""One pipeline lock for every way a run starts: the tap takes it, so no wrapper is needed.

Every run of the pipeline, whoever starts it (the webhook bridge, ``meltano schedule``, cron, a CI
job, a container), ends up as the tap syncing, so the tap is where the lock is taken: at the start
of a sync, before the first token refresh or API call. If another run of the same pipeline holds
it, this run stops at once with one line (exit 1, nothing extracted, nothing written):

    tap-freshbooks: another run of this pipeline is already running (...)

* **Key:** Meltano project id + environment + extractor name (from the ``MELTANO_*`` variables
  Meltano gives every plugin), so ``dev`` and ``demo`` never block each other but every ``dev`` run
  of this tap does, whichever loader it feeds.
* **Where:** ``pipeline_lock_url``. Default under Meltano: a file in the project's ``.meltano/run``
  (one machine). Runners that share no disk point it at shared storage: ``s3://bucket/prefix`` or
  ``postgresql://...`` (see :mod:`tap_freshbooks.run_lock_lease`). Outside Meltano the tap takes no
  lock unless ``pipeline_lock_url`` is set.
* **Held by** a small keeper process (:mod:`tap_freshbooks.run_lock_keeper`) until the tap *and*
  the Meltano process that started it are gone, which is also what makes a ``kill -9`` harmless:
  the keeper fails Meltano's orphaned job at once and frees the lease.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import subprocess
import sys
import threading
import typing as t
from pathlib import Path

from tap_freshbooks.errors import ConfigError, FreshBooksError

if t.TYPE_CHECKING:
    import logging

KEEPER_START_TIMEOUT = 60.0


class PipelineBusy(FreshBooksError):
    """Another run of the same pipeline holds the lock."""


def redact(url: str) -> str:
    """``url`` without a password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def lock_key(environ: t.Mapping[str, str]) -> str:
    """``<project id>.<environment>.<extractor>[.<state ID suffix>]``, safe as a file or object name.

    A run with a state ID suffix (``meltano run --state-id-suffix`` / ``MELTANO_RUN_STATE_ID_SUFFIX``,
    e.g. the replicated bridge's one pipeline per account) is its own pipeline, with its own lock.
    """
    parts: tuple[str, ...] = (
        environ.get("MELTANO_PROJECT_ID") or "no-project",
        environ.get("MELTANO_ENVIRONMENT") or "no-environment",
        environ.get("MELTANO_EXTRACTOR_NAME") or "tap-freshbooks",
    )
    if environ.get("MELTANO_RUN_STATE_ID_SUFFIX"):
        parts += (environ["MELTANO_RUN_STATE_ID_SUFFIX"],)
    return ".".join(re.sub(r"[^A-Za-z0-9_-]+", "-", p) for p in parts)


def lock_url(config: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> str | None:
    """The configured ``pipeline_lock_url``; under Meltano a file in the project's run dir."""
    url = str(config.get("pipeline_lock_url") or "").strip()
    if url:
        return url
    if not environ.get("MELTANO_PROJECT_ROOT"):
        return None
    sys_dir = environ.get("MELTANO_SYS_DIR_ROOT") or str(Path(environ["MELTANO_PROJECT_ROOT"]) / ".meltano")
    return str(Path(sys_dir) / "run" / "pipeline-locks")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _meltano_parent(environ: t.Mapping[str, str]) -> int | None:
    """The ``meltano`` process that started this tap, if any."""
    if not environ.get("MELTANO_PROJECT_ROOT"):
        return None
    parent = os.getppid()
    return parent if "meltano" in _cmdline(parent) else None


class HeldLock:
    """The lease held for this run by a keeper process; :meth:`done` lets it go once Meltano exits."""

    def __init__(self, keeper: subprocess.Popen[str], where: str, logger: logging.Logger) -> None:
        self.keeper = keeper
        self.where = where
        self.logger = logger
        threading.Thread(target=self._relay, daemon=True).start()
        atexit.register(self.done)

    def _relay(self) -> None:
        assert self.keeper.stdout is not None
        for line in self.keeper.stdout:
            with contextlib.suppress(ValueError):
                if json.loads(line).get("status") == "lost":
                    self.logger.error(
                        "pipeline lock %s was lost (no heartbeat for too long): stopping", self.where
                    )

    def done(self, *, wait: bool = False) -> None:
        """This tap is finished with the lock (the keeper still waits for Meltano to exit)."""
        stdin = self.keeper.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.keeper.wait(timeout=30)


def _first_line(keeper: subprocess.Popen[str]) -> dict[str, t.Any]:
    assert keeper.stdout is not None
    ready, _, _ = select.select([keeper.stdout], [], [], KEEPER_START_TIMEOUT)
    line = keeper.stdout.readline() if ready else ""
    try:
        answer: dict[str, t.Any] = json.loads(line)
        return answer
    except ValueError:
        keeper.kill()
        return {"status": "error", "message": "the lock keeper did not answer"}


def hold_pipeline_lock(
    config: t.Mapping[str, t.Any], logger: logging.Logger, environ: t.Mapping[str, str] | None = None
) -> HeldLock | None:
    """Take this pipeline's lock for the rest of the run (None: no lock configured)."""
    environ = os.environ if environ is None else environ
    url = lock_url(config, environ)
    if url is None:
        return None
    key = lock_key(environ)
    meltano_pid = _meltano_parent(environ)
    trigger = environ.get("MELTANO_JOB_TRIGGER")
    what = (
        f"meltano run ({trigger})"
        if meltano_pid and trigger
        else ("meltano" if meltano_pid else "tap-freshbooks")
    )
    params = {
        "url": url,
        "key": key,
        "what": what,
        "pipeline_pid": meltano_pid,
        "meltano_database_uri": environ.get("MELTANO_DATABASE_URI") if meltano_pid else None,
        "job_prefix": (
            f"{environ['MELTANO_ENVIRONMENT']}:{environ['MELTANO_EXTRACTOR_NAME']}-to-"
            if meltano_pid and environ.get("MELTANO_ENVIRONMENT") and environ.get("MELTANO_EXTRACTOR_NAME")
            else None
        ),
    }
    keeper = subprocess.Popen(
        [sys.executable, "-m", "tap_freshbooks.run_lock_keeper", json.dumps(params)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        close_fds=True,
        env=dict(environ),
    )
    answer = _first_line(keeper)
    status = answer.get("status")
    if status == "acquired":
        if answer.get("took_over"):
            logger.warning(
                "pipeline lock %s: took over from a run that is gone (%s)",
                answer.get("where"),
                answer["took_over"],
            )
        logger.info("pipeline lock %s held for this run", answer.get("where"))
        return HeldLock(keeper, str(answer.get("where")), logger)
    keeper.wait(timeout=30)
    for pipe in (keeper.stdin, keeper.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    if status == "busy":
        msg = (
            f"another run of this pipeline is already running ({answer.get('holder')}; lock "
            f"{answer.get('where')}); this run stopped before extracting anything and the next "
            "one resumes from the last finished run"
        )
        raise PipelineBusy(msg)
    msg = f"cannot take the pipeline lock at {redact(url)}: {answer.get('message', 'no answer')}"
    raise ConfigError(msg)
