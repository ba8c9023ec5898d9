"""Spelling scores of texts against patterns: rapidfuzz's scorers, in batches, only where needed."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

FloatArray = npt.NDArray[np.float32]

# partial_ratio, the dearest lexical scorer, is skipped where it cannot lift a pair to this.
PARTIAL_FLOOR = 60.0

# A text contained in a pattern (a fragment) or a pattern contained in a text (a pasted message
# inside a sentence) scores its partial_ratio (or token_set_ratio, its word-level cousin) times
# PARTIAL_BASE + PARTIAL_SPAN * (shorter length / longer length): a verbatim message (100) still
# beats a longer pattern that merely contains it (at most 95), and among containing patterns the
# tightest fit wins.
PARTIAL_BASE = 0.8
PARTIAL_SPAN = 0.15
# A pattern whose characters all occur, in order, in a longer text with a few words inserted
# ("iPhoneの写真がMacに同期されない" for "写真が同期されない") scores
# 100 * LCS / (pattern length + RECALL_EXTRA_COST * the text's characters outside the LCS),
# times RECALL_WEIGHT: missing pattern characters cost fully, extra text characters a little.
RECALL_EXTRA_COST = 0.15
RECALL_WEIGHT = 0.95
# partial_ratio finds any short string somewhere in a long one; below this many normalised
# characters on the shorter side ("icloud", "えら") a partial hit is no evidence at all.
PARTIAL_MIN_LEN = 8
# partial_ratio runs on this many windows of a long text: those in which some pattern's characters
# occur most completely, in order (LCS / pattern length), which a pasted message always tops.
PARTIAL_WINDOWS = 4
# cdist starts threads only when a batch has this many rows; for one short query they cost more
# than they save.
PARALLEL_MIN_ROWS = 256


@dataclass(frozen=True, slots=True)
class Patterns:
    """Every entry's normalised patterns, grouped by entry, with what the scoring needs of them."""

    texts: npt.NDArray[np.object_]
    lengths: FloatArray
    has_space: npt.NDArray[np.bool_]
    word_sorted: npt.NDArray[np.object_]  # for token_sort_ratio (see token_sort)
    word_sorted_lengths: FloatArray
    repeats_word: npt.NDArray[np.bool_]  # for token_set_ratio (see contained)
    # word -> the patterns holding it, as columns of the whole set; a subset's own columns
    # there (None: the whole set)
    word_columns: dict[str, npt.NDArray[np.intp]]
    whole: int
    columns: npt.NDArray[np.intp] | None = None

    @classmethod
    def of(cls, texts: Sequence[str]) -> Patterns:
        """Return the patterns with what the scorers need of them."""
        ordered = [word_sorted(t) for t in texts]
        return cls(
            texts=np.array(texts, dtype=object),
            lengths=np.array([len(p) for p in texts], dtype=np.float32),
            has_space=np.array([" " in p for p in texts], dtype=bool),
            word_sorted=np.array(ordered, dtype=object),
            word_sorted_lengths=np.array([len(p) for p in ordered], dtype=np.float32),
            repeats_word=np.array([_repeats_word(t) for t in texts], dtype=bool),
            word_columns=_word_columns(texts),
            whole=len(texts),
        )

    def subset(self, columns: npt.NDArray[np.intp]) -> Patterns:
        """Return these patterns only (still grouped by entry when columns are sorted)."""
        return Patterns(
            self.texts[columns],
            self.lengths[columns],
            self.has_space[columns],
            self.word_sorted[columns],
            self.word_sorted_lengths[columns],
            self.repeats_word[columns],
            self.word_columns,
            self.whole,
            columns if self.columns is None else self.columns[columns],
        )

    def sharing_a_word(self, words: Iterable[str]) -> npt.NDArray[np.bool_]:
        """Tell for each pattern whether it holds one of these words."""
        found = np.zeros(self.whole, dtype=bool)
        for word in words:
            columns = self.word_columns.get(word)
            if columns is not None:
                found[columns] = True
        return found if self.columns is None else found[self.columns]


class Batch:
    """The windows of a batch against the patterns, and the cdist calls between them."""

    def __init__(self, windows: list[str], patterns: Patterns) -> None:
        self.windows = np.array(windows, dtype=object)
        self.patterns = patterns.texts
        self.text_len = np.array([len(w) for w in windows], dtype=np.float32)[:, None]
        self.pattern_len = patterns.lengths[None, :]
        self.word_sorted = np.array([word_sorted(w) for w in windows], dtype=object)
        self.sorted_text_len = np.array([len(w) for w in self.word_sorted], dtype=np.float32)
        self.sorted_text_len = self.sorted_text_len[:, None]
        self.sorted_patterns = patterns.word_sorted
        self.sorted_pattern_len = patterns.word_sorted_lengths[None, :]
        self.shorter = np.minimum(self.text_len, self.pattern_len)
        self.longer = np.maximum(np.maximum(self.text_len, self.pattern_len), 1)
        self.text_has_space = np.array([" " in w for w in windows], dtype=bool)
        self.has_space = patterns.has_space
        self.repeats_word = np.array([_repeats_word(w) for w in windows], dtype=bool)
        self.pattern_repeats_word = patterns.repeats_word
        self.sharing_a_word = patterns.sharing_a_word
        self.workers = -1 if len(windows) >= PARALLEL_MIN_ROWS else 1

    def cdist(
        self,
        scorer: Callable[..., float],
        rows: npt.NDArray[np.intp] | None = None,
        columns: npt.NDArray[np.intp] | None = None,
        *,
        word_sorted: bool = False,
    ) -> FloatArray:
        """Score the chosen windows against the chosen patterns (all by default) in one call.

        word_sorted: both sides' words sorted (see token_sort).
        """
        windows = self.word_sorted if word_sorted else self.windows
        patterns = self.sorted_patterns if word_sorted else self.patterns
        texts = windows if rows is None else windows[rows]
        choices = patterns if columns is None else patterns[columns]
        result: FloatArray = process.cdist(
            texts.tolist(), choices.tolist(), scorer=scorer, dtype=np.float32, workers=self.workers
        )
        return result


def best_of(
    matrix: FloatArray, column_starts: npt.NDArray[np.intp], row_starts: npt.NDArray[np.intp]
) -> FloatArray:
    """Reduce a windows x patterns matrix to texts x entries by taking maxima of the groups."""
    per_entry = np.maximum.reduceat(matrix, column_starts, axis=1)
    result: FloatArray = np.maximum.reduceat(per_entry, row_starts, axis=0)
    return result


def pair_scores(
    windows: list[str],
    owners: list[int],
    patterns: Patterns,
    entry_starts: npt.NDArray[np.intp],
) -> tuple[FloatArray, FloatArray]:
    """Return each window's score against each pattern, and its whole-text similarity alone.

    owners: where each text's windows start; entry_starts: where each entry's patterns start.
    A pair's score is exact where it can be its text's best for the pattern's entry; elsewhere
    it may be lower (what is kept of a text is only its best per entry: best_of).
    """
    index = Batch(windows, patterns)
    common = index.cdist(LCSseq.similarity)
    # Whole-text similarity: fuzz.ratio (computed from the LCS, which we need anyway) or the
    # same after sorting words, for English word order.
    ratio = 200 * common / np.maximum(index.text_len + index.pattern_len, 1)
    full = np.maximum(ratio, token_sort(index, common))
    # The pattern in order inside the text, with words inserted (see RECALL_EXTRA_COST).
    extra = np.maximum(index.text_len - common, 0)
    recall = RECALL_WEIGHT * 100 * common / (index.pattern_len + RECALL_EXTRA_COST * extra)
    eligible = index.shorter >= PARTIAL_MIN_LEN
    pair = np.maximum(full, np.where(eligible, recall, 0))
    groups = Groups(owners, len(windows), entry_starts, len(patterns.texts))
    pair = np.maximum(pair, contained(index, groups, common, eligible, pair))
    return pair, full


def word_sorted(text: str) -> str:
    """Return a text's words sorted, one space apart: what token_sort_ratio compares."""
    return " ".join(sorted(text.split()))


def token_sort(index: Batch, common: FloatArray) -> FloatArray:
    """Return fuzz.token_sort_ratio of every pair, from the LCS of the word-sorted forms.

    token_sort_ratio is fuzz.ratio of the word-sorted forms, 200 * LCS / (sum of lengths);
    the LCS alone costs a third as much, and where neither side has a space the sorted forms
    are the texts themselves, whose LCS (common) is known.
    """
    if not index.text_has_space.any():  # only the patterns with spaces differ
        columns = np.flatnonzero(index.has_space)
        sorted_common = common.copy()
        sorted_common[:, columns] = index.cdist(LCSseq.similarity, None, columns, word_sorted=True)
    else:
        sorted_common = index.cdist(LCSseq.similarity, word_sorted=True)
    lengths = index.sorted_text_len + index.sorted_pattern_len
    result: FloatArray = 200 * sorted_common / np.maximum(lengths, 1)
    return result


class Groups:
    """Which text each window is of, and which entry each pattern is of."""

    def __init__(
        self, owners: list[int], windows: int, entry_starts: npt.NDArray[np.intp], patterns: int
    ) -> None:
        self.owners = owners
        self.row_starts = np.array(owners, dtype=np.intp)
        self.entry_starts = entry_starts
        self.text_of_row = np.repeat(np.arange(len(owners)), np.diff([*owners, windows]))
        self.entry_of_column = np.repeat(
            np.arange(len(entry_starts)), np.diff([*entry_starts, patterns])
        )

    def entry_best(self, scores: FloatArray) -> FloatArray:
        """Return, for every pair, the best score of its text for its pattern's entry."""
        best = best_of(scores, self.entry_starts, self.row_starts)
        result: FloatArray = best[self.text_of_row][:, self.entry_of_column]
        return result


def contained(
    index: Batch,
    groups: Groups,
    common: FloatArray,
    eligible: npt.NDArray[np.bool_],
    so_far: FloatArray,
) -> FloatArray:
    """Score containment either way round, weighted so that the tightest fit wins.

    Only where it can raise its text's best score for the pattern's entry: elsewhere 0.
    """
    weight = PARTIAL_BASE + PARTIAL_SPAN * index.shorter / index.longer
    contained = np.zeros_like(common)
    # partial_ratio is the dearest scorer, so it runs only where it can matter. It compares
    # the shorter text with pieces of the longer one, so it never exceeds
    # 200 * LCS / (shorter length + LCS): pairs where even that bound would not raise the
    # entry's best score so far, or not up to PARTIAL_FLOOR, are skipped without changing any
    # result. A long text also gets it only on its best few windows (PARTIAL_WINDOWS).
    bound = 200 * common / np.maximum(index.shorter + common, 1) * weight
    promising = np.zeros(len(common), dtype=bool)
    promising[promising_rows(index, common, groups.owners)] = True
    needed = eligible & (bound >= PARTIAL_FLOOR) & promising[:, None]
    needed &= bound > groups.entry_best(so_far)
    _score_needed(index, groups, needed, fuzz.partial_ratio, contained)
    # token_set_ratio is partial_ratio's word-level cousin (all of a text's words among a
    # pattern's); it only means something when both sides have several words. It is at most
    # 100, and where the two share no word (and neither repeats one) it is token_sort_ratio,
    # already in so_far: such pairs, and those that 100 could not lift above the entry's best
    # so far, are skipped without changing any result.
    needed = eligible & index.text_has_space[:, None] & index.has_space[None, :]
    needed &= 100 * weight > groups.entry_best(np.maximum(so_far, contained * weight))
    repeats = index.repeats_word[:, None] | index.pattern_repeats_word[None, :]
    for row in np.flatnonzero((needed & ~repeats).any(axis=1)).tolist():
        needed[row] &= index.sharing_a_word(index.windows[row].split()) | repeats[row]
    _score_needed(index, groups, needed, fuzz.token_set_ratio, contained)
    return np.where(eligible, contained * weight, 0)


def _score_needed(
    index: Batch,
    groups: Groups,
    needed: npt.NDArray[np.bool_],
    scorer: Callable[..., float],
    scores: FloatArray,
) -> None:
    """Raise scores to the scorer's where needed: one cdist call per text of the batch.

    A call scores its windows against every column one of them needs; the pairs scored only
    because a neighbour needed the column are dropped, so a text scores the same alone as in
    any batch (and other texts' columns are never scored for it).
    """
    for start, end in itertools.pairwise([*groups.owners, len(needed)]):
        if end - start == 1:  # a text of one window (most): its row, no block to mask
            columns = np.flatnonzero(needed[start])
            if columns.size:
                scored = index.cdist(scorer, np.array([start]), columns)[0]
                scores[start, columns] = np.maximum(scores[start, columns], scored)
            continue
        rows = start + np.flatnonzero(needed[start:end].any(axis=1))
        columns = np.flatnonzero(needed[rows].any(axis=0))
        if rows.size and columns.size:
            block = np.ix_(rows, columns)
            scored = np.where(needed[block], index.cdist(scorer, rows, columns), 0)
            scores[block] = np.maximum(scores[block], scored)


def promising_rows(index: Batch, common: FloatArray, owners: list[int]) -> npt.NDArray[np.intp]:
    """Pick every window of a short text and the best few windows of a long one."""
    coverage = (common / index.pattern_len).max(axis=1)
    rows: list[npt.NDArray[np.intp]] = []
    for start, end in itertools.pairwise([*owners, len(common)]):
        best = np.argsort(-coverage[start:end], kind="stable")[:PARTIAL_WINDOWS]
        rows.append(best.astype(np.intp) + start)
    return np.concatenate(rows)


def cut_windows(window: int, stride: int, text: str) -> list[str]:
    """Cut a long text into overlapping windows (see MAX_INPUT_CHARS); a short one is one."""
    if len(text) <= window:
        return [text]
    last = len(text) - window
    return [text[s : s + window] for s in [*range(0, last, stride), last]]


def _repeats_word(text: str) -> bool:
    words = text.split()
    return len(set(words)) < len(words)


def _word_columns(texts: Sequence[str]) -> dict[str, npt.NDArray[np.intp]]:
    holding: dict[str, list[int]] = {}
    for column, text in enumerate(texts):
        for word in set(text.split()):
            holding.setdefault(word, []).append(column)
    return {word: np.array(columns, dtype=np.intp) for word, columns in holding.items()}
