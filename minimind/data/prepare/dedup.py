"""``--dedup exact``: drop a document whose normalised text was already seen.

Normalised means Unicode NFC with every run of whitespace collapsed to one space and none at the
ends (``" ".join(unicodedata.normalize("NFC", text).split())``). Workers hash each kept document
(BLAKE2b, 8 bytes); the main process decides, in input order, which documents come first, so the
result does not depend on the number of workers.

Memory is 8 bytes per distinct document (16 during the largest merge): the seen hashes live in a
few sorted numpy arrays of doubling size (a log-structured merge), not in a Python set (about 70
bytes per entry). Two different texts share a 64-bit hash with probability about n^2 / 2^65: one
in 10 million for a corpus of 2 million documents.
"""

from __future__ import annotations

import hashlib
import unicodedata

import numpy as np

# Hangul vowel and trailing-consonant jamo compose with the syllable before them (as marks do).
_JAMO_VT = ((0x1161, 0x1175), (0x11A8, 0x11C2))
# A huge text without a single safe cut in this many characters is cut anyway (never seen in text).
_MAX_HELD = 1 << 20


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def text_hash(text: str) -> int:
    """The 64-bit hash of a document's normalised text."""
    return _digest(normalize(text).encode("utf-8", "surrogatepass"))


def _starts_segment(ch: str) -> bool:
    """Whether NFC never joins ``ch`` to the character before it (a starter that composes with
    nothing before it): text cut just before ``ch`` normalises piece by piece as it does whole."""
    if unicodedata.combining(ch) or unicodedata.category(ch)[0] == "M":
        return False
    o = ord(ch)
    return not any(lo <= o <= hi for lo, hi in _JAMO_VT)


class TextHasher:
    """``text_hash`` of a text that arrives in parts (a huge document read block by block)."""

    def __init__(self):
        self._hash = hashlib.blake2b(digest_size=8)
        self._held = ""  # the tail that may still combine with what comes next
        self._started = False  # a word was hashed
        self._space = False  # whitespace since the last word hashed

    def feed(self, part: str) -> None:
        text = self._held + part
        cut = len(text)
        while cut > 0 and not _starts_segment(text[cut - 1]):
            cut -= 1
        cut = max(cut - 1, 0)  # the last starter stays: it may compose with what follows
        if cut == 0 and len(text) > _MAX_HELD:
            cut = len(text) - 1
        self._held = text[cut:]
        self._emit(unicodedata.normalize("NFC", text[:cut]))

    def _emit(self, s: str) -> None:
        if not s:
            return
        words = s.split()
        if words:
            out = " ".join(words)
            if self._started and (self._space or s[0].isspace()):
                out = " " + out
            self._hash.update(out.encode("utf-8", "surrogatepass"))
            self._started = True
        self._space = s[-1].isspace()

    def digest(self) -> int:
        self._emit(unicodedata.normalize("NFC", self._held))
        self._held = ""
        return int.from_bytes(self._hash.digest(), "little")


class SeenHashes:
    """The hashes of the documents kept so far, as sorted runs of doubling size."""

    def __init__(self):
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def first_seen(self, hashes: np.ndarray) -> np.ndarray:
        """Which of ``hashes`` (in order) were never seen before, counting earlier ones in this array; remembers them."""
        keep = np.zeros(len(hashes), dtype=bool)
        if not len(hashes):
            return keep
        uniq, first = np.unique(hashes.astype(np.uint64), return_index=True)
        seen = np.zeros(len(uniq), dtype=bool)
        for run in self.runs:
            idx = np.minimum(np.searchsorted(run, uniq), len(run) - 1)
            seen |= run[idx] == uniq
        keep[first[~seen]] = True
        self._add(uniq[~seen])
        return keep

    def _add(self, run: np.ndarray) -> None:
        if not len(run):
            return
        while self.runs and len(self.runs[-1]) <= len(run):
            merged = np.concatenate([self.runs.pop(), run])
            merged.sort(kind="stable")  # two sorted runs: a linear merge
            run = merged
        self.runs.append(run)
