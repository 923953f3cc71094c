"""Direct mode: the tap and the loader started from their plugin virtualenvs, Meltano kept warm.

``meltano run tap-freshbooks <loader>`` costs about 1.5 CPU-seconds of Meltano start-up, settings
resolution and state handling on every run, before the tap and the loader even start (measured:
``meltano --version`` alone takes 1.5 CPU-s on the development machine). A webhook run of a few
records pays that on every event. Direct mode pays it once:

* **Resolved once, re-resolved on change.** A long-lived helper process runs in Meltano's own
  interpreter (``meltano_service.py``) and hands over what ``meltano run`` would give each plugin:
  executable, config (``--dump=config``), environment and the tap's catalog with the project's
  ``select`` rules (``--dump=catalog``). The bridge caches it and asks again when ``meltano.yml``,
  one of its ``include_paths`` or ``.env`` changed (size or modification time), or the bridge's
  settings name another extractor, loader or environment.
* **State through Meltano's state backend**, same state ID as ``meltano run``
  (``<environment>:<extractor>-to-<loader>``), through ``StateService`` in the helper: read before
  the run, the last STATE the loader emitted written after it, exactly as ``meltano run`` stores it.
  Polls (``meltano run`` or direct) and webhook runs therefore share the bookmarks and the change
  ledger.
* **One small supervisor per run** (``meltano_pipeline.py``), started before the run is due with
  the tap and the loader already importing themselves (``warm_start.py``; ``parked.ParkedRuns``),
  pipes the tap into the loader and reports the exit codes and the last state; the bridge saves
  that state before the supervisor exits, so the tap's pipeline lock covers the whole run.

A webhook run's settings (``record_ids``, ``event_received_at``, ``account_ids``) go into the
tap's config file, and the stream selection into its catalog, instead of ``TAP_FRESHBOOKS_*``
variables and ``_select_filter`` for Meltano to apply.

When direct mode cannot be used (no ``meltano`` whose interpreter can be found, the helper cannot
open the project, a plugin is not installed, a container plugin), the runner logs why once and
falls back to ``meltano run`` for that run (``run_mode=meltano`` chooses that always).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import os
import sys
import time
import typing as t
from pathlib import Path

from webhook_bridge.commands import resolve_executable, without_bridge_variables
from webhook_bridge.logs import log
from webhook_bridge.spawn import PIPE, Child, spawn

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from webhook_bridge.settings import Settings

LOGGER = logging.getLogger("webhook_bridge.direct")
SERVICE_SCRIPT = Path(__file__).with_name("meltano_service.py")
WARM_START = Path(__file__).with_name("warm_start.py")
SERVICE_START_TIMEOUT = 120.0
#: Lines at least this long are decoded in a worker thread (``decode_line``): a state with its change
#: ledger is megabytes for a large account (2.2 MB at 100,000 invoices), and decoding and encoding it
#: took 73 + 171 ms here, while the event loop acknowledged no delivery.
OFF_LOOP_BYTES = 64 * 1024
RESOLVE_TIMEOUT = 600.0  # a first catalog discovery on a busy machine
STATE_TIMEOUT = 120.0
JOB_TRIGGER = "webhook-bridge"


class DirectUnavailable(RuntimeError):
    """Direct mode cannot run here; ``str(err)`` says why in one line."""


def suffixed_state_id(state_id: str, suffix: str | None) -> str:
    """``<environment>:<extractor>-to-<loader>[:<suffix>]``, as ``meltano run --state-id-suffix``."""
    if not suffix:
        return state_id
    if ":" in suffix:
        raise ValueError(f"a state ID suffix cannot contain ':' ({suffix!r})")
    return f"{state_id}:{suffix}"


def meltano_python(meltano: str) -> str:
    """The interpreter that runs the ``meltano`` executable (from its ``#!`` line)."""
    return script_python(meltano)


def script_python(executable: str) -> str:
    """The Python interpreter of a console script (from its ``#!`` line)."""
    try:
        with Path(executable).resolve().open("rb") as fh:
            first = fh.readline(512)
    except OSError as exc:
        raise DirectUnavailable(f"cannot read {executable}: {exc.strerror or exc}") from None
    parts = first[2:].decode(errors="replace").split() if first.startswith(b"#!") else []
    if not parts:
        raise DirectUnavailable(
            f"{executable} is not a Python script (no #! line); cannot find its interpreter"
        )
    interpreter = parts[-1] if Path(parts[0]).name == "env" and len(parts) > 1 else parts[0]
    if "python" not in Path(interpreter).name:
        raise DirectUnavailable(
            f"{executable} is not run by Python ({interpreter}); cannot find its interpreter"
        )
    return interpreter


def _stamp(paths: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((p, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p, -1, -1))
    return tuple(out)


@dataclasses.dataclass
class Resolved:
    """What the helper answered for one (extractor, loader)."""

    data: dict[str, t.Any]
    stamp: tuple[tuple[str, int, int], ...]
    resolved_at: float

    @property
    def state_id(self) -> str:
        return str(self.data["state_id"])

    def fresh(self) -> bool:
        return _stamp([s[0] for s in self.stamp]) == self.stamp


class MeltanoService:
    """Client of ``meltano_service.py`` (one request at a time, restarted when stale or dead)."""

    def __init__(self, settings: Settings, environ: Mapping[str, str], log_path: Path) -> None:
        self.settings = settings
        self.environ = dict(environ)
        self.log_path = log_path
        self._proc: Child | None = None
        self._lock = asyncio.Lock()
        self.resolved: Resolved | None = None
        self.starts = 0

    async def _start(self) -> None:
        meltano = resolve_executable(self.settings.meltano_executable, self.settings.project_root)
        python = meltano_python(meltano)
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = [
            python,
            str(SERVICE_SCRIPT),
            str(self.settings.project_root),
            self.settings.meltano_environment or "",
        ]
        with self.log_path.open("ab") as err:
            try:
                proc = await spawn(
                    args,
                    cwd=self.settings.project_root,
                    env=self.environ,
                    stdin=PIPE,
                    stdout=PIPE,
                    stderr=err,
                    limit=64 * 1024 * 1024,
                )
            except OSError as exc:
                raise DirectUnavailable(
                    f"cannot start Meltano's interpreter {python}: {exc.strerror or exc}"
                ) from None
        self.starts += 1
        self._proc = proc
        hello = await self._read(SERVICE_START_TIMEOUT)
        if not hello.get("ready"):
            await self.close()
            raise DirectUnavailable(str(hello.get("error") or "the Meltano helper did not start"))

    async def _read(self, timeout: float) -> dict[str, t.Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        except TimeoutError:
            await self.close()
            raise DirectUnavailable(f"the Meltano helper did not answer within {timeout:g} s") from None
        if not line:
            code = await self._proc.wait()
            self._proc = None
            raise DirectUnavailable(f"the Meltano helper exited (code {code}); its log: {self.log_path}")
        answer: dict[str, t.Any] = await decode_line(line)
        return answer

    async def request(self, message: dict[str, t.Any], *, timeout: float) -> dict[str, t.Any]:
        async with self._lock:
            if self._proc is None or self._proc.returncode is not None:
                await self._start()
            assert self._proc is not None and self._proc.stdin is not None
            try:
                # in a worker thread: state_set carries the state (see OFF_LOOP_BYTES)
                self._proc.stdin.write(await asyncio.to_thread(encode_line, message))
                await self._proc.stdin.drain()
                answer = await self._read(timeout)
            except BaseException:
                # cancelled or broken half-way: the next answer on the pipe would be this one's
                await asyncio.shield(self.close())
                raise
        if "error" in answer:
            raise DirectUnavailable(f"Meltano: {answer['error']}")
        return answer

    async def resolve(self) -> Resolved:
        """The plugins' resolved settings (cached until a watched file changes)."""
        if self.resolved is not None and self.resolved.fresh():
            return self.resolved
        if self.resolved is not None:
            log(LOGGER, logging.INFO, "Meltano project changed: resolving the plugins again")
            await self.close()  # a fresh helper reads the changed project
        started = time.monotonic()
        data = await self.request(
            {"op": "resolve", "extractor": self.settings.extractor, "loader": self.settings.loader},
            timeout=RESOLVE_TIMEOUT,
        )
        for kind in ("extractor", "loader"):
            exe = data[kind]["executable"]
            if os.sep not in exe or not Path(exe).exists():
                raise DirectUnavailable(
                    f"the {kind} {data[kind]['name']} is not installed at {exe} (run meltano install)"
                )
        self.resolved = Resolved(data, _stamp(data["watch"]), time.time())
        log(
            LOGGER,
            logging.INFO,
            "Meltano plugins resolved for direct runs",
            state_id=self.resolved.state_id,
            extractor=data["extractor"]["name"],
            loader=data["loader"]["name"],
            duration_s=round(time.monotonic() - started, 3),
        )
        return self.resolved

    async def state_get(self, state_id: str) -> dict[str, t.Any]:
        answer = await self.request({"op": "state_get", "state_id": state_id}, timeout=STATE_TIMEOUT)
        state: dict[str, t.Any] = answer["state"]
        return state

    async def state_set(self, state_id: str, state: dict[str, t.Any]) -> None:
        await self.request({"op": "state_set", "state_id": state_id, "state": state}, timeout=STATE_TIMEOUT)

    async def command(self, plugin: str, command: str) -> dict[str, t.Any]:
        return await self.request(
            {"op": "command", "plugin": plugin, "command": command}, timeout=RESOLVE_TIMEOUT
        )

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def decode_line(line: bytes) -> t.Any:
    """One JSON line from a helper or supervisor; a long one (a state) decoded off the event loop."""
    if len(line) < OFF_LOOP_BYTES:
        return json.loads(line)
    return await asyncio.to_thread(json.loads, line)


def encode_line(message: object) -> bytes:
    """One JSON line to a helper or supervisor (call it in a worker thread when it may be long)."""
    return json.dumps(message).encode() + b"\n"


# ================================================================================================
# one run's files


def select_streams(catalog: dict[str, t.Any], select: Sequence[str] | None) -> dict[str, t.Any]:
    """The catalog with every stream outside ``select`` deselected (Meltano's ``_select_filter``)."""
    if select is None:
        return catalog
    keep = set(select)
    out = copy.deepcopy(catalog)
    for stream in out.get("streams", []):
        if stream.get("tap_stream_id", stream.get("stream")) in keep:
            continue
        entries = stream.setdefault("metadata", [])
        top = next((m for m in entries if not m.get("breadcrumb")), None)
        if top is None:
            top = {"breadcrumb": [], "metadata": {}}
            entries.append(top)
        top.setdefault("metadata", {})["selected"] = False
    return out


def tap_config(
    resolved: Resolved,
    *,
    record_ids: Mapping[str, Sequence[int]] | None,
    event_received_at: Mapping[str, Mapping[str, str]] | None,
    account_ids: Sequence[str] | None,
) -> dict[str, t.Any]:
    """The tap's resolved config plus this run's settings (a poll: none of the webhook ones)."""
    config = dict(resolved.data["extractor"]["config"])
    for key in ("record_ids", "event_received_at"):
        config.pop(key, None)
    if record_ids is not None:
        config["record_ids"] = {k: list(v) for k, v in record_ids.items()}
        config["event_received_at"] = {k: dict(v) for k, v in (event_received_at or {}).items()}
    if account_ids is not None:
        config["account_ids"] = list(account_ids)
    return config


def plugin_env(
    base: Mapping[str, str], resolved_env: Mapping[str, str], files: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Meltano's environment for a plugin, without the bridge's own variables; ``files`` points
    the logging-config variables at this run's copies (absent ones are dropped: default logging)."""
    env = without_bridge_variables(resolved_env)
    for var in ("SINGER_SDK_LOG_CONFIG", "LOGGING_CONF_FILE"):
        if files is not None and var in files:
            env[var] = files[var]
        elif var in env and not os.path.isfile(env[var]):
            env.pop(var)
    for key, value in base.items():
        if key.startswith("PYTHON") and key not in env:
            env[key] = value
    env["MELTANO_JOB_TRIGGER"] = JOB_TRIGGER
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _write_text(path: Path, text: str) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return str(path)


def _write_private(path: Path, value: object) -> str:
    return _write_text(path, json.dumps(value))


def write_warm_spec(
    directory: Path, resolved: Resolved, base_env: Mapping[str, str], *, pass_fd: int | None
) -> Path:
    """The run supervisor's spec for this resolution: each plugin's Python, console script and
    environment (the same for every run), the logging configs, the run lock's descriptor."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    spec: dict[str, t.Any] = {"cwd": resolved.data["project_root"], "pass_fd": pass_fd}
    for kind, plugin in (("tap", resolved.data["extractor"]), ("target", resolved.data["loader"])):
        files = {
            var: _write_text(directory / f"{kind}.{var.lower()}.conf", text)
            for var, text in (plugin.get("files") or {}).items()
        }
        spec[kind] = {
            "python": script_python(plugin["executable"]),
            "script": plugin["executable"],
            "bootstrap": str(WARM_START),
            "env": plugin_env(base_env, plugin["env"], files),
        }
    return Path(_write_private(directory / "spec.json", spec))


def write_run_files(
    run_dir: Path,
    resolved: Resolved,
    *,
    state: dict[str, t.Any] | None,
    record_ids: Mapping[str, Sequence[int]] | None = None,
    event_received_at: Mapping[str, Mapping[str, str]] | None = None,
    select: Sequence[str] | None = None,
    account_ids: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """This run's config, catalog and state files (private); returns each plugin's arguments."""
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(run_dir, 0o700)
    tap, target = resolved.data["extractor"], resolved.data["loader"]
    tap_args = [
        "--config",
        _write_private(
            run_dir / "tap.config.json",
            tap_config(
                resolved, record_ids=record_ids, event_received_at=event_received_at, account_ids=account_ids
            ),
        ),
        "--catalog",
        _write_private(run_dir / "tap.catalog.json", select_streams(tap["catalog"], select)),
    ]
    singer_state = (state or {}).get("singer_state")
    if singer_state:
        tap_args += ["--state", _write_private(run_dir / "tap.state.json", singer_state)]
    target_args = ["--config", _write_private(run_dir / "target.config.json", target["config"])]
    return {"tap": tap_args, "target": target_args}


def supervisor_command(spec: Path) -> list[str]:
    return [sys.executable, "-m", "webhook_bridge.meltano_pipeline", str(spec)]


def undeclared_command(project_root: Path, plugin: str, command: str) -> str | None:
    """Why ``meltano invoke <plugin>:<command>`` cannot work in this project, or ``None``.

    Read from ``meltano.yml`` and its ``include_paths`` (``meltano`` mode has no Meltano helper to
    ask); a plugin without a ``commands`` list of its own (a Hub definition) is taken as having it.
    """
    import glob  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    # libyaml's parser where PyYAML has it (its wheels do): 6 ms instead of 77 ms for this project's
    # meltano.yml, read after every run in `meltano` mode, beside the deliveries being acknowledged
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        main = yaml.load((project_root / "meltano.yml").read_text(), Loader=loader) or {}
    except (OSError, yaml.YAMLError) as exc:
        return f"cannot read {project_root / 'meltano.yml'}: {exc}"
    files = [main]
    for pattern in main.get("include_paths") or []:
        for path in sorted(glob.glob(str(project_root / pattern))):
            with contextlib.suppress(OSError, yaml.YAMLError):
                files.append(yaml.load(Path(path).read_text(), Loader=loader) or {})
    for data in files:
        for plugins in (data.get("plugins") or {}).values():
            for entry in plugins or []:
                if isinstance(entry, dict) and entry.get("name") == plugin:
                    commands = entry.get("commands")
                    if commands is None or command in commands or entry.get("inherit_from"):
                        return None
                    return f"plugin {plugin!r} has no command {command!r}"
    return f"no plugin {plugin!r} in the Meltano project"
