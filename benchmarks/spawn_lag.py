"""How long starting a child process holds up the bridge's event loop (not a test).

    .venv/bin/python benchmarks/spawn_lag.py [--children 40] [--heap-mb 150]

The process first grows to about the size of a running bridge (``--heap-mb`` of Python objects), then,
on uvloop (what uvicorn serves on) and on asyncio's own loop, starts ``--children`` short children
one after the other, each way in turn:

* ``before``: ``asyncio.create_subprocess_exec(..., preexec_fn=os.setpgrp)``, how the bridge started
  runs until 2026-12-03: fork in the loop's thread, Python in the child before exec;
* ``spawn``: ``webhook_bridge.spawn.spawn(..., own_process_group=True)``: ``subprocess.Popen`` with
  ``process_group=0`` in a worker thread (vfork), the exit awaited by a thread of its own.

A task that sleeps 1 ms in a loop measures the loop's lag (how late it wakes) meanwhile: what an
acknowledgement in flight waits on top of its own work. Printed per loop and way: how long the
``await`` of the start took, the lag p50 / p99 / max, and the ratio of the maxima.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "webhook-bridge"))

import uvloop  # noqa: E402

from webhook_bridge.spawn import DEVNULL, spawn  # noqa: E402


async def lag_monitor(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        samples.append(time.perf_counter() - started - 0.001)


async def start_before() -> None:
    proc = await asyncio.create_subprocess_exec(
        "true", stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL, preexec_fn=os.setpgrp
    )
    await proc.wait()


async def start_spawn() -> None:
    child = await spawn(
        ["true"], cwd=ROOT, env=os.environ, stdout=DEVNULL, stderr=DEVNULL, own_process_group=True
    )
    await child.wait()


async def measure(start: Callable[[], Coroutine[None, None, None]], children: int) -> dict[str, float]:
    samples: list[float] = []
    awaits: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(lag_monitor(samples, stop))
    await asyncio.sleep(0.05)
    for _ in range(children):
        started = time.perf_counter()
        await start()
        awaits.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    stop.set()
    await monitor
    samples.sort()
    return {
        "start_ms": statistics.median(awaits) * 1000,
        "lag_p50_ms": samples[len(samples) // 2] * 1000,
        "lag_p99_ms": samples[int(len(samples) * 0.99)] * 1000,
        "lag_max_ms": samples[-1] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=40)
    parser.add_argument("--heap-mb", type=int, default=150)
    args = parser.parse_args()
    heap = [bytearray(1024) for _ in range(args.heap_mb * 512)]  # half in buffers ...
    heap += [{"n": i, "s": str(i)} for i in range(args.heap_mb * 1500)]  # ... half in small objects
    print(
        f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, heap ~{args.heap_mb} MB, "
        f"{args.children} children per way"
    )
    print(
        f"{'loop':<8} {'way':<7} {'start ms (median)':>18} {'lag p50 ms':>11} {'lag p99 ms':>11} {'lag max ms':>11}"
    )
    for name, run in (("uvloop", uvloop.run), ("asyncio", asyncio.run)):
        results = {}
        for way, start in (("before", start_before), ("spawn", start_spawn)):
            r = results[way] = run(measure(start, args.children))
            print(
                f"{name:<8} {way:<7} {r['start_ms']:>18.2f} {r['lag_p50_ms']:>11.2f} "
                f"{r['lag_p99_ms']:>11.2f} {r['lag_max_ms']:>11.2f}",
                flush=True,
            )
        ratio = results["spawn"]["lag_max_ms"] / results["before"]["lag_max_ms"]
        print(f"{name:<8} lag max spawn / before: {ratio:.2f}")
    del heap
    return 0


if __name__ == "__main__":
    sys.exit(main())
