"""Find known secrets in text quickly, and report where without ever repeating them.

Checking thousands of secrets against megabytes of logs with ``secret in text`` one by one is too slow
for a test-suite hook, so the index uses aligned blocks: cut the text into consecutive ``BLOCK``-char
blocks starting at offset 0. Any occurrence of a secret at least ``2 * BLOCK - 1`` chars long contains
one whole block, and that block is one of the ``BLOCK`` substrings of the secret that start in its last
``2 * BLOCK - 1`` chars (the random tail of a token, never a shared prefix such as a JWT header). So
those substrings are indexed, the text's blocks are intersected with the index (C speed), and each
candidate is confirmed with a plain substring test. Secrets of 8 to ``2 * BLOCK - 2`` chars (a handful
of fixed client secrets) are tested directly.

Each secret is looked for as issued and percent-encoded (as it would appear in a logged URL or form).
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import quote

MIN_SECRET_CHARS = 8
BLOCK = 8
_BLOCKS = re.compile(f".{{{BLOCK}}}", re.DOTALL)
_CHUNK = BLOCK * 131072  # scan long texts 1 MiB at a time (a multiple of BLOCK keeps blocks aligned)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One secret found in one output (the secret itself is deliberately not kept)."""

    test: str
    where: str
    kind: str
    line: int

    def describe(self) -> str:
        return f"{self.test}: {self.kind} in {self.where} (line {self.line})"


class SecretIndex:
    """Secrets to look for, with their kind (``access_token``, ``webhook_signature`` ...)."""

    def __init__(self) -> None:
        self._kinds: dict[str, str] = {}  # secret -> kind
        self._blocks: dict[str, list[str]] = {}  # block -> variants whose tail holds it
        self._variant_of: dict[str, str] = {}  # variant -> secret
        self._short: list[str] = []  # variants too short for blocks

    def __len__(self) -> int:
        return len(self._kinds)

    def __contains__(self, secret: str) -> bool:
        return secret in self._kinds

    def add(self, secret: str, kind: str) -> None:
        if len(secret) < MIN_SECRET_CHARS or secret in self._kinds:
            return
        self._kinds[secret] = kind
        for variant in {secret, quote(secret, safe="")}:
            self._variant_of[variant] = secret
            if len(variant) < 2 * BLOCK - 1:
                self._short.append(variant)
                continue
            tail = len(variant) - (2 * BLOCK - 1)
            for offset in range(tail, tail + BLOCK):
                self._blocks.setdefault(variant[offset : offset + BLOCK], []).append(variant)

    def update(self, secrets: dict[str, str]) -> None:
        for secret, kind in secrets.items():
            self.add(secret, kind)

    def find(self, text: str) -> list[tuple[str, int]]:
        """``[(kind, line), ...]`` of every indexed secret in ``text`` (first occurrence each)."""
        if not text or not self._kinds:
            return []
        candidates: set[str] = set()
        for start in range(0, len(text), _CHUNK):
            for block in set(_BLOCKS.findall(text, start, start + _CHUNK)).intersection(self._blocks):
                candidates.update(self._blocks[block])
        candidates.update(self._short)
        found: dict[str, int] = {}
        for variant in candidates:
            position = text.find(variant)
            if position < 0:
                continue
            secret = self._variant_of[variant]
            if secret not in found or position < found[secret]:
                found[secret] = position
        return sorted(
            ((self._kinds[secret], text.count("\n", 0, position) + 1) for secret, position in found.items()),
            key=lambda item: item[1],
        )
