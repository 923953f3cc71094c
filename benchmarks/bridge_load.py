"""Load benchmark for webhook-bridge (not a test).

Starts a real `webhook-bridge serve` on 127.0.0.1, sends correctly signed FreshBooks deliveries at
increasing concurrency while the bridge's runs are happening, and prints per level:

* acknowledgement latency p50 / p99 / max (client-side: request sent -> 200 received; the event
  is durably in SQLite when the 200 arrives), and
* sustained events/s.

Then it measures event-to-warehouse latency p50 / p95: for spaced-out single changes, the time from
the bridge receiving the event to the run that loaded it having succeeded (the loader committed; read
from the bridge's queue: done_ts - received_ts).

Modes:
  --mode e2e   (default)  the real pipeline: FreshBooks emulator -> bridge -> tap-freshbooks -> target-duckdb
                          into a real DuckDB file, in a throw-away Meltano project (needs scripts/setup), with
                          the bridge's DEFAULT settings (coalescing window included). Each of --run-modes
                          (default: meltano,direct) gets its own bridge, project and emulator, one after the
                          other in this one run, and a side-by-side table closes the output:
                          `meltano` starts `meltano run` per run (the old way), `direct` is the default mode
                          (Meltano resolved once, tap | target started from their venvs, state through
                          Meltano's state backend). It also times where a `meltano run` spends its time
                          (Meltano's start-up, a state read, a config dump) and prints the direct runs' phases.
  --mode fake             `meltano` is replaced by a stand-in that sleeps --fake-run-seconds per run,
                          so runs happen during the load without needing the tap.

Usage:
  .venv/bin/python benchmarks/bridge_load.py [--mode e2e|fake] [--run-modes meltano,direct]
      [--levels 1,16,32] [--events 1000] [--latency-samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "webhook-bridge"), str(ROOT / "tests"), str(ROOT / "tap-freshbooks")]

import httpx  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from freshbooks_auth.token_store import TokenSet, TokenStore  # noqa: E402
from freshbooks_emulator import process  # noqa: E402
from webhook_bridge.signature import compute_signature  # noqa: E402
from webhook_bridge.store import Store  # noqa: E402

KEY = Fernet.generate_key().decode()
ACCOUNT = "BENCH1"
VERIFIER = "benchmark-verifier-0123456789abcdef"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bridge:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.env = {
            **os.environ,
            **env,
            "WEBHOOK_BRIDGE_HOST": "127.0.0.1",
            "WEBHOOK_BRIDGE_PORT": str(self.port),
            "WEBHOOK_BRIDGE_LOG_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join(sys.path[:3]),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "bridge.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webhook_bridge", "serve"],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"bridge did not start; see {self.workdir / 'bridge.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class EmulatorProcess:
    """The FreshBooks emulator in its own process, driven over its admin API (/_emulator/...).

    It stands in for FreshBooks' servers, which use none of the bridge machine's CPU. In this process
    it would share the load generator's interpreter (one GIL): every page it served to a run's tap
    delayed the load generator's clock, so acknowledgements measured slower than the bridge gave them.
    """

    def __init__(self, workdir: Path) -> None:
        try:
            self.proc, state = process.start(workdir / "emulator.json", seed="small", cwd=ROOT)
        except process.EmulatorDidNotStart as exc:
            raise SystemExit(str(exc)) from None
        self.url: str = state["url"]
        self.client_id: str = state["client_id"]
        self.client_secret: str = state["client_secret"]
        self.redirect_uri: str = state["redirect_uri"]
        self.accounts: list[dict] = state["accounts"]

    def _admin(self, what: str, payload: dict | None = None, method: str = "GET") -> dict:
        r = httpx.request(method, f"{self.url}/_emulator/{what}", json=payload, timeout=60)
        r.raise_for_status()
        return r.json()

    def issue_grant(self) -> dict:
        return self._admin("grant")

    @property
    def callbacks(self) -> list[dict]:
        return self._admin("callbacks")["callbacks"]

    def truth(self, stream: str, account: str) -> list[dict]:
        return self._admin(f"truth/{stream}?{urlencode({'account_id': account})}")["records"]

    def update(self, stream: str, account: str, object_id: int, **fields: object) -> None:
        self._admin(
            "update", {"stream": stream, "account_id": account, "id": object_id, "fields": fields}, "POST"
        )

    def stop(self) -> None:
        process.stop(self.proc)


# ------------------------------------------------------------------------------------------------
def setup_fake(workdir: Path, run_seconds: float) -> tuple[Bridge, str, str, list[int], object]:
    fake = workdir / "fake-meltano"
    fake.write_text(f"#!/bin/sh\nsleep {run_seconds}\nexit 0\n")
    fake.chmod(0o755)
    data = workdir / "data"
    store = Store(data / "bridge.sqlite3", KEY)
    vid, _ = store.add_verifier(ACCOUNT, "1", VERIFIER)
    store.mark_verifier(vid, "verified")
    store.close()
    bridge = Bridge(
        workdir,
        {
            "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": KEY,
            "WEBHOOK_BRIDGE_DATA_DIR": str(data),
            "WEBHOOK_BRIDGE_PROJECT_ROOT": str(workdir),
            "WEBHOOK_BRIDGE_MELTANO_EXECUTABLE": str(fake),
            "WEBHOOK_BRIDGE_COALESCE_WINDOW_SECONDS": "0.5",
            "WEBHOOK_BRIDGE_POLL_INTERVAL": "0",
        },
    )
    bridge.start()
    return bridge, ACCOUNT, VERIFIER, list(range(1, 5001)), None


def setup_e2e(workdir: Path, run_mode: str) -> tuple[Bridge, str, str, list[int], object]:
    meltano = Path(sys.executable).with_name("meltano")
    plugins = ROOT / ".meltano"
    if (
        not (plugins / "extractors" / "tap-freshbooks").is_dir()
        or not (plugins / "loaders" / "target-duckdb").is_dir()
    ):
        raise SystemExit("e2e mode needs the Meltano plugins: run scripts/setup")
    emu = EmulatorProcess(workdir)
    account = emu.accounts[0]["account_id"]
    project = workdir / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    (project / "tap-freshbooks").symlink_to(ROOT / "tap-freshbooks")
    (project / ".meltano").mkdir()
    # utilities too: the bridge's default post-load command (freshbooks-looker:post_load) runs after
    # every successful run, as it would in a user's project
    for kind in ("extractors", "loaders", "utilities"):
        (project / ".meltano" / kind).symlink_to(plugins / kind)
    (project / "output").mkdir()
    tokens = workdir / "tokens.fernet"
    TokenStore(tokens, KEY).save(TokenSet.from_token_response(emu.issue_grant()))
    env = {
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_FRESHBOOKS_CLIENT_ID": emu.client_id,
        "TAP_FRESHBOOKS_CLIENT_SECRET": emu.client_secret,
        "TAP_FRESHBOOKS_REDIRECT_URI": emu.redirect_uri,
        "TAP_FRESHBOOKS_API_URL": emu.url,
        "TAP_FRESHBOOKS_AUTH_URL": emu.url,
        "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(tokens),
        "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": KEY,
        "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": KEY,
        "WEBHOOK_BRIDGE_TOKEN_STORE_PATH": str(tokens),
        "WEBHOOK_BRIDGE_CLIENT_ID": emu.client_id,
        "WEBHOOK_BRIDGE_CLIENT_SECRET": emu.client_secret,
        "WEBHOOK_BRIDGE_API_URL": emu.url,
        "WEBHOOK_BRIDGE_PROJECT_ROOT": str(project),
        "WEBHOOK_BRIDGE_DATA_DIR": str(workdir / "data"),
        "WEBHOOK_BRIDGE_MELTANO_EXECUTABLE": str(meltano),
        "WEBHOOK_BRIDGE_POLL_INTERVAL": "3600",
        "WEBHOOK_BRIDGE_RUN_MODE": run_mode,
    }
    bridge = Bridge(workdir, env)
    bridge.start()
    print("e2e: initial poll ...", flush=True)
    wait_idle(workdir / "data" / "bridge.sqlite3", need_poll=True, timeout=300)
    reg = subprocess.run(
        [
            sys.executable,
            "-m",
            "webhook_bridge",
            "register",
            "--public-url",
            bridge.url,
            "--events",
            "invoice",
            "--account",
            account,
            "--wait",
            "30",
        ],
        env=bridge.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if reg.returncode != 0:
        raise SystemExit("register failed: " + reg.stdout + reg.stderr)
    verifier = next(c["verifier"] for c in emu.callbacks if c["event"] == "invoice.update")
    ids = [int(r["id"]) for r in emu.truth("invoices", account)]
    return bridge, account, verifier, ids, emu


def wait_idle(db: Path, *, need_poll: bool = False, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            store = Store(db, KEY)
            try:
                s = store.stats()
                poll = store.last_run("poll")
                if (
                    s["pending"] == 0
                    and s["running"] == 0
                    and (not need_poll or (poll is not None and poll.status != "running"))
                ):
                    return
            finally:
                store.close()
        time.sleep(0.3)
    raise SystemExit("the queue did not drain in time")


# ------------------------------------------------------------------------------------------------
def delivery(account: str, object_id: int, verifier: str, n: int) -> tuple[bytes, dict[str, str]]:
    fields = [
        ("name", "invoice.update"),
        ("object_id", str(object_id)),
        ("account_id", account),
        ("business_id", "6543"),
        ("identity_id", "1234"),
        ("user_id", str(n % 7 + 1)),
    ]
    return urlencode(fields).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-FreshBooks-Hmac-SHA256": compute_signature(fields, verifier),
    }


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One HTTP/1.1 keep-alive POST; returns the status code (minimal client, see load_level)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def load_level(url: str, payloads: list[tuple[bytes, dict[str, str]]], concurrency: int) -> dict:
    """Send every payload over `concurrency` keep-alive connections; time each request.

    The client is a few lines of asyncio streams rather than httpx: on a 2-core machine a heavier
    client would eat the CPU the server needs and its own queueing would show up as "latency".
    """
    host, port = url.removeprefix("http://").split(":")
    requests = []
    for body, headers in payloads:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(
            (
                f"POST /webhooks/freshbooks HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1")
            + body
        )
    latencies: list[float] = []
    errors = 0
    it = iter(requests)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in it:
                t0 = time.perf_counter()
                status = await _post(reader, writer, request)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "events": len(payloads),
        "errors": errors,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "events_per_s": len(payloads) / elapsed,
    }


def event_to_warehouse(
    bridge: Bridge,
    db: Path,
    account: str,
    verifier: str,
    ids: list[int],
    emu: object,
    samples: int,
    spacing: float,
) -> list[float]:
    """Single spaced-out changes; latency = run succeeded - event received (from the queue)."""
    wait_idle(db)
    store = Store(db, KEY)
    before = {e.id for e in store.events()}
    store.close()
    for n in range(samples):
        object_id = random.choice(ids)
        if emu is not None:
            emu.update("invoices", account, object_id, notes=f"bench {n} {time.time()}")
        body, headers = delivery(account, object_id, verifier, 10_000 + n)
        r = httpx.post(bridge.url + "/webhooks/freshbooks", content=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        time.sleep(spacing)
    wait_idle(db)
    store = Store(db, KEY)
    try:
        events = [e for e in store.events("done") if e.id not in before]
        ids = ",".join(str(e.id) for e in events)
        rows = (
            store.db.all(f"SELECT received_ts, done_ts FROM events WHERE status = 'done' AND id IN ({ids})")
            if events
            else []
        )
        return [row["done_ts"] - row["received_ts"] for row in rows]
    finally:
        store.close()


def cpu_timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, timeout=600, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def profile_meltano(bridge: Bridge) -> list[tuple[str, float, float]]:
    """What a `meltano run` pays before and after the tap and the loader run, measured here."""
    meltano = bridge.env["WEBHOOK_BRIDGE_MELTANO_EXECUTABLE"]
    project = Path(bridge.env["WEBHOOK_BRIDGE_PROJECT_ROOT"])
    env = {k: v for k, v in bridge.env.items() if not k.startswith("WEBHOOK_BRIDGE_")}
    tap = project / ".meltano" / "extractors" / "tap-freshbooks" / "venv" / "bin" / "tap-freshbooks"
    target_py = project / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
    rows = []
    for label, cmd in (
        ("meltano start-up (meltano --version)", [meltano, "--version"]),
        (
            "meltano state get (start-up + state read)",
            [meltano, "state", "get", "dev:tap-freshbooks-to-target-duckdb"],
        ),
        (
            "meltano invoke --dump=config tap-freshbooks",
            [meltano, "invoke", "--dump=config", "tap-freshbooks"],
        ),
        ("tap start-up (tap-freshbooks --about)", [str(tap), "--about"]),
        ("loader start-up (import target_duckdb)", [str(target_py), "-c", "import target_duckdb"]),
    ):
        wall, cpu = cpu_timed(cmd, env, project)
        rows.append((label, wall, cpu))
    return rows


def direct_phases(bridge: Bridge) -> dict[str, float]:
    """Median seconds per phase of the direct webhook runs (from the bridge's log)."""
    phases: dict[str, list[float]] = {}
    for line in (bridge.workdir / "bridge.log").read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "run succeeded" and entry.get("phases_s"):
            for name, value in entry["phases_s"].items():
                phases.setdefault(name, []).append(value)
            phases.setdefault("total", []).append(entry["duration_s"])
    return {name: pct(values, 50) for name, values in phases.items()}


def bench(
    label: str,
    bridge: Bridge,
    account: str,
    verifier: str,
    ids: list[int],
    emu: object,
    db: Path,
    args: argparse.Namespace,
) -> dict:
    levels = [int(x) for x in args.levels.split(",")]
    result: dict[str, object] = {"label": label, "levels": []}
    print(
        f"\n== {label}\n{'concurrency':>11} {'events':>7} {'errors':>6} {'ack p50 ms':>10} {'ack p99 ms':>10} "
        f"{'max ms':>8} {'events/s':>9} {'runs meanwhile':>14}"
    )
    n = 0
    for level in levels:
        payloads = []
        for _ in range(args.events):
            n += 1
            payloads.append(delivery(account, random.choice(ids), verifier, n))
        store = Store(db, KEY)
        runs_before = len(store.runs(limit=100_000))
        r = asyncio.run(load_level(bridge.url, payloads, level))
        r["runs_during"] = len(store.runs(limit=100_000)) - runs_before
        store.close()
        result["levels"].append(r)  # type: ignore[union-attr]
        print(
            f"{r['concurrency']:>11} {r['events']:>7} {r['errors']:>6} {r['p50_ms']:>10.2f} "
            f"{r['p99_ms']:>10.2f} {r['max_ms']:>8.1f} {r['events_per_s']:>9.0f} {r['runs_during']:>14}",
            flush=True,
        )
    store = Store(db, KEY)
    runs = [r for r in store.runs(limit=100_000) if r.kind == "webhook"]
    store.close()
    print(
        f"webhook runs so far: {len(runs)} (coalescing {sum(r.event_count for r in runs)} events into "
        f"{sum(r.record_count for r in runs)} record fetches)"
    )
    spacing = (
        args.latency_spacing if args.latency_spacing is not None else (3.0 if args.mode == "fake" else 6.0)
    )
    lat = event_to_warehouse(bridge, db, account, verifier, ids, emu, args.latency_samples, spacing)
    result["event_to_warehouse"] = {
        "samples": len(lat),
        "p50_s": pct(lat, 50),
        "p95_s": pct(lat, 95),
        "max_s": max(lat) if lat else float("nan"),
    }
    what = "event-to-warehouse" if args.mode == "e2e" else "event-to-run-done (fake meltano)"
    print(
        f"{what} latency over {len(lat)} single changes {spacing:g} s apart: p50 {pct(lat, 50):.2f} s, "
        f"p95 {pct(lat, 95):.2f} s, max {result['event_to_warehouse']['max_s']:.2f} s",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["fake", "e2e"], default="e2e")
    parser.add_argument(
        "--run-modes", default="meltano,direct", help="e2e: the bridge's run_mode values to compare"
    )
    parser.add_argument("--levels", default="1,16,32")
    parser.add_argument("--events", type=int, default=1000, help="events per concurrency level")
    parser.add_argument("--fake-run-seconds", type=float, default=1.0)
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument(
        "--latency-spacing",
        type=float,
        default=None,
        help="seconds between the single changes (default: 3 fake, 6 e2e)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--json-out", type=Path, help="write the results as JSON to this file")
    args = parser.parse_args()
    print(f"webhook-bridge benchmark ({args.mode} mode)", flush=True)
    print(
        f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    results: list[dict] = []
    profile: list[tuple[str, float, float]] = []
    phases: dict[str, float] = {}
    modes = [m.strip() for m in args.run_modes.split(",") if m.strip()] if args.mode == "e2e" else ["fake"]
    for run_mode in modes:
        workdir = Path(tempfile.mkdtemp(prefix=f"bridge-bench-{run_mode}-"))
        if args.mode == "fake":
            bridge, account, verifier, ids, emu = setup_fake(workdir, args.fake_run_seconds)
        else:
            print(f"\n[{run_mode}] work dir {workdir}; initial poll ...", flush=True)
            bridge, account, verifier, ids, emu = setup_e2e(workdir, run_mode)
        try:
            label = f"run_mode={run_mode}" if args.mode == "e2e" else "fake meltano"
            results.append(
                bench(label, bridge, account, verifier, ids, emu, workdir / "data" / "bridge.sqlite3", args)
            )
            if args.mode == "e2e" and run_mode == "meltano":
                profile = profile_meltano(bridge)
            if args.mode == "e2e" and run_mode == "direct":
                phases = direct_phases(bridge)
        finally:
            bridge.stop()
            if emu is not None:
                emu.stop()
    if profile:
        print("\nwhere a `meltano run` spends its fixed cost (one command each, wall and CPU of the child):")
        for label, wall, cpu in profile:
            print(f"  {label:<46} {wall:6.2f} s wall {cpu:6.2f} s CPU")
    if phases:
        print(
            "direct webhook runs, median seconds per phase: "
            + ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
        )
    if len(results) > 1:
        print("\nside by side (same machine, same run):")
        head = f"{'':<34}" + "".join(f"{r['label']:>22}" for r in results)
        print(head)
        for i, level in enumerate(results[0]["levels"]):
            c = level["concurrency"]
            print(
                f"{f'ack p50 / p99 ms at {c}':<34}"
                + "".join(
                    f"{r['levels'][i]['p50_ms']:>12.1f} / {r['levels'][i]['p99_ms']:<7.1f}" for r in results
                )
            )
        for key in ("p50_s", "p95_s"):
            print(
                f"{'event -> warehouse ' + key[:3] + ' s':<34}"
                + "".join(f"{r['event_to_warehouse'][key]:>22.2f}" for r in results)
            )
        base, new = results[0]["event_to_warehouse"], results[-1]["event_to_warehouse"]
        print(
            f"ratio {results[-1]['label']} / {results[0]['label']}: p50 {new['p50_s'] / base['p50_s']:.2f}x, "
            f"p95 {new['p95_s'] / base['p95_s']:.2f}x"
        )
    everything = {"results": results, "meltano_profile": profile, "direct_phases": phases}
    if args.json:
        print(json.dumps(everything, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(everything, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
