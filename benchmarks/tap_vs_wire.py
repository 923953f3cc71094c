"""Benchmark: the tap alone against the wire, at two volumes, in one run (issue 14, goal 1).

    .venv/bin/python benchmarks/tap_vs_wire.py [--sizes 10000 100000] [--rounds 2]

For each size it starts a fresh emulator process (seed ``demo``: both accounts, every stream; plus
N bulk invoices with 2-3 lines each in account zK3pQ7, data clock frozen), reads everything once
to warm it (bulk rows are generated on first read), then, alternating, ``--rounds`` times each:

* **raw fetch**: ``requests`` GETs of exactly the pages the tap requests (same paths, same query
  strings, same page size, one at a time on one keep-alive session), each body decoded with
  ``response.json()``; nothing else. The wire limit of this machine and this emulator.
* **tap alone**: ``tap-freshbooks`` (full extraction, every stream, both accounts, no state) with
  its Singer output to /dev/null; peak RSS sampled every 20 ms.

Records are list records, with the lines a carrier stream brings counted as records (the tap
emits invoices' lines as ``invoice_lines``); the tap's own count comes from its last log line and must equal the raw
count. The emulator's request log must show the same requests for both. It prints the best
round of each (the other contestant ran in between, so the load is shared), records/s, the
tap/raw ratio (goal: >= 0.5) and the tap's peak RSS with its ratio across the volumes (goal: flat).

``raw_fetch`` and ``run_tap_alone`` are importable; both return a dict of numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.parse
from pathlib import Path

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from extract_to_duckdb import PeakRSS, start_emulator  # noqa: E402

NOW = "2026-06-01T12:00:00Z"
IDENTITY_PATH = "/auth/api/v1/users/me"
_FINISHED = re.compile(r"tap-freshbooks finished in [\d.]+ s, (\d+) records")


def fresh_grant(emulator_url: str) -> dict:
    """A new grant from the emulator (as if the user authorized the app again)."""
    return requests.post(f"{emulator_url}/_emulator/grant", timeout=30).json()


def list_requests(accounts: list[dict]) -> list[tuple[str, dict[str, t.Any], t.Any, str, bool, bool]]:
    """(path, query params without paging, envelope, list key, carries lines, is a report) of every list pass
    of a full run.

    Read from the tap's own stream declarations, so the raw fetch asks for what the tap asks for,
    and finds the list and the page count where the tap does (``Envelope.items``/``page_info``:
    an index into the decoded body). A stream that carries lines (``invoices``) has them emitted
    as records of their own stream.
    """
    from tap_freshbooks import envelopes  # noqa: PLC0415
    from tap_freshbooks.streams.reports import ReportStream, utc_now  # noqa: PLC0415
    from tap_freshbooks.tap import RIDES_ALONG, TapFreshBooks  # noqa: PLC0415

    offline = {
        "client_id": "x",
        "client_secret": "x",
        "token_encryption_key": Fernet.generate_key().decode(),
        "token_store_path": os.devnull,
    }
    tap = TapFreshBooks(config=offline, parse_env_config=False, validate_config=False)
    plan = []
    carriers = set(RIDES_ALONG.values())
    for stream in tap.streams.values():
        if stream.name in RIDES_ALONG:
            continue
        passes = [stream.changes.window(None, None).params]
        if isinstance(stream, ReportStream):  # today's snapshot, dated as the tap dates it
            passes = [stream.report_params(utc_now().date())]
        elif stream.has_vis_state:
            passes.append({"search[vis_state]": 1})
        for account in accounts:
            for params in passes:
                plan.append(
                    (
                        stream.path.format(**account),
                        {**stream.extra_params, **params},
                        stream.envelope,
                        stream.list_key,
                        stream.name in carriers,
                        isinstance(stream, ReportStream),
                    )
                )
    assert envelopes.PER_PAGE == 100  # the page size raw_fetch sends too
    return plan


def _query(params: dict[str, t.Any]) -> str:
    return urllib.parse.urlencode(params, doseq=True, safe="[]")


def raw_fetch(emulator_url: str, access_token: str | None = None) -> dict[str, float]:
    """GET every page a full tap run requests, decode it, count the records; nothing else.

    The tap's first request (``users/me``, which names the accounts) is made too. Returns seconds,
    requests, records and records_per_s.
    """
    token = access_token or fresh_grant(emulator_url)["access_token"]
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    started = time.monotonic()
    me = session.get(f"{emulator_url}{IDENTITY_PATH}", timeout=60)
    me.raise_for_status()
    accounts = [
        {
            "account_id": str(b["account_id"]),
            "business_id": b.get("id"),
            "business_uuid": b.get("business_uuid"),
        }
        for m in me.json()["response"]["business_memberships"]
        if (b := m.get("business") or {}).get("account_id")
    ]
    count, records = 1, 0
    for path, params, envelope, key, carries_lines, is_report in list_requests(accounts):
        page = 1
        while True:
            paging = {} if envelope.name == "ledger" else {"page": page, "per_page": 100}
            response = session.get(f"{emulator_url}{path}?{_query({**paging, **params})}", timeout=60)
            response.raise_for_status()
            count += 1
            body = response.json()
            if is_report:  # one report object per request: one record
                items, paged = [envelope.single(body, key) or {}], None
            else:
                items, paged = envelope.items(body, key), envelope.page_info(body)
            records += len(items)
            if carries_lines:
                records += sum(len(item.get("lines") or []) for item in items)
            if not items or paged is None or page >= paged[1]:
                break
            page += 1
    seconds = time.monotonic() - started
    return {"seconds": seconds, "requests": count, "records": records, "records_per_s": records / seconds}


def run_tap_alone(
    emulator_url: str, state: dict, workdir: Path, pythonpath: str | None = None
) -> dict[str, float]:
    """``tap-freshbooks`` full extraction of every stream of both accounts, Singer output to /dev/null.

    A fresh grant and token store each time (no state). Returns seconds, records (None if the
    tap's last log line does not count them, as before this benchmark existed), records_per_s and
    peak_rss_mb (the tap process, sampled every 20 ms). ``pythonpath`` runs another copy of the
    tap's code (e.g. ``git archive <commit> tap-freshbooks``) in the same environment.
    """
    store = workdir / f"tokens-{time.monotonic_ns()}.fernet"
    config = {
        "client_id": state["client_id"],
        "client_secret": state["client_secret"],
        "redirect_uri": state["redirect_uri"],
        "refresh_token": fresh_grant(emulator_url)["refresh_token"],
        "api_url": emulator_url,
        "auth_url": emulator_url,
        "token_store_path": str(store),
        "token_encryption_key": Fernet.generate_key().decode(),
    }
    config_path = workdir / "tap.json"
    config_path.write_text(json.dumps(config))
    log_path = workdir / "tap.log"
    started = time.monotonic()
    with open(os.devnull, "wb") as devnull, open(log_path, "wb") as log:
        env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
        tap = subprocess.Popen(
            [sys.executable, "-m", "tap_freshbooks", "--config", str(config_path)],
            stdout=devnull,
            stderr=log,
            cwd=workdir,
            env=env,
        )
        rss = PeakRSS(tap.pid)
        rss.start()
        code = tap.wait()
    seconds = time.monotonic() - started
    rss.done.set()
    if code:
        sys.exit(f"tap failed ({code}); see {log_path}")
    finished = _FINISHED.findall(log_path.read_text(errors="replace"))
    records = int(finished[-1]) if finished else None
    return {
        "seconds": seconds,
        "records": records,
        "records_per_s": (records or 0) / seconds,
        "peak_rss_mb": rss.peak / 2**20,
    }


def _api_log(emulator_url: str) -> list[str]:
    """The API requests logged since the last call (the emulator logs each one after answering it)."""
    logged: list[str] = []
    while True:
        time.sleep(0.2)
        entries = requests.get(f"{emulator_url}/_emulator/log", timeout=60).json()["requests"]
        again = sorted(
            f"{method} {path}"
            for method, path, _status in entries
            if not path.startswith(("/_emulator", "/auth/oauth"))
        )
        if again == logged:
            break
        logged = again
    requests.post(f"{emulator_url}/_emulator/clear_log", timeout=30)
    return logged


def compare_at(size: int, rounds: int, before: str | None = None) -> dict[str, t.Any]:
    with tempfile.TemporaryDirectory(prefix="fb-tap-vs-wire-") as tmp:
        workdir = Path(tmp)
        emulator, state = start_emulator(size, workdir, seed="demo", now=NOW)
        url = state["url"]
        try:
            raw_fetch(url)  # warm-up: bulk rows are generated on first read
            _api_log(url)
            runs: dict[str, list[dict]] = {"raw": [], "tap": [], "before": []}
            for _ in range(rounds):
                runs["raw"].append(raw_fetch(url))
                raw_requests = _api_log(url)
                contestants = [("tap", None)] + ([("before", before)] if before else [])
                for name, pythonpath in contestants:
                    run = run_tap_alone(url, state, workdir, pythonpath)
                    if run["records"] is None:  # a tap that does not log its count: trust the requests
                        run["records"] = runs["raw"][-1]["records"]
                        run["records_per_s"] = run["records"] / run["seconds"]
                    runs[name].append(run)
                    tap_requests = _api_log(url)
                    if raw_requests != tap_requests:
                        sys.exit(
                            f"{size}: the raw fetch made {len(raw_requests)} requests, {name} "
                            f"{len(tap_requests)}; they differ: "
                            f"{sorted(set(raw_requests) ^ set(tap_requests))[:5]}"
                        )
                    if run["records"] != runs["raw"][-1]["records"]:
                        sys.exit(
                            f"{size}: {name} emitted {run['records']} records, the raw fetch read "
                            f"{runs['raw'][-1]['records']}"
                        )
            best = {name: min(r, key=lambda x: x["seconds"]) for name, r in runs.items() if r}
            result = {
                "invoices": size,
                **best,
                "all_seconds": {name: [x["seconds"] for x in r] for name, r in runs.items() if r},
            }
            for name in ("tap", "before"):
                if name in best:
                    result[f"{name}_ratio"] = best[name]["records_per_s"] / best["raw"]["records_per_s"]
                    result[f"{name}_peak_rss_mb"] = max(x["peak_rss_mb"] for x in runs[name])
            return result
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", metavar="DIR", help="also run the tap code in DIR (a PYTHONPATH entry)")
    args = parser.parse_args()
    results = [compare_at(size, args.rounds, args.before) for size in args.sizes]
    names = ["tap"] + (["before"] if args.before else [])
    print(
        f"{'invoices':>9} {'records':>8} {'requests':>8} {'contestant':>10} {'seconds':>8} {'rec/s':>7} "
        f"{'vs raw':>6} {'peak RSS MB':>11}"
    )
    for r in results:
        raw = r["raw"]
        print(
            f"{r['invoices']:>9} {raw['records']:>8} {raw['requests']:>8} {'raw fetch':>10} {raw['seconds']:>8.1f} "
            f"{raw['records_per_s']:>7.0f} {1:>6.2f} {'':>11}"
        )
        for name in names:
            run = r[name]
            print(
                f"{'':>9} {'':>8} {'':>8} {name:>10} {run['seconds']:>8.1f} {run['records_per_s']:>7.0f} "
                f"{r[name + '_ratio']:>6.2f} {r[name + '_peak_rss_mb']:>11.1f}"
            )
    for r in results:
        rounds = "; ".join(
            f"{name} " + ", ".join(f"{s:.1f}" for s in seconds) for name, seconds in r["all_seconds"].items()
        )
        print(f"  {r['invoices']} invoices, every round in seconds: {rounds}")
    for name in names:
        line = ", ".join(f"{r['invoices']}: {r[name + '_ratio']:.2f}" for r in results)
        print(f"goal 1 ({name}): tap/raw records/s >= 0.5 at every size: {line}")
        if len(results) > 1:
            a, b = results[0], results[-1]
            print(
                f"  peak RSS {b['invoices']}/{a['invoices']} invoices: "
                f"x{b[name + '_peak_rss_mb'] / a[name + '_peak_rss_mb']:.2f} "
                f"while records grow x{b['raw']['records'] / a['raw']['records']:.1f}"
            )


if __name__ == "__main__":
    main()
