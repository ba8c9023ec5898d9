"""Recognise which knowledge entry a user's text is about, and say how sure that is."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

from bot.content.knowledge import LANGS, Device, Knowledge
from bot.matching.normalize import Normalizer, default_normalizer, fold
from bot.matching.prefilter import BigramIndex

# How the three decision numbers were chosen, on the tuning set tests/data/queries.yaml only
# (issue 11: 353 positives of entries in the knowledge base and 109 negatives; the 109 queries
# whose entries are not written yet were left out; `python -m tests.matching.test_matcher`
# prints every score), with Japanese read as words (bot/matching/japanese.py) and device
# mentions taken out. THRESHOLD: the highest score of a negative of MIN_QUERY_LEN or more was
# 73.4 and right answers are dense from 74 up (a dozen between 74 and 75); every threshold
# from 73.5 to 78 kept all negatives out, and 74 is the lowest that leaves some room above the
# negative. MARGIN: of the best entries above THRESHOLD, the wrong ones closest to their
# runner-up were 1.3-2.1 ahead ("学校のネットだとアイクラウドにつながんない" is a work/school
# question that also contains "iCloudにつながらない"), the right ones 3.0 or more apart from
# three near-ties under 1.3, so MARGIN sits between 2.1 and 3.0. Together: 272 of 353
# recognised directly (255 at the former 75 / 5), 3 confidently wrong, no negative taken.
# ALTERNATIVE_FLOOR keeps "did you mean" to entries that share a real part of the text
# (unrelated chatter scores below 60).

# Accept the best entry only from this score (0-100) on.
THRESHOLD = 74.0
# ... and only when it beats the best other entry by this much; otherwise ask.
MARGIN = 2.5
# Offer an entry as "did you mean" only from this score on.
ALTERNATIVE_FLOOR = 60.0
# How many alternatives a result carries at most.
MAX_ALTERNATIVES = 3

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
# A text with no iCloud/Apple context ("プリンターがWi-Fiに接続できません") loses this much on
# every entry, unless it is a near-verbatim pattern (full similarity at least NEAR_EXACT).
NO_CONTEXT_PENALTY = 20.0
NEAR_EXACT = 90.0
# An entry none of whose patterns mention a topic the text names (workplace, new device, mail…,
# see topics: in spellings.yaml) loses this much: a generic pattern that a longer text happens
# to contain ("iCloudにつながらない") must not beat the entry the text is really about.
TOPIC_PENALTY = 10.0

# Only this much of a pasted text is read: nobody's problem statement is longer, and it bounds the
# work. Longer normalised texts are cut into overlapping windows (twice the longest pattern, each
# overlapping the next by the longest pattern) so that any pasted message lies wholly inside one
# window and the cost grows linearly with the text.
MAX_INPUT_CHARS = 10_000
MIN_WINDOW = 64
# partial_ratio runs on this many windows of a long text: those in which some pattern's characters
# occur most completely, in order (LCS / pattern length), which a pasted message always tops.
PARTIAL_WINDOWS = 4
# A text shorter than this (normalised, spaces aside: "iCloud", "sync", "エラー") names a subject
# but not a problem; it gets alternatives, never an entry.
MIN_QUERY_LEN = 8
# cdist starts threads only when a batch has this many rows; for one short query they cost more
# than they save.
PARALLEL_MIN_ROWS = 256
# Above this many entries (a knowledge base some twenty times ours), a text is scored only
# against the PREFILTER_ENTRIES entries whose patterns share the most character pairs with it
# (bot/prefilter.py): scoring every pattern costs about a microsecond per pattern and scorer.
# The chosen entries are scored exactly as without it; the others score 0. Below this size
# nothing changes.
PREFILTER_MIN_ENTRIES = 256
PREFILTER_ENTRIES = 128

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Alternative:
    """Another entry the text may be about, with its score."""

    entry: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The entry a text is about (or None when unsure), its score and the runners-up."""

    query: str
    entry: str | None
    score: float
    alternatives: tuple[Alternative, ...] = ()


class Matcher:
    """An index of every entry's patterns, normalised, for fuzzy matching of user texts."""

    def __init__(self, knowledge: Knowledge, normalizer: Normalizer | None = None) -> None:
        base = normalizer if normalizer is not None else default_normalizer()
        # The words of the English patterns are English, never romaji ("same", "no", "time").
        english = {
            word
            for entry in knowledge.entries.values()
            for text in entry.all_patterns("en")
            for word in fold(text).split()
        }
        self._normalize = base.with_english(english)
        entry_ids: list[str] = []
        groups: list[list[str]] = []
        group_topics: list[frozenset[str]] = []
        for entry in knowledge.entries.values():
            full = dict.fromkeys(
                self._normalize(text) for lang in LANGS for text in entry.all_patterns(lang)
            )
            full.pop("", None)
            # Scored without their device words, as user texts are (see _scores).
            texts = dict.fromkeys(self._normalize.without_devices(t) for t in full)
            texts.pop("", None)
            if texts:
                entry_ids.append(entry.id)
                groups.append(list(texts))
                group_topics.append(frozenset().union(*map(self._normalize.topics, full)))
        if not groups:
            raise ValueError("the knowledge base has no patterns to match against")
        self.entry_ids: tuple[str, ...] = tuple(entry_ids)
        patterns = [p for group in groups for p in group]
        self._patterns = _Patterns(
            texts=np.array(patterns, dtype=object),
            lengths=np.array([len(p) for p in patterns], dtype=np.float32),
            has_space=np.array([" " in p for p in patterns], dtype=bool),
        )
        # Patterns are grouped by entry, so reduceat at these offsets takes each entry's best.
        sizes = [len(group) for group in groups]
        self._entry_starts = np.cumsum([0, *sizes[:-1]], dtype=np.intp)
        self._topic_names = self._normalize.topic_names
        self._entry_topics = self._topic_matrix(group_topics)
        longest = int(self._patterns.lengths.max())
        self._window = max(2 * longest, MIN_WINDOW)
        self._stride = self._window - longest
        self._prefilter = (
            BigramIndex(patterns, self._entry_starts)
            if len(groups) > PREFILTER_MIN_ENTRIES
            else None
        )

    @classmethod
    def build(cls, knowledge: Knowledge) -> Matcher:
        """Build a matcher with the project's spelling table."""
        return cls(knowledge)

    def normalize(self, text: str) -> str:
        """Return the form in which this matcher compares a text."""
        return self._normalize(text[:MAX_INPUT_CHARS])

    def match(self, text: str) -> MatchResult:
        """Return the entry a text is about, or None with alternatives when unsure."""
        return self.match_many([text])[0]

    def match_many(self, texts: Sequence[str]) -> list[MatchResult]:
        """Match many texts at once: one cdist call per scorer for the whole batch."""
        if not texts:
            return []
        normalized = [self.normalize(t) for t in texts]
        scoring = [self._normalize.without_devices(n) for n in normalized]
        scores = self._scores(normalized, scoring)
        return [
            self._decide(text, len(norm.replace(" ", "")), row)
            for text, norm, row in zip(texts, scoring, scores, strict=True)
        ]

    def scores(self, texts: Sequence[str]) -> FloatArray:
        """Return each text's score for every entry (rows: texts, columns: entry_ids)."""
        normalized = [self.normalize(t) for t in texts]
        return self._scores(normalized, [self._normalize.without_devices(n) for n in normalized])

    def _scores(self, normalized: list[str], scoring: list[str]) -> FloatArray:
        """Score texts: topics and context from the normalised form, similarity from scoring.

        The scoring form lacks the device mentions ("on my ipad", "macbookで"): the device is
        read separately (detect_device) and must not pull a text towards, or away from, the
        patterns that happen to name one.
        """
        if self._prefilter is None:
            return self._scores_against(
                normalized, scoring, self._patterns, self._entry_starts, None
            )
        # Each text against its own few entries, so that it scores the same in any batch.
        scores = np.zeros((len(normalized), len(self.entry_ids)), dtype=np.float32)
        ends = np.append(self._entry_starts[1:], len(self._patterns.lengths))
        for row, (text, scored) in enumerate(zip(normalized, scoring, strict=True)):
            entries = self._prefilter.best_groups(self._windows(scored), PREFILTER_ENTRIES)
            sizes = ends[entries] - self._entry_starts[entries]
            starts = np.cumsum([0, *sizes[:-1]], dtype=np.intp)
            # The chosen entries' pattern columns, in order: each run shifted to its entry.
            shift = np.repeat(self._entry_starts[entries] - starts, sizes)
            columns = np.arange(sizes.sum()) + shift
            scores[row, entries] = self._scores_against(
                [text], [scored], self._patterns.subset(columns), starts, entries
            )[0]
        return scores

    def _scores_against(
        self,
        normalized: list[str],
        scoring: list[str],
        patterns: _Patterns,
        entry_starts: npt.NDArray[np.intp],
        entries: npt.NDArray[np.intp] | None,
    ) -> FloatArray:
        """Score texts against patterns grouped by entry_starts (entries: which, None: all)."""
        windows: list[str] = []
        owners: list[int] = []
        for text in scoring:
            owners.append(len(windows))
            windows.extend(self._windows(text))
        index = _Batch(windows, patterns)

        common = index.cdist(LCSseq.similarity)
        # Whole-text similarity: fuzz.ratio (computed from the LCS, which we need anyway) or the
        # same after sorting words, for English word order.
        ratio = 200 * common / np.maximum(index.text_len + index.pattern_len, 1)
        full = np.maximum(ratio, index.cdist(fuzz.token_sort_ratio))
        # The pattern in order inside the text, with words inserted (see RECALL_EXTRA_COST).
        extra = np.maximum(index.text_len - common, 0)
        recall = RECALL_WEIGHT * 100 * common / (index.pattern_len + RECALL_EXTRA_COST * extra)
        eligible = index.shorter >= PARTIAL_MIN_LEN
        pair = np.maximum(full, np.where(eligible, recall, 0))
        contained = self._contained(index, owners, common, eligible, pair)
        pair = np.maximum(pair, contained)

        row_starts = np.array(owners, dtype=np.intp)
        per_text = _best_of(pair, entry_starts, row_starts)
        near_exact = _best_of(full, entry_starts, row_starts) >= NEAR_EXACT
        context = np.array([self._normalize.has_context(t) for t in normalized], dtype=bool)
        per_text = np.where(context[:, None] | near_exact, per_text, per_text - NO_CONTEXT_PENALTY)

        text_topics = self._topic_matrix([self._normalize.topics(t) for t in normalized])
        # Per text and entry: how many of the text's topics the entry's patterns never mention.
        entry_topics = self._entry_topics if entries is None else self._entry_topics[entries]
        lacking = text_topics.astype(np.int32) @ (~entry_topics).T.astype(np.int32)
        per_text = np.where(lacking > 0, per_text - TOPIC_PENALTY, per_text)
        return np.clip(per_text, 0, 100).astype(np.float32)

    def _contained(
        self,
        index: _Batch,
        owners: list[int],
        common: FloatArray,
        eligible: npt.NDArray[np.bool_],
        so_far: FloatArray,
    ) -> FloatArray:
        """Score containment either way round, weighted so that the tightest fit wins."""
        weight = PARTIAL_BASE + PARTIAL_SPAN * index.shorter / index.longer
        contained = np.zeros_like(common)
        # partial_ratio is the dearest scorer, so it runs only where it can matter. It compares
        # the shorter text with pieces of the longer one, so it never exceeds
        # 200 * LCS / (shorter length + LCS): pairs where even that bound would not raise the
        # score, or not up to ALTERNATIVE_FLOOR, are skipped without changing any result. A long
        # text also gets it only on its best few windows (PARTIAL_WINDOWS).
        bound = 200 * common / np.maximum(index.shorter + common, 1) * weight
        promising = np.zeros(len(common), dtype=bool)
        promising[self._promising_rows(index, common, owners)] = True
        needed = eligible & (bound > so_far) & (bound >= ALTERNATIVE_FLOOR) & promising[:, None]
        rows = np.flatnonzero(needed.any(axis=1))
        columns = np.flatnonzero(needed[rows].any(axis=0))
        if rows.size and columns.size:
            # Pairs scored only because a batch neighbour needed the column are dropped, so a
            # text scores the same alone as in any batch.
            block = np.ix_(rows, columns)
            scored = index.cdist(fuzz.partial_ratio, rows, columns)
            contained[block] = np.where(needed[block], scored, 0)
        # token_set_ratio is partial_ratio's word-level cousin (all of a text's words among a
        # pattern's); it only means something when both sides have several words.
        rows = np.flatnonzero(eligible.any(axis=1) & index.text_has_space)
        columns = np.flatnonzero(index.has_space)
        if rows.size and columns.size:
            words = index.cdist(fuzz.token_set_ratio, rows, columns)
            block = np.ix_(rows, columns)
            contained[block] = np.maximum(contained[block], words)
        return np.where(eligible, contained * weight, 0)

    def _promising_rows(
        self, index: _Batch, common: FloatArray, owners: list[int]
    ) -> npt.NDArray[np.intp]:
        """Pick every window of a short text and the best few windows of a long one."""
        coverage = (common / index.pattern_len).max(axis=1)
        rows: list[npt.NDArray[np.intp]] = []
        for start, end in itertools.pairwise([*owners, len(common)]):
            best = np.argsort(-coverage[start:end], kind="stable")[:PARTIAL_WINDOWS]
            rows.append(best.astype(np.intp) + start)
        return np.concatenate(rows)

    def _topic_matrix(self, found: Sequence[frozenset[str]]) -> npt.NDArray[np.bool_]:
        rows = [[name in topics for name in self._topic_names] for topics in found]
        return np.array(rows, dtype=bool).reshape(len(found), len(self._topic_names))

    def _windows(self, text: str) -> list[str]:
        if len(text) <= self._window:
            return [text]
        last = len(text) - self._window
        return [text[s : s + self._window] for s in [*range(0, last, self._stride), last]]

    def _decide(self, text: str, length: int, row: FloatArray) -> MatchResult:
        order = np.argsort(-row, kind="stable")
        best = float(row[order[0]])
        runner_up = float(row[order[1]]) if len(order) > 1 else 0.0
        sure = length >= MIN_QUERY_LEN and best >= THRESHOLD and best - runner_up >= MARGIN
        entry = self.entry_ids[order[0]] if sure else None
        # order is best first: stop at the floor or once there are enough, not at the last entry.
        above_floor = itertools.takewhile(lambda i: row[i] >= ALTERNATIVE_FLOOR, order)
        alternatives = tuple(
            itertools.islice(
                (
                    Alternative(self.entry_ids[i], round(float(row[i]), 1))
                    for i in above_floor
                    if self.entry_ids[i] != entry
                ),
                MAX_ALTERNATIVES,
            )
        )
        return MatchResult(text, entry, round(best, 1), alternatives)


@dataclass(frozen=True, slots=True)
class _Patterns:
    """Every entry's normalised patterns, grouped by entry, with what the scoring needs of them."""

    texts: npt.NDArray[np.object_]
    lengths: FloatArray
    has_space: npt.NDArray[np.bool_]

    def subset(self, columns: npt.NDArray[np.intp]) -> _Patterns:
        """Return these patterns only (still grouped by entry when columns are sorted)."""
        return _Patterns(self.texts[columns], self.lengths[columns], self.has_space[columns])


class _Batch:
    """The windows of a batch against the patterns, and the cdist calls between them."""

    def __init__(self, windows: list[str], patterns: _Patterns) -> None:
        self.windows = np.array(windows, dtype=object)
        self.patterns = patterns.texts
        self.text_len = np.array([len(w) for w in windows], dtype=np.float32)[:, None]
        self.pattern_len = patterns.lengths[None, :]
        self.shorter = np.minimum(self.text_len, self.pattern_len)
        self.longer = np.maximum(np.maximum(self.text_len, self.pattern_len), 1)
        self.text_has_space = np.array([" " in w for w in windows], dtype=bool)
        self.has_space = patterns.has_space
        self.workers = -1 if len(windows) >= PARALLEL_MIN_ROWS else 1

    def cdist(
        self,
        scorer: Callable[..., float],
        rows: npt.NDArray[np.intp] | None = None,
        columns: npt.NDArray[np.intp] | None = None,
    ) -> FloatArray:
        """Score the chosen windows against the chosen patterns (all by default) in one call."""
        texts = self.windows if rows is None else self.windows[rows]
        choices = self.patterns if columns is None else self.patterns[columns]
        result: FloatArray = process.cdist(
            texts.tolist(), choices.tolist(), scorer=scorer, dtype=np.float32, workers=self.workers
        )
        return result


def _best_of(
    matrix: FloatArray, column_starts: npt.NDArray[np.intp], row_starts: npt.NDArray[np.intp]
) -> FloatArray:
    """Reduce a windows x patterns matrix to texts x entries by taking maxima of the groups."""
    per_entry = np.maximum.reduceat(matrix, column_starts, axis=1)
    result: FloatArray = np.maximum.reduceat(per_entry, row_starts, axis=0)
    return result


def detect_device(text: str) -> Device | None:
    """Return the one device a text names (iPhone, Mac, Windows), or None."""
    return default_normalizer().detect_device(text)
