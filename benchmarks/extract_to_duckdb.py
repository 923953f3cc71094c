"""Benchmark: full extraction from the FreshBooks emulator into DuckDB, at two volumes, one run.

    .venv/bin/python benchmarks/extract_to_duckdb.py [--sizes 10000 100000]

For each size it starts a fresh emulator process holding N bulk invoices (2-3 lines each), pipes
`tap-freshbooks` (invoices + invoice_lines selected) into `target-duckdb` (the pinned Meltano
plugin), and measures: wall time, records/s (invoices + lines), HTTP requests per 1,000 records
(from the emulator's request log), and peak RSS of the tap and of the target (sampled every
20 ms). The sizes run side by side in one process so the ratios are comparable on a noisy
machine; memory staying flat shows up as an RSS ratio near 1 while volume grows 10x.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from freshbooks_emulator import process  # noqa: E402

TARGET = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "target-duckdb-fast"
ACCOUNT = "zK3pQ7"


class PeakRSS(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)


def start_emulator(
    size: int, workdir: Path, seed: str = "empty", now: str | None = None
) -> tuple[subprocess.Popen, dict]:
    """An emulator process: the seed plus ``size`` bulk invoices in ACCOUNT (data clock ``now``)."""
    try:
        return process.start(
            workdir / "emulator.json", seed=seed, now=now, bulk=[f"invoices:{size}:{ACCOUNT}"], cwd=ROOT
        )
    except process.EmulatorDidNotStart as exc:
        sys.exit(str(exc))


def run_once(size: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="fb-bench-") as tmp:
        workdir = Path(tmp)
        emulator, state = start_emulator(size, workdir)
        try:
            config = {
                "client_id": state["client_id"],
                "client_secret": state["client_secret"],
                "redirect_uri": state["redirect_uri"],
                "refresh_token": state["grant"]["refresh_token"],
                "api_url": state["url"],
                "auth_url": state["url"],
                "token_store_path": str(workdir / "tokens.fernet"),
                "token_encryption_key": Fernet.generate_key().decode(),
                "account_ids": [ACCOUNT],
                "flattening_enabled": True,
                "flattening_max_depth": 1,
            }
            (workdir / "tap.json").write_text(json.dumps(config))
            catalog = json.loads(
                subprocess.run(
                    [sys.executable, "-m", "tap_freshbooks", "--discover"],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                ).stdout
            )
            for stream in catalog["streams"]:
                for entry in stream["metadata"]:
                    if entry["breadcrumb"] == []:
                        entry["metadata"]["selected"] = stream["tap_stream_id"] in {
                            "invoices",
                            "invoice_lines",
                        }
            (workdir / "catalog.json").write_text(json.dumps(catalog))
            (workdir / "target.json").write_text(
                json.dumps(
                    {
                        "filepath": str(workdir / "bench.duckdb"),
                        "default_target_schema": "freshbooks",
                        "batch_size_rows": 10000,
                    }
                )
            )
            requests.post(f"{state['url']}/_emulator/clear_log", timeout=10)
            started = time.monotonic()
            tap = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tap_freshbooks",
                    "--config",
                    str(workdir / "tap.json"),
                    "--catalog",
                    str(workdir / "catalog.json"),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=ROOT,
            )
            target = subprocess.Popen(
                [str(TARGET), "--config", str(workdir / "target.json")],
                stdin=tap.stdout,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            tap.stdout.close()
            tap_rss, target_rss = PeakRSS(tap.pid), PeakRSS(target.pid)
            tap_rss.start()
            target_rss.start()
            tap_code, target_code = tap.wait(), target.wait()
            elapsed = time.monotonic() - started
            tap_rss.done.set()
            target_rss.done.set()
            if tap_code or target_code:
                sys.exit(f"pipeline failed: tap {tap_code}, target {target_code}")
            entries = requests.get(f"{state['url']}/_emulator/log", timeout=30).json()["requests"]
            api_requests = sum(1 for _method, path, _status in entries if not path.startswith("/_emulator"))
            import duckdb  # noqa: PLC0415

            con = duckdb.connect(str(workdir / "bench.duckdb"), read_only=True)
            invoices = con.execute("select count(*) from freshbooks.invoices").fetchone()[0]
            lines = con.execute("select count(*) from freshbooks.invoice_lines").fetchone()[0]
            con.close()
            if invoices != size:
                sys.exit(f"loaded {invoices} invoices, expected {size}")
            records = invoices + lines
            return {
                "invoices": invoices,
                "records": records,
                "seconds": elapsed,
                "records_per_s": records / elapsed,
                "requests_per_1000": 1000 * api_requests / records,
                "tap_peak_rss_mb": tap_rss.peak / 2**20,
                "target_peak_rss_mb": target_rss.peak / 2**20,
            }
        finally:
            process.stop(emulator)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    results = [run_once(size) for size in args.sizes]
    print(
        f"{'invoices':>9} {'records':>9} {'seconds':>8} {'rec/s':>8} {'req/1k rec':>10} "
        f"{'tap RSS MB':>10} {'target RSS MB':>13}"
    )
    for r in results:
        print(
            f"{r['invoices']:>9} {r['records']:>9} {r['seconds']:>8.1f} {r['records_per_s']:>8.0f} "
            f"{r['requests_per_1000']:>10.2f} {r['tap_peak_rss_mb']:>10.1f} {r['target_peak_rss_mb']:>13.1f}"
        )
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(
            f"ratios {b['invoices']}/{a['invoices']}: volume x{b['records'] / a['records']:.1f}, "
            f"time x{b['seconds'] / a['seconds']:.2f}, throughput x{b['records_per_s'] / a['records_per_s']:.2f}, "
            f"tap peak RSS x{b['tap_peak_rss_mb'] / a['tap_peak_rss_mb']:.2f}, "
            f"target peak RSS x{b['target_peak_rss_mb'] / a['target_peak_rss_mb']:.2f}"
        )


if __name__ == "__main__":
    main()
