"""Stands in for `meltano` in runner tests: records each invocation, then succeeds or fails.

Environment (all optional):
  FAKE_MELTANO_RECORD   file to append one JSON line per invocation to (argv, tap env vars, times, pid)
  FAKE_MELTANO_SLEEP    seconds to sleep before exiting
  FAKE_MELTANO_POISON   comma list of record ids: exit 1 if the run's TAP_FRESHBOOKS_RECORD_IDS has one
  FAKE_MELTANO_FAIL_FILE  while this file exists, exit 1
  FAKE_MELTANO_FAIL_INVOKE_FILE  while this file exists, `meltano invoke ...` (post-load steps) exits 1
  FAKE_MELTANO_BUSY_FILE  while this file exists, print Meltano's "already running" error and exit 1
                          (if it contains "unless-force", --force gets through)
"""

import json
import os
import sys
import time

PREFIX = "TAP_FRESHBOOKS"


def main() -> int:
    started = time.time()
    record_ids = json.loads(os.environ.get(f"{PREFIX}_RECORD_IDS", "null") or "null")
    entry = {
        "argv": sys.argv[1:],
        "pid": os.getpid(),
        "started": started,
        "record_ids": record_ids,
        "event_received_at": json.loads(os.environ.get(f"{PREFIX}_EVENT_RECEIVED_AT", "null") or "null"),
        "select_filter": json.loads(os.environ.get(f"{PREFIX}__SELECT_FILTER", "null") or "null"),
        "account_ids": json.loads(os.environ.get(f"{PREFIX}_ACCOUNT_IDS", "null") or "null"),
        "bridge_vars": sorted(k for k in os.environ if k.startswith("WEBHOOK_BRIDGE_")),
        "cwd": os.getcwd(),
    }
    print("fake meltano starting", flush=True)
    busy = os.environ.get("FAKE_MELTANO_BUSY_FILE")
    if busy and os.path.exists(busy):
        with open(busy) as f:
            mode = f.read().strip()
        if not (mode == "unless-force" and "--force" in sys.argv):
            entry.update(outcome="busy", ended=time.time())
            _record(entry)
            print(
                "Another 'dev:tap-freshbooks-to-target-duckdb' pipeline is already running "
                "which started at 2026-11-25. Wait until ...",
                file=sys.stderr,
                flush=True,
            )
            return 1
    time.sleep(float(os.environ.get("FAKE_MELTANO_SLEEP", "0") or 0))
    poison = {int(x) for x in os.environ.get("FAKE_MELTANO_POISON", "").split(",") if x.strip()}
    ids = {i for values in (record_ids or {}).values() for i in values}
    fail_file = os.environ.get("FAKE_MELTANO_FAIL_FILE")
    if poison & ids:
        entry.update(outcome="poison", ended=time.time())
        _record(entry)
        print(f"tap failed on record {sorted(poison & ids)}", file=sys.stderr, flush=True)
        return 1
    fail_invoke = os.environ.get("FAKE_MELTANO_FAIL_INVOKE_FILE")
    if sys.argv[1:2] == ["invoke"] and fail_invoke and os.path.exists(fail_invoke):
        fail_file = fail_invoke
    if fail_file and os.path.exists(fail_file):
        entry.update(outcome="failed", ended=time.time())
        _record(entry)
        print("target: warehouse unavailable", file=sys.stderr, flush=True)
        return 1
    entry.update(outcome="ok", ended=time.time())
    _record(entry)
    return 0


def _record(entry: dict) -> None:
    path = os.environ.get("FAKE_MELTANO_RECORD")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


if __name__ == "__main__":
    sys.exit(main())
