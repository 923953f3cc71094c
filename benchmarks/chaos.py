"""The chaos suite's trials, run longer: faults injected into real pipeline runs, exactly-once checked.

    .venv/bin/python benchmarks/chaos.py [--trials 60] [--seed 1] [--kinds kill_tap,storm,...]
                                         [--workdir DIR] [--keep]

The same trial kinds as ``pytest -m chaos`` (tests/chaos/trials.py): SIGKILL of the tap at request
numbers spread over every stream and page, of target-duckdb mid-batch and of meltano itself; storms
of 429, 5xx, connection resets, timeouts, truncated and garbage bodies; access tokens expiring
mid-run; two runs racing for one token store; duplicate and out-of-order webhooks during a poll;
record_ids runs between polls with webhooks dropped. Random FreshBooks changes (seeded) come before
every fault. After each trial one normal ``meltano run``, then ``tap-freshbooks reconcile`` and a
check against the emulator's store must find 0 missing, 0 extra, 0 duplicate and 0 stale rows, and a
steady-state run must re-send 0 rows.

``--trials`` is the total; kinds take turns in the order of ``MIX`` (kills of the tap most often).
Prints one line per trial and the table; exits 1 if any trial failed, after printing what reproduces
it (seed, kind, trial number, kill points, changes).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from chaos import report, trials  # noqa: E402
from chaos.harness import Harness  # noqa: E402

#: one round of trial kinds (repeated until --trials is reached)
MIX = (
    "kill_tap",
    "storm",
    "kill_target",
    "kill_tap",
    "token_expiry",
    "webhooks_dropped",
    "kill_tap",
    "kill_meltano",
    "storm",
    "token_race",
    "kill_target",
    "webhooks_during_poll",
    "kill_target_full_refresh",
)
WEBHOOK_KINDS = {"webhooks_dropped", "webhooks_during_poll"}
LEGEND = """
faults injected: kills (kill_*), fault answers of the emulator (storm: 429, 503, resets, timeouts,
truncated and garbage bodies, token-endpoint 503), token expiries and refreshes (token_*), webhook
ids run as record_ids, duplicates included, plus dropped webhooks (webhooks_*). distinct kill points:
(process killed, request: stream account pass page). records compared: FreshBooks records and
invoice lines checked after each trial. missing / extra / duplicate / stale: the larger count of
reconcile and of the check against the emulator's store. unchanged re-sent: rows loaded again by
a steady-state run (no change since the last complete run), and rows a poll re-sent that a
record_ids run had delivered."""


def plan(total: int, kinds: list[str]) -> list[tuple[str, int]]:
    """(kind, trial number within the kind) for ``total`` trials."""
    mix = [k for k in MIX if k in kinds] or kinds
    counts: dict[str, int] = {}
    out = []
    for kind in itertools.islice(itertools.cycle(mix), total):
        out.append((kind, counts.get(kind, 0)))
        counts[kind] = counts.get(kind, 0) + 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60, help="total number of trials (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (default 1)")
    parser.add_argument("--kinds", default=",".join(trials.KINDS), help="comma-separated trial kinds")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where harnesses live (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, warehouses)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(trials.KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {', '.join(trials.KINDS)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-bench-"))
    schedule = plan(args.trials, kinds)
    print(f"chaos: {len(schedule)} trials, seed {args.seed}, work dir {workdir}", flush=True)

    harnesses: dict[str, Harness] = {}
    results: list[trials.TrialResult] = []
    started = time.monotonic()
    try:
        for kind, number in schedule:
            group = "webhooks" if kind in WEBHOOK_KINDS else "poll"
            if group not in harnesses:
                bulk = [] if group == "webhooks" else [("invoices", 110), ("clients", 110)]
                harnesses[group] = Harness(workdir / group, bulk=bulk)
                trials.start(harnesses[group])
            res = trials.run_trial(harnesses[group], kind, number, args.seed)
            results.append(res)
            status = "ok" if res.ok else "FAILED"
            points = "; ".join(res.kill_points)
            print(
                f"[{len(results):3d}/{len(schedule)}] {kind:<21} #{number:<3} {status:<6} {res.seconds:5.1f} s"
                f"  faults {res.faults:<3} {points}",
                flush=True,
            )
            if not res.ok:
                print(
                    res.describe(
                        f".venv/bin/python benchmarks/chaos.py --seed {args.seed} "
                        f"--kinds {','.join(kinds)} --trials {len(results)}"
                    ),
                    flush=True,
                )
        for group, h in harnesses.items():
            proc = h.reconcile_cli()
            print(f"tap-freshbooks reconcile ({group} warehouse): exit {proc.returncode}", flush=True)
            if proc.returncode != 0:
                print(proc.stdout[-3000:] + proc.stderr[-1000:])
                return 1
    finally:
        for h in harnesses.values():
            h.close()
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report.render(results))
    print(LEGEND)
    print(
        f"\n{len(results)} trials in {time.monotonic() - started:.0f} s, seed {args.seed}; "
        f"failed: {sum(1 for r in results if not r.ok)}"
    )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
