"""Random FreshBooks changes between (or during) runs, from a seeded RNG.

Creates, updates, soft deletes (some without bumping ``updated``, the UNCONFIRMED FreshBooks
behaviour), archives, restores and invoice line changes, on every stream the emulator lets a user
change. Each update writes a unique marker into one text field, so the check can tell an old version
in the warehouse from the current one (``Changes.marks``). The clock moves 1-20 s before each
change, so no two versions of a record share an ``updated`` second.

Not changed on purpose: hard deletes (taxes, projects), which the product documents as a known limit
("their last version stays in the warehouse", docs/design.md), and read-only streams.
"""

from __future__ import annotations

import dataclasses
import random
import typing as t
from decimal import Decimal

#: stream -> the text field a change marks (a column of that stream's table in the warehouse)
MARKED_FIELD = {
    "bill_payments": "note",
    "clients": "organization",
    "invoices": "notes",
    "payments": "note",
    "expenses": "notes",
    "items": "description",
    "bills": "overall_description",
    "bill_vendors": "city",
    "credit_notes": "notes",
    "other_incomes": "note",
    "projects": "description",
    "services": "name",
    "time_entries": "note",
}
#: streams with soft deletes (vis_state 1) and archives (vis_state 2)
SOFT_DELETE = (
    "bill_payments",
    "clients",
    "invoices",
    "payments",
    "expenses",
    "items",
    "bills",
    "bill_vendors",
    "credit_notes",
    "other_incomes",
)

OPS = (("update", 34), ("create", 18), ("lines", 16), ("delete", 12), ("archive", 6), ("restore", 14))


@dataclasses.dataclass(frozen=True)
class Change:
    op: str
    stream: str
    account_id: str
    id: str
    note: str = ""

    def __str__(self) -> str:
        extra = f" ({self.note})" if self.note else ""
        return f"{self.op} {self.stream} {self.account_id}/{self.id}{extra}"


class Changes:
    """Applies random changes to one emulator and remembers what the warehouse must end up holding."""

    def __init__(self, emu, accounts: t.Sequence[str] | None = None) -> None:
        self.emu = emu
        self.accounts = list(accounts or [a["account_id"] for a in emu.accounts])
        #: (stream, account_id, id) -> (field, marker): the newest marker each changed record holds
        self.marks: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.applied: list[Change] = []
        self._n = 0

    # -- public ----------------------------------------------------------------------------------
    def apply(self, rng: random.Random, count: int, tag: str) -> list[Change]:
        """``count`` random changes; returns them (also appended to ``applied``)."""
        done: list[Change] = []
        ops, weights = zip(*OPS, strict=True)
        while len(done) < count:
            op = rng.choices(ops, weights)[0]
            change = getattr(self, f"_{op}")(rng, tag)
            if change is not None:
                done.append(change)
        self.applied.extend(done)
        return done

    def touch(self, rng: random.Random, stream: str, account_id: str, record_id: str, tag: str) -> Change:
        """One marked update of a given record."""
        self._tick(rng)
        return self._mark(stream, account_id, record_id, tag, "update")

    # -- helpers ---------------------------------------------------------------------------------
    def _tick(self, rng: random.Random) -> None:
        self.emu.advance(rng.randint(1, 20))

    def _marker(self, tag: str) -> str:
        self._n += 1
        return f"chaos {tag} #{self._n}"

    def _pk(self, stream: str, record_id: str) -> t.Any:
        spec = self.emu.spec(stream)
        return record_id if spec.pk == "uuid" else int(record_id)

    def _ids(self, stream: str, account_id: str, vis: t.Container[int] | None = None) -> list[str]:
        out = []
        for pk in self.emu.store.ids(stream, account_id):
            if vis is not None:
                rec = self.emu.get(stream, account_id, pk)
                if rec is None or int(rec.get("vis_state") or 0) not in vis:
                    continue
            out.append(str(pk))
        return out

    def _mark(self, stream: str, account_id: str, record_id: str, tag: str, op: str) -> Change:
        field = MARKED_FIELD[stream]
        marker = self._marker(tag)
        self.emu.update(stream, account_id, self._pk(stream, record_id), **{field: marker})
        self.marks[(stream, account_id, record_id)] = (field, marker)
        return Change(op, stream, account_id, record_id, f"{field}={marker!r}")

    # -- operations ------------------------------------------------------------------------------
    def _update(self, rng: random.Random, tag: str) -> Change | None:
        stream, account_id = rng.choice(sorted(MARKED_FIELD)), rng.choice(self.accounts)
        ids = self._ids(stream, account_id)
        if not ids:
            return None
        self._tick(rng)
        return self._mark(stream, account_id, rng.choice(ids), tag, "update")

    def _create(self, rng: random.Random, tag: str) -> Change:
        stream, account_id = rng.choice(sorted(MARKED_FIELD)), rng.choice(self.accounts)
        field = MARKED_FIELD[stream]
        marker = self._marker(tag)
        fields: dict[str, t.Any] = {field: marker}
        if stream == "invoices":
            fields["lines"] = [self._new_line(rng) for _ in range(rng.randint(1, 3))]
        self._tick(rng)
        rec = self.emu.create(stream, account_id, **fields)
        record_id = str(rec[self.emu.spec(stream).pk])
        self.marks[(stream, account_id, record_id)] = (field, marker)
        return Change("create", stream, account_id, record_id, f"{field}={marker!r}")

    @staticmethod
    def _new_line(rng: random.Random) -> dict:
        cents = rng.randint(100, 99_999)
        return {
            "name": rng.choice(["Design", "Hosting", "Support", "Audit", "Training"]),
            "qty": rng.randint(1, 5),
            "unit_cost": str(Decimal(cents) / 100),
        }

    def _lines(self, rng: random.Random, tag: str) -> Change | None:  # noqa: ARG002
        account_id = rng.choice(self.accounts)
        ids = self._ids("invoices", account_id, vis={0, 2})
        if not ids:
            return None
        record_id = rng.choice(ids)
        lines = [
            dict(line) for line in (self.emu.get("invoices", account_id, int(record_id)).get("lines") or [])
        ]
        how = rng.choice(["add", "remove", "qty"]) if lines else "add"
        if how == "add":
            line = self._new_line(rng)
            line["lineid"] = max((int(x["lineid"]) for x in lines), default=0) + 1
            lines.append(line)
        elif how == "remove" and len(lines) > 1:
            lines.pop(rng.randrange(len(lines)))
        else:
            how = "qty"
            line = rng.choice(lines)
            line["qty"] = str(int(Decimal(str(line["qty"]))) + rng.randint(1, 3))
            line.pop("amount", None)
        for line in lines:
            line.pop("updated", None)
        self._tick(rng)
        self.emu.update("invoices", account_id, int(record_id), lines=lines)
        return Change("lines", "invoices", account_id, record_id, f"{how} -> {len(lines)} lines")

    def _delete(self, rng: random.Random, tag: str) -> Change | None:  # noqa: ARG002
        stream, account_id = rng.choice(SOFT_DELETE), rng.choice(self.accounts)
        ids = self._ids(stream, account_id, vis={0, 2})
        if not ids:
            return None
        record_id = rng.choice(ids)
        quiet = rng.random() < 0.5
        self._tick(rng)
        before = self.emu.delete_bumps_updated
        self.emu.delete_bumps_updated = not quiet
        try:
            self.emu.delete(stream, account_id, int(record_id))
        finally:
            self.emu.delete_bumps_updated = before
        return Change("delete", stream, account_id, record_id, "updated not bumped" if quiet else "")

    def _archive(self, rng: random.Random, tag: str) -> Change | None:  # noqa: ARG002
        stream, account_id = rng.choice(SOFT_DELETE), rng.choice(self.accounts)
        ids = self._ids(stream, account_id, vis={0})
        if not ids:
            return None
        record_id = rng.choice(ids)
        self._tick(rng)
        self.emu.archive(stream, account_id, int(record_id))
        return Change("archive", stream, account_id, record_id)

    def _restore(self, rng: random.Random, tag: str) -> Change | None:  # noqa: ARG002
        stream, account_id = rng.choice(SOFT_DELETE), rng.choice(self.accounts)
        ids = self._ids(stream, account_id, vis={1, 2})
        if not ids:
            return None
        record_id = rng.choice(ids)
        self._tick(rng)
        self.emu.update(stream, account_id, int(record_id), vis_state=0)
        return Change("restore", stream, account_id, record_id)
