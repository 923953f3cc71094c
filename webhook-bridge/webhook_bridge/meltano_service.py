"""Meltano, kept warm: the bridge's window on the project's resolved plugins and state backend.

Run by the bridge with the Python interpreter that runs ``meltano`` (read from the ``meltano``
executable's ``#!`` line), as a script: ``<meltano's python> meltano_service.py <project root>
[<environment>]``. It imports Meltano once and then answers one JSON request per stdin line with
one JSON line on stdout (Meltano's own logs go to stderr):

``{"op": "resolve", "extractor": "tap-freshbooks", "loader": "target-duckdb"}``
    What ``meltano run <extractor> <loader>`` would give each plugin: the executable, the config
    (``invoker.plugin_config_processed``, what ``--dump=config`` shows), the environment
    (``PluginInvoker.env()``), the tap's catalog with the project's ``select`` rules applied
    (``--dump=catalog``, Meltano's catalog cache and discovery included), the state ID
    ``<environment>:<extractor>-to-<loader>``, and the files whose change makes all of this stale
    (``meltano.yml``, its ``include_paths``, ``.env``).
``{"op": "command", "plugin": "freshbooks-looker", "command": "post_load"}``
    argv and environment of ``meltano invoke <plugin>:<command>``, or ``{"missing": ...}``.
``{"op": "state_get", "state_id": ...}`` / ``{"op": "state_set", "state_id": ..., "state": {...}}``
    Meltano's state backend (``StateService``: the system database, S3, GCS, Azure, a local
    directory, whatever ``state_backend`` says), exactly as ``meltano state get`` / ``meltano
    state set`` use it, for the same state ID that ``meltano run`` uses.

Errors are answered as ``{"error": "<one line>"}``; the process exits when stdin closes. It reads
the project once: the bridge restarts it when a watched file changed. Nothing here is imported by
the bridge itself (it does not need Meltano in its own virtualenv).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import traceback
import typing as t

# run as a script from webhook_bridge/: its directory (app.py, settings.py, ...) must not shadow
# the modules Meltano imports
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:2000]


class Service:
    def __init__(self, root: str, environment: str | None) -> None:
        from meltano.core.db import project_engine  # noqa: PLC0415

        # Meltano's own logging set-up (the project's cli.log_level, `info` by default), before
        # anything logs: unconfigured, structlog would print debug lines such as the system
        # database URI, which may hold a password
        from meltano.core.logging import setup_logging  # noqa: PLC0415
        from meltano.core.project import Project  # noqa: PLC0415

        setup_logging(None, log_level="info")
        self.project = Project.find(root)
        setup_logging(self.project)
        name = environment or self.project.settings.get("default_environment")
        if name:
            self.project.activate_environment(name)
        self.environment = name
        # as the CLI does before any command: register the system database, migrate it if needed
        engine, self.sessionmaker = project_engine(self.project, default=True)
        from meltano.core.migration_service import MigrationService  # noqa: PLC0415

        with _migration_lock(engine):
            MigrationService(engine).upgrade(silent=True)

    # -- plugins ------------------------------------------------------------------------------
    def _invoker(self, name: str) -> tuple[t.Any, t.Any]:
        from meltano.core.plugin_invoker import invoker_factory  # noqa: PLC0415

        plugin = self.project.plugins.find_plugin(name, invokable=True)
        return plugin, invoker_factory(self.project, plugin)

    async def _plugin(self, name: str, *, catalog: bool) -> dict[str, t.Any]:
        plugin, invoker = self._invoker(name)
        session = self.sessionmaker()
        try:
            async with invoker.prepared(session):
                out = {
                    "name": plugin.name,
                    "executable": str(invoker.exec_path()),
                    # what Meltano writes into the plugin's config file (``--dump=config``)
                    "config": json.loads(json.dumps(invoker.plugin_config_processed, default=str)),
                    "env": {k: str(v) for k, v in invoker.env().items() if v is not None},
                }
                if catalog:
                    out["catalog"] = json.loads(await invoker.dump("catalog"))
                out["files"] = await self._logging_files(invoker, out["env"])
                return out
        finally:
            session.close()

    @staticmethod
    async def _logging_files(invoker: t.Any, env: dict[str, str]) -> dict[str, str]:
        """The logging configs Meltano writes before it invokes a Singer plugin (its
        ``setup_logging_hook``), by the variable that points at them (``SINGER_SDK_LOG_CONFIG``,
        ``LOGGING_CONF_FILE``): the bridge writes them into each run's own directory."""
        hook = getattr(invoker.plugin, "setup_logging_hook", None)
        if hook is not None:
            try:
                await hook(invoker)
            except Exception:  # noqa: BLE001  (no logging config: the plugin's default logging)
                traceback.print_exc()
        files = {}
        for var in ("SINGER_SDK_LOG_CONFIG", "LOGGING_CONF_FILE"):
            path = env.get(var)
            if path and os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    files[var] = fh.read()
        return files

    def _watch(self) -> list[str]:
        paths = [str(self.project.meltanofile), str(self.project.dotenv)]
        try:
            paths += [str(p) for p in self.project.project_files.include_paths]
        except Exception:  # noqa: BLE001  (older layouts: meltano.yml and .env are enough)
            pass
        return paths

    async def resolve(self, extractor: str, loader: str) -> dict[str, t.Any]:
        tap = await self._plugin(extractor, catalog=True)
        target = await self._plugin(loader, catalog=False)
        state_id = ":".join(p for p in (self.environment, f"{tap['name']}-to-{target['name']}") if p)
        return {
            "extractor": tap,
            "loader": target,
            "state_id": state_id,
            "environment": self.environment,
            "project_root": str(self.project.root),
            "sys_dir": str(self.project.sys_dir_root),
            "watch": self._watch(),
        }

    async def command(self, plugin_name: str, command: str) -> dict[str, t.Any]:
        from meltano.core.plugin.error import PluginNotFoundError  # noqa: PLC0415

        try:
            plugin, invoker = self._invoker(plugin_name)
        except PluginNotFoundError:
            return {"missing": f"no plugin {plugin_name!r} in the Meltano project"}
        if command not in plugin.all_commands:
            return {"missing": f"plugin {plugin_name!r} has no command {command!r}"}
        session = self.sessionmaker()
        try:
            async with invoker.prepared(session):
                env = {k: str(v) for k, v in invoker.env().items() if v is not None}
                return {"argv": invoker.exec_args(command=command, env=env), "env": env}
        finally:
            session.close()

    # -- state --------------------------------------------------------------------------------
    def _state_service(self) -> t.Any:
        from meltano.core.state_service import StateService  # noqa: PLC0415

        return StateService(self.project, self.sessionmaker())

    def state_get(self, state_id: str) -> dict[str, t.Any]:
        service = self._state_service()
        try:
            return {"state": service.get_state(state_id)}
        finally:
            service.session.close()
            _close(service)

    def state_set(self, state_id: str, state: dict[str, t.Any]) -> dict[str, t.Any]:
        service = self._state_service()
        try:
            service.set_state(state_id, json.dumps(state))
            return {"ok": True}
        finally:
            service.session.close()
            _close(service)

    async def handle(self, request: dict[str, t.Any]) -> dict[str, t.Any]:
        op = request.get("op")
        if op == "resolve":
            return await self.resolve(request["extractor"], request["loader"])
        if op == "command":
            return await self.command(request["plugin"], request["command"])
        if op == "state_get":
            return self.state_get(request["state_id"])
        if op == "state_set":
            return self.state_set(request["state_id"], request["state"])
        if op == "ping":
            return {"ok": True}
        return {"error": f"unknown op {op!r}"}


@contextlib.contextmanager
def _migration_lock(engine: t.Any) -> t.Iterator[None]:
    """One migration at a time on a shared PostgreSQL system database.

    Bridge replicas that share Meltano's system database (replicated mode) start together; two
    concurrent migrations of a fresh database both ``CREATE TABLE alembic_version`` and one fails
    ("Cannot upgrade the system database"). A session-level advisory lock makes the others wait and
    then find the database migrated. SQLite (one machine) needs none.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    from sqlalchemy import text  # noqa: PLC0415

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('meltano system database migration'))"))
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('meltano system database migration'))"))


def _close(service: t.Any) -> None:
    close = getattr(service, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001
            pass


# the answers' channel: the real stdout, kept aside; fd 1 becomes stderr, so whatever Meltano or a
# library prints (structlog writes to stdout until Meltano's CLI configured logging) stays a log line
_ANSWERS = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def _reply(message: dict[str, t.Any]) -> None:
    _ANSWERS.write(json.dumps(message, separators=(",", ":")) + "\n")
    _ANSWERS.flush()


def main(argv: list[str]) -> int:
    root = argv[1] if len(argv) > 1 else os.getcwd()
    environment = argv[2] if len(argv) > 2 and argv[2] else None
    try:
        service = Service(root, environment)
    except Exception as exc:  # noqa: BLE001
        _reply({"error": f"cannot open the Meltano project at {root}: {_one_line(exc)}"})
        return 1
    _reply({"ready": True, "environment": service.environment})
    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            answer = loop.run_until_complete(service.handle(request))
        except Exception as exc:  # noqa: BLE001  (one bad request must not end the service)
            traceback.print_exc()  # to the helper's log
            answer = {"error": _one_line(exc)}
        _reply(answer)
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
