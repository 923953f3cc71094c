"""Reproduction (not a test): invoice lines lost when target-duckdb dies after a per-stream flush.

    .venv/bin/python tests/chaos/rider_flush_repro.py            # ~3 s, the loader half
    .venv/bin/python tests/chaos/rider_flush_repro.py --tap      # ~2 min, the tap half (10,500 invoices)
    .venv/bin/python tests/chaos/rider_flush_repro.py --pipeline # ~2 min, end to end through meltano run

``--pipeline`` once stopped at an earlier loss of the same family, fixed since: a first run wrote its
first STATE after the first stream's records, so the loader kill lost the bill payments before the
invoice lines' turn came (the tap now opens a run without input state with an empty STATE).

The tap half: singer-sdk writes a STATE message every 10,000 records of a stream
(``Stream.STATE_MSG_FREQUENCY``), in the middle of the invoices stream. It carries the partitions the
tap already finished (their change ledger: those invoices count as delivered), while invoices of the
next partition still follow. ``--tap`` shows it: 9,000 invoices in one account and 1,500 in the other
give a STATE after invoice 10,000 holding the first account's 9,000 ledger entries.

The loader half: target-duckdb (pipelinewise) flushes one stream when its batch is full and then
emits a state in which only that stream's bookmark comes from the newest STATE. So a full batch of
*invoices* emits the invoices state (first account delivered) while lines that came before that
STATE, in the *invoice_lines* buffer, are not loaded yet. Meltano stores that state; if the loader
dies now, the lines are never loaded, and the next run skips their invoices (the ledger says
delivered): the lines stay missing until each invoice changes again.

It takes a stream of 10,000+ invoices in one run, a second account, a loader batch that fills with
invoices before it fills with lines (invoices with few or no lines) and a loader crash in between:
rare, but it breaks the promise in ``sdk_compat.py`` ("a crash can never record an invoice as
delivered while its lines were not"). A fix: no STATE in the middle of a stream that carries riders
(e.g. ``STATE_MSG_FREQUENCY`` out of reach on the invoices stream), so the invoices state only
reaches a loader after all of its lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / ".meltano" / "loaders" / "target-duckdb-pipelinewise" / "venv" / "bin" / "target-duckdb"


def _schema(stream: str, key: list[str]) -> dict:
    props = {name: {"type": "string"} for name in key} | {"n": {"type": ["integer", "null"]}}
    return {
        "type": "SCHEMA",
        "stream": stream,
        "key_properties": key,
        "schema": {"type": "object", "properties": props},
    }


def loader_half() -> bool:
    """True if the loader emitted "first account delivered" and then lost that account's lines."""
    work = Path(tempfile.mkdtemp(prefix="rider-flush-"))
    db = work / "w.duckdb"
    (work / "target.json").write_text(
        json.dumps(
            {
                "filepath": str(db),
                "default_target_schema": "freshbooks",
                "add_metadata_columns": True,
                "primary_key_required": True,
                "batch_size_rows": 5,
            }
        )
    )
    messages = [
        _schema("invoices", ["account_id", "id"]),
        _schema("invoice_lines", ["account_id", "invoice_id", "id"]),
        {"type": "STATE", "value": {"bookmarks": {"invoices": {"delivered": []}}}},
    ]
    for i in range(1, 4):  # account A: lines first, then their invoice (as the tap sends them)
        messages += [
            {
                "type": "RECORD",
                "stream": "invoice_lines",
                "record": {"account_id": "A", "invoice_id": str(i), "id": "1", "n": i},
            },
            {"type": "RECORD", "stream": "invoices", "record": {"account_id": "A", "id": str(i), "n": i}},
        ]
    delivered = {"bookmarks": {"invoices": {"delivered": ["A/1", "A/2", "A/3"]}}}
    messages.append({"type": "STATE", "value": delivered})  # the mid-stream STATE
    messages += [
        {"type": "RECORD", "stream": "invoices", "record": {"account_id": "B", "id": str(i), "n": i}}
        for i in range(4, 7)
    ]  # account B: invoices without lines fill the invoices batch
    proc = subprocess.Popen(
        [str(TARGET), "--config", str(work / "target.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()
    emitted = json.loads(proc.stdout.readline())  # what Meltano would store now
    proc.kill()  # the loader dies before its final flush
    proc.wait()
    con = duckdb.connect(str(db), read_only=True)
    invoices = con.execute("select count(*) from freshbooks.invoices where account_id = 'A'").fetchone()[0]
    lines = con.execute("select count(*) from freshbooks.invoice_lines").fetchone()[0]
    con.close()
    print(f"loader emitted state {emitted}; account A: {invoices} invoices loaded, {lines} of 3 lines loaded")
    return emitted == delivered and lines == 0


def tap_half() -> bool:
    """True if the tap writes a STATE holding a finished partition's ledger mid-stream."""
    sys.path.insert(0, str(ROOT / "tests"))
    from chaos.harness import TAP, discovered_catalog  # noqa: PLC0415
    from conftest import tap_config  # noqa: PLC0415
    from freshbooks_emulator import FreshBooksEmulator  # noqa: PLC0415

    emu = FreshBooksEmulator(seed="empty").start()
    try:
        emu.seed_bulk("invoices", 9000, "zK3pQ7", days=1)
        emu.seed_bulk("invoices", 1500, "Rt8vW2", days=1)
        work = Path(tempfile.mkdtemp(prefix="rider-flush-"))
        (work / "config.json").write_text(json.dumps(tap_config(emu, work)))
        catalog = json.loads(discovered_catalog().read_text())
        for stream in catalog["streams"]:
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = stream["tap_stream_id"] in ("invoices", "invoice_lines")
        (work / "catalog.json").write_text(json.dumps(catalog))
        out = subprocess.run(
            [str(TAP), "--config", str(work / "config.json"), "--catalog", str(work / "catalog.json")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        emu.stop()
    invoices, found = 0, False
    for line in out.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD" and message["stream"] == "invoices":
            invoices += 1
        elif message["type"] == "STATE" and invoices < 10_500:
            parts = message["value"].get("bookmarks", {}).get("invoices", {}).get("partitions", [])
            seen = {
                p["context"]["account_id"]: len((p.get("fb_state") or {}).get("seen") or {}) for p in parts
            }
            print(f"STATE after invoice {invoices} of 10500: ledger entries per account {seen}")
            found = found or (0 < invoices < 10_500 and seen.get("zK3pQ7", 0) > 0)
    return found


def pipeline() -> bool:
    """End to end through ``meltano run``: True if invoice lines are missing after the normal run."""
    import time  # noqa: PLC0415

    sys.path.insert(0, str(ROOT / "tests"))
    from chaos import checks, processes  # noqa: PLC0415
    from chaos.harness import STREAMS, Harness  # noqa: PLC0415
    from chaos.requests_hook import Trigger  # noqa: PLC0415

    h = Harness(Path(tempfile.mkdtemp(prefix="rider-flush-")), bulk=[("invoices", 9000)], request_timeout=30)
    try:
        _first, second = (a["account_id"] for a in h.emu.accounts)
        lo, hi = h.emu.seed_bulk("invoices", 1500, second, days=1)
        for pk in range(lo, hi + 1):  # the second account's new invoices carry no lines
            h.emu.update("invoices", second, pk, lines=[])

        def kill_loader(_label: str):
            time.sleep(5)  # let the loader take in the last invoice page and flush its 700-row batch
            victim = processes.find_role(h.meltano_proc.pid, "target")
            processes.sigkill(victim)
            return "loader killed", None

        # 10,514 invoices: the SDK's STATE after invoice 10,000 says the first account is delivered;
        # the invoices batch (700 rows) fills at invoice 10,500, the lines batch does not
        trigger = Trigger(h.emu, None, kill_loader, where=f"invoices {second} deleted p1")
        run = h.meltano(
            "first-run-loader-killed",
            hook=trigger,
            extra_env={"TARGET_DUCKDB_BATCH_SIZE_ROWS": "700"},
            timeout=1200,
        )
        print(f"first run: exit {run.returncode}, {run.seconds:.0f} s, kill: {trigger.fired}")
        run = h.meltano("normal", timeout=1200)
        print(f"normal run: exit {run.returncode}, {run.seconds:.0f} s")
        verdict = checks.Verdict()
        checks.own_check(h.emu, h.warehouse, {}, STREAMS, verdict)
        print(verdict)
        return any(
            p.startswith(("invoice_lines: current line missing", "bill_payments: missing"))
            for p in verdict.problems
        )
    finally:
        h.close()


if __name__ == "__main__":
    ok = pipeline() if "--pipeline" in sys.argv else tap_half() if "--tap" in sys.argv else loader_half()
    print("reproduced" if ok else "not reproduced")
    sys.exit(0 if ok else 1)
