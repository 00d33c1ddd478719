"""Which encoded documents go into the dataset: ``--dedup exact`` and ``--max-documents`` /
``--max-tokens``, applied in the main process in input order (so the result is the same with any
number of workers).

Duplicates are dropped first; the limits then keep whole documents from the start of the corpus:
at most ``max_documents`` of them, and at most ``max_tokens`` tokens in all (bos and eos included).
The first document that does not fit ends the corpus there (prepare stops reading).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minimind.data.prepare.dedup import SeenHashes
from minimind.data.prepare.encode import Encoded


class Selection:
    def __init__(self, dedup: bool, max_documents: int | None, max_tokens: int | None):
        self.dedup = dedup
        self.seen = SeenHashes() if dedup else None
        self.max_documents, self.max_tokens = max_documents, max_tokens
        self.documents = self.tokens = self.duplicates = 0
        self.limit_reached: str | None = None  # "max_documents" or "max_tokens" once the corpus is cut

    def admit(self, block: Encoded) -> Encoded:
        """The documents of ``block`` that go into the dataset."""
        n = len(block.lengths)
        if n == 0:
            return block
        keep = np.ones(n, dtype=bool) if self.seen is None else self.seen.first_seen(block.hashes)
        end = n  # documents after this index (in block order) are past a limit
        kept = np.flatnonzero(keep)
        if self.max_documents is not None and self.documents + len(kept) >= self.max_documents:
            allowed = self.max_documents - self.documents
            if allowed < len(kept):
                end = int(kept[allowed])
            self.limit_reached = "max_documents"
            kept = kept[:allowed]
        if self.max_tokens is not None and len(kept):
            total = self.tokens + np.cumsum(block.lengths[kept])
            fit = int(np.searchsorted(total, self.max_tokens, side="right"))
            if fit < len(kept):
                end = min(end, int(kept[fit]))
                kept = kept[:fit]
                self.limit_reached = "max_tokens"
        keep[end:] = False
        if self.seen is not None:
            self.duplicates += end - int(np.count_nonzero(keep[:end]))
        self.documents += len(kept)
        self.tokens += int(block.lengths[keep].sum())
        if keep.all():
            return block
        return Encoded(block.tokens[np.repeat(keep, block.lengths)], block.lengths[keep], block.skipped, None)

    def meta(self) -> dict[str, Any]:
        """What meta.json records about dedup and the limits (nothing when neither was asked for)."""
        out: dict[str, Any] = {}
        if self.dedup:
            out["duplicates_removed"] = self.duplicates
        if self.max_documents is not None or self.max_tokens is not None:
            out["stopped_at_limit"] = self.limit_reached
        return out
