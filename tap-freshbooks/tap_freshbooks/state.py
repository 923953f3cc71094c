"""The tap's own state, per (account, stream): a versioned model the tap alone moves.

One partition of the Singer STATE (``bookmarks.<stream>.partitions[i]``) looks like this
(JSON schema: ``docs/state.schema.json``; rules: README "How exactly once works")::

    {
      "context": {"account_id": "zK3pQ7"},
      "replication_key": "updated",                 # mirror of fb_state.bookmark, for `meltano state get`
      "replication_key_value": "2026-11-20T14:03:11Z",
      "fb_state": {
        "version": 2,
        "strategy": "updated",                      # updated | server_since | date_window | snapshot
        "bookmark": "2026-11-20T14:03:11Z",         # see Bookmark rules below
        "seen": {"<id>": ["<fingerprint>", "<recency>"]},   # versions delivered (change ledger)
        "deleted": {"<id>": "<fingerprint>"}                 # deletions delivered
      }
    }

Bookmark rules (each has a test in tests/tap/test_state_rules.py):

1. A bookmark only moves forward (``advance`` ignores anything not newer).
2. Only a complete poll moves it, to a point at or below which everything was delivered: the
   newest ``updated`` the poll *read* (``updated``), or the instant the poll started
   (``server_since``/``date_window``, whose records carry no change time).
3. A ``record_ids`` (webhook) run writes ledger entries only, never the bookmark.
4. The SDK never touches it: its progress markers, signposts and finalize step are disabled
   (``sdk_compat.OwnedStateManager``).

Version 1 (before 2026-12) kept ``fb_ledger: {"v": 1, "seen", "deleted"}`` plus the SDK's
``replication_key_value`` and an ``fb_since`` key; ``PartitionState.load`` migrates it.
"""

from __future__ import annotations

import typing as t

STATE_KEY = "fb_state"
STATE_VERSION = 2
#: keys the SDK (or version 1) wrote and this model drops
LEGACY_KEYS = (
    "fb_ledger",
    "fb_since",
    "progress_markers",
    "starting_replication_value",
    "replication_key_signpost",
)


class StateVersionError(ValueError):
    """The state was written by a newer tap-freshbooks."""


class PartitionState:
    """Read, migrate and write the tap's state of one (account, stream) partition."""

    def __init__(
        self,
        raw: dict[str, t.Any],
        *,
        strategy: str,
        bookmark: str | None,
        seen: dict[str, list[str]],
        deleted: dict[str, str],
    ) -> None:
        self._raw = raw
        self.strategy = strategy
        self.bookmark = bookmark
        self.seen = seen
        self.deleted = deleted

    # -- reading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, raw: dict[str, t.Any], *, strategy: str) -> PartitionState:
        """Read a partition's state dict (any version) without changing it."""
        own = raw.get(STATE_KEY)
        if isinstance(own, dict):
            version = int(own.get("version") or 0)
            if version > STATE_VERSION:
                msg = (
                    f"the state was written by a newer tap-freshbooks (state version {version}, this "
                    f"tap reads up to {STATE_VERSION}); upgrade tap-freshbooks"
                )
                raise StateVersionError(msg)
            return cls(
                raw,
                strategy=strategy,
                bookmark=own.get("bookmark") or None,
                seen=dict(own.get("seen") or {}),
                deleted=dict(own.get("deleted") or {}),
            )
        return cls._from_v1(raw, strategy=strategy)

    @classmethod
    def _from_v1(cls, raw: dict[str, t.Any], *, strategy: str) -> PartitionState:
        """Version 1: ``fb_ledger`` + SDK ``replication_key_value`` (+ ``fb_since``)."""
        ledger = raw.get("fb_ledger") or {}
        if strategy in {"server_since", "date_window"}:
            bookmark = raw.get("fb_since")
        elif strategy == "updated":
            bookmark = raw.get("replication_key_value")
        else:
            bookmark = None
        return cls(
            raw,
            strategy=strategy,
            bookmark=str(bookmark) if bookmark else None,
            seen=dict(ledger.get("seen") or {}),
            deleted=dict(ledger.get("deleted") or {}),
        )

    # -- rules ----------------------------------------------------------------------------------
    def advance(self, value: str | None) -> bool:
        """Move the bookmark forward to ``value`` (rule 1: never backwards). True if it moved."""
        if not value or (self.bookmark is not None and value <= self.bookmark):
            return False
        self.bookmark = value
        return True

    # -- writing --------------------------------------------------------------------------------
    def save(self, *, replication_key: str | None) -> None:
        """Write this state back into the partition dict, in the current version."""
        for key in LEGACY_KEYS:
            self._raw.pop(key, None)
        if replication_key and self.bookmark:
            self._raw["replication_key"] = replication_key
            self._raw["replication_key_value"] = self.bookmark
        else:
            self._raw.pop("replication_key", None)
            self._raw.pop("replication_key_value", None)
        self._raw[STATE_KEY] = {
            "version": STATE_VERSION,
            "strategy": self.strategy,
            "bookmark": self.bookmark,
            "seen": self.seen,
            "deleted": self.deleted,
        }


def partition_states(tap_state: t.Mapping[str, t.Any], stream: str) -> list[dict[str, t.Any]]:
    """Every partition dict of a stream in a tap state (for tools and tests)."""
    bookmarks = (tap_state.get("bookmarks") or {}).get(stream) or {}
    return list(bookmarks.get("partitions") or [])
