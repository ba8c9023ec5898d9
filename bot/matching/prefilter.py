"""Pick the few entries of a large knowledge base worth scoring, by shared character pairs.

Scoring a text against every pattern costs about a microsecond per pattern and scorer: nothing
for the real knowledge base (a few hundred patterns), a fifth of a second for ten thousand
entries. Above a size, the matcher first asks this index which entries share the most character
pairs (bigrams) with the text and scores only those, exactly as it would have.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.intp]
# A bigram is stored as one integer: first code point << _SHIFT | second code point.
_SHIFT = 21
_SPACE = ord(" ")


def _codepoints(text: str) -> npt.NDArray[np.int64]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def _bigrams(text: str) -> npt.NDArray[np.int64]:
    """Return the distinct bigram keys of a text's words, each word led by a space.

    Pairs never straddle two words, so a text that has all of a pattern's words, in any order
    and with others between them (what token_set_ratio rewards), holds all of its bigrams.
    """
    points = _codepoints(" " + text.replace(" ", "  "))
    pairs = (points[:-1] << _SHIFT) | points[1:]
    keys: npt.NDArray[np.int64] = np.unique(pairs[points[1:] != _SPACE])
    return keys


class BigramIndex:
    """For every bigram, the patterns that contain it; patterns are grouped (by entry)."""

    def __init__(self, texts: Sequence[str], group_starts: IntArray) -> None:
        self._group_starts = group_starts
        keys: list[npt.NDArray[np.int64]] = [_bigrams(t) for t in texts]
        sizes = np.array([len(k) for k in keys], dtype=np.intp)
        owners = np.repeat(np.arange(len(texts), dtype=np.int32), sizes)
        flat = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        # Sort by bigram: each bigram's patterns become one slice of `postings`.
        order = np.argsort(flat, kind="stable")
        flat = flat[order]
        self._postings: npt.NDArray[np.int32] = owners[order]
        self._keys, self._offsets = np.unique(flat, return_index=True)
        self._ends = np.append(self._offsets[1:], len(flat))
        self._sizes = np.maximum(sizes, 1).astype(np.float32)
        self._count = len(texts)

    def best_groups(self, windows: Sequence[str], limit: int) -> IntArray:
        """Return (sorted) the `limit` groups most alike any of the windows, by bigram overlap.

        A pattern's likeness is its bigram overlap relative to the smaller side (how much of a
        fragment or of a pasted message the other holds) plus the Dice coefficient (how alike
        the two are as wholes, which breaks the ties between everything a short text is in).
        """
        best = np.zeros(len(self._group_starts), dtype=np.float32)
        for window in windows:
            query = _bigrams(window)
            where = np.searchsorted(self._keys, query)
            where = where[where < len(self._keys)]
            where = where[np.isin(self._keys[where], query, assume_unique=True)]
            shared = np.bincount(
                np.concatenate(
                    [self._postings[self._offsets[i] : self._ends[i]] for i in where.tolist()]
                    or [np.zeros(0, dtype=np.int32)]
                ),
                minlength=self._count,
            ).astype(np.float32)
            size = np.float32(max(len(query), 1))
            likeness = shared / np.minimum(self._sizes, size) + 2 * shared / (self._sizes + size)
            np.maximum(best, np.maximum.reduceat(likeness, self._group_starts), out=best)
        if limit >= len(best):
            return np.arange(len(best), dtype=np.intp)
        chosen = np.argpartition(-best, limit - 1)[:limit]
        return np.sort(chosen).astype(np.intp)
