"""The chaos table: per trial kind, trials, faults injected, records compared, mismatches, re-sends."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from chaos.trials import TrialResult

COLUMNS = (
    "trial kind",
    "trials",
    "faults injected",
    "distinct kill points",
    "records compared",
    "missing",
    "extra",
    "duplicate",
    "stale",
    "steady runs",
    "unchanged re-sent",
    "failed",
    "seconds",
)


def rows(results: t.Sequence[TrialResult]) -> list[list[str]]:
    kinds: dict[str, list[TrialResult]] = {}
    for res in results:
        kinds.setdefault(res.kind, []).append(res)
    table = []
    for kind, group in [*kinds.items(), ("total", list(results))]:
        verdicts = [r.verdict for r in group if r.verdict is not None]
        points = {p for r in group for p in r.points}
        table.append(
            [
                kind,
                str(len(group)),
                str(sum(r.faults for r in group)),
                str(len(points)) if points else "-",
                str(sum(v.compared for v in verdicts)),
                str(sum(v.missing for v in verdicts)),
                str(sum(v.extra for v in verdicts)),
                str(sum(v.duplicates for v in verdicts)),
                str(sum(v.stale for v in verdicts)),
                str(sum(1 for r in group if r.steady)),
                str(sum(r.resent_total for r in group)),
                str(sum(1 for r in group if not r.ok)),
                f"{sum(r.seconds for r in group):.0f}",
            ]
        )
    return table


def render(results: t.Sequence[TrialResult]) -> str:
    body = rows(results)
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(  # noqa: E731
        cell.ljust(w) if i == 0 else cell.rjust(w)
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
    )
    out = [line(list(COLUMNS)), line(["-" * w for w in widths])]
    out += [line(r) for r in body[:-1]]
    out += [line(["-" * w for w in widths]), line(body[-1])]
    return "\n".join(out)
