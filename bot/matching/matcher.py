"""Recognise which knowledge entry a user's text is about, and say how sure that is."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.content.knowledge import Entry, Knowledge, Topic
from bot.content.languages import LANGUAGES
from bot.content.text import fold
from bot.matching.ahead import ScoredAhead
from bot.matching.decision import MAX_ALTERNATIVES as MAX_ALTERNATIVES
from bot.matching.decision import MIN_QUERY_LEN as MIN_QUERY_LEN
from bot.matching.decision import (
    MIN_SPECIFIC_LEN,
    Calibration,
    MatchResult,
    decide,
    needed_length,
)
from bot.matching.decision import MIN_TOPIC_LEN as MIN_TOPIC_LEN
from bot.matching.decision import Alternative as Alternative
from bot.matching.lexical import Patterns, best_of, cut_windows, pair_scores
from bot.matching.normalize import Normalizer, default_normalizer
from bot.matching.prefilter import BigramIndex
from bot.matching.semantic import (
    MAX_ENCODED_CHARS,
    Encoder,
    SemanticIndex,
    default_encoder,
    shipped_vectors,
    unrelated_examples,
)


class Scorer(StrEnum):
    """How a text is compared with the patterns: spelling, meaning, or both (the bot's)."""

    LEXICAL = "lexical"
    SEMANTIC = "semantic"
    BLEND = "blend"


# Chosen on the tuning split only (tests/data/queries.yaml) by `python -m
# benchmarks.calibrate_match`: the most positives recognised directly, less three times the
# confidently wrong ones, with every negative rejected (more than the goal of 97%: 108 tuning
# negatives make an optimistic estimate); then the floor that puts the right entry among the
# choices most often while offering choices to at most 35% of the negatives (the middle one of
# the floors that do). The held-out split (queries_holdout.yaml) only measures the result
# (benchmarks/bench_match.py).
# BLEND_LEXICAL, SEMANTIC_ZERO, SEMANTIC_NO_CONTEXT_PENALTY, UNRELATED_PENALTY and
# LEXICAL_ALONE_OFFSET were chosen the same way, by a grid over the tuning split;
# FOREIGN_PENALTY and UNRELATED_BLEND_PENALTY by the 5-fold cross-validation of
# `python -m benchmarks.crossval_match` (tuning split only), which also estimates what the rule
# achieves on texts it was not chosen on.
# The blend's far tier (42, 10: taken from 42 when 10 ahead of every other entry) was chosen on
# three blind-written dev sets, each scored with the others' examples only: recognised +1.1,
# +0.4 and +0.8 points, no more wrong and no negative taken there or in the tuning split; among
# (34-44) x (6-20) the lowest threshold that took no negative, its margin in the middle; the
# main tier was then re-chosen on the tuning split with it (46 -> 49: ties take the higher).
CALIBRATIONS: dict[Scorer, Calibration] = {
    Scorer.LEXICAL: Calibration(threshold=71.0, margin=7.0, floor=42.5),
    Scorer.SEMANTIC: Calibration(threshold=44.5, margin=6.0, floor=22.5),
    Scorer.BLEND: Calibration(
        threshold=49.0, margin=2.0, floor=27.5, far_threshold=42.0, far_margin=10.0
    ),
}
# The blend: BLEND_LEXICAL x the lexical score + (1 - BLEND_LEXICAL) x the semantic score, both
# 0-100. The semantic score is the cosine rescaled so that SEMANTIC_ZERO (what unrelated
# sentences reach) is 0 and 1 is 100, minus SEMANTIC_NO_CONTEXT_PENALTY for a text with no
# iCloud/Apple context: the encoder finds "OneDriveが同期されない" as close to "写真が同期
# されない" as any positive is, and only the missing context tells them apart.
BLEND_LEXICAL = 0.4
LEXICAL_ALONE_OFFSET = 18.0
# A text the lexical scorer finds near-verbatim for one entry (a pasted error message: at least
# VERBATIM, and VERBATIM_GAP ahead of any other entry) is decided on spelling alone: the
# encoder's few milliseconds of CPU would not change the answer, and pastes are most messages.
VERBATIM = 97.0
VERBATIM_GAP = 15.0
SEMANTIC_ZERO = 0.3
SEMANTIC_NO_CONTEXT_PENALTY = 30.0
# The semantic score of a text closer to an example of bot/matching/unrelated.yaml ("my iPhone
# gets hot", "Gmail not receiving mail") than to any pattern loses this much.
UNRELATED_PENALTY = 20.0
# … and the blend as much again, after the lexical floor: the spelling of "how much does a new
# iPhone cost" is close to "how much does iCloud+ cost", its meaning to an unrelated example.
UNRELATED_BLEND_PENALTY = 10.0
# The lowest "did you mean" floor of any scorer (a result's alternatives all score this much).
ALTERNATIVE_FLOOR = min(c.floor for c in CALIBRATIONS.values())
# A text with no iCloud/Apple context ("プリンターがWi-Fiに接続できません") loses this much on
# every entry, unless it is a near-verbatim pattern (full similarity at least NEAR_EXACT).
NO_CONTEXT_PENALTY = 20.0
NEAR_EXACT = 90.0
# A text naming another service or device and not iCloud or Apple ("Googleドライブの写真が
# 同期されない") loses this much more, lexical and semantic alike: its other words are ours.
FOREIGN_PENALTY = 15.0
# An entry none of whose patterns mention a topic the text names (workplace, new device, mail…,
# see topics: in spellings.yaml) loses this much: a generic pattern that a longer text happens
# to contain ("iCloudにつながらない") must not beat the entry the text is really about. So does
# an entry whose `requires_topic` the text does not name: "on Wi-Fi it fails, on 5G it works"
# is not about a work or school network, however close its words.
# (20, not 10: chosen on the tuning split and two fresh dev splits written without seeing the
# patterns; a third, unseen, confirmed it: recognised +0.7, wrong -0.4 points.)
TOPIC_PENALTY = 20.0
# … and the semantic part of the blend this much: 「要するにどうすればいいの」 reads close to the
# troubleshooting order, but names the summary (chosen on the tuning split and three blind sets:
# 0, 5, 10, 20 tried; 10 took the most and claimed the fewest wrongly).
SEMANTIC_TOPIC_PENALTY = 10.0

# Only this much of a pasted text is read: nobody's problem statement is longer, and it bounds the
# work. Longer normalised texts are cut into overlapping windows (twice the longest pattern, each
# overlapping the next by the longest pattern) so that any pasted message lies wholly inside one
# window and the cost grows linearly with the text.
MAX_INPUT_CHARS = 10_000
MIN_WINDOW = 64
# Above this many entries (a knowledge base some twenty times ours), a text is scored only
# against the entries whose patterns share the most character pairs with it (bot/prefilter.py):
# scoring every pattern costs about a microsecond per pattern and scorer. As many entries are
# chosen as hold PREFILTER_PATTERNS patterns on average (the cost is per pattern), at least
# PREFILTER_ENTRIES. The chosen entries are scored exactly as without it; the others score 0.
# Below this size nothing changes.
PREFILTER_MIN_ENTRIES = 256
PREFILTER_PATTERNS = 2_500
PREFILTER_ENTRIES = 48

FloatArray = npt.NDArray[np.float32]


class Matcher:
    """An index of every entry's patterns, normalised, for fuzzy matching of user texts."""

    def __init__(
        self,
        knowledge: Knowledge,
        normalizer: Normalizer | None = None,
        *,
        scorer: Scorer = Scorer.BLEND,
        encoder: Encoder | None = None,
    ) -> None:
        base = normalizer if normalizer is not None else default_normalizer()
        # The words of the English patterns are English, never romaji ("same", "no", "time").
        items: list[Entry | Topic] = [*knowledge.entries.values(), *knowledge.topics.values()]
        english = {word for i in items for t in i.all_patterns("en") for word in fold(t).split()}
        self._normalize = base.with_english(english)
        self.scorer = scorer
        self.calibration = CALIBRATIONS[scorer]
        entry_ids: list[str] = []
        groups: list[list[str]] = []
        raw_groups: list[list[str]] = []
        group_topics: list[frozenset[str]] = []
        for item_id, raw in matchable(knowledge):
            full = dict.fromkeys(self._normalize(text) for text in raw)
            full.pop("", None)
            # Scored without their device words, as user texts are (see _scores).
            texts = dict.fromkeys(self._normalize.without_devices(t) for t in full)
            texts.pop("", None)
            if texts:
                entry_ids.append(item_id)
                groups.append(list(texts))
                raw_groups.append(list(dict.fromkeys(raw)))
                group_topics.append(frozenset().union(*map(self._normalize.topics, full)))
        if not groups:
            raise ValueError("the knowledge base has no patterns to match against")
        self.entry_ids: tuple[str, ...] = tuple(entry_ids)
        self._written = frozenset(p for group in raw_groups for p in map(self._normalize, group))
        self._topic_ids = frozenset(entry_ids) - set(knowledge.entries)
        patterns = [p for group in groups for p in group]
        self._patterns = Patterns.of(patterns)
        # Patterns are grouped by entry, so reduceat at these offsets takes each entry's best.
        sizes = [len(group) for group in groups]
        self._entry_starts = np.cumsum([0, *sizes[:-1]], dtype=np.intp)
        self._topic_names = self._normalize.topic_names
        self._entry_topics = self._topic_matrix(group_topics)
        self._required = self._topic_matrix(
            [_required_topics(knowledge, item_id, self._topic_names) for item_id in entry_ids]
        )
        longest = int(self._patterns.lengths.max())
        self._window = max(2 * longest, MIN_WINDOW)
        self._stride = self._window - longest
        self._prefilter = (
            BigramIndex(patterns, self._entry_starts)
            if len(groups) > PREFILTER_MIN_ENTRIES
            else None
        )
        self._ahead = ScoredAhead()
        self._prefilter_limit = max(
            PREFILTER_ENTRIES, PREFILTER_PATTERNS * len(groups) // len(patterns)
        )
        # The encoder reads the patterns as written (it knows case, kana and kanji itself).
        self._semantic: SemanticIndex | None = None
        if scorer is not Scorer.LEXICAL:
            raw_sizes = [len(group) for group in raw_groups]
            self._semantic = SemanticIndex(
                encoder if encoder is not None else default_encoder(),
                [t for group in raw_groups for t in group],
                np.cumsum([0, *raw_sizes[:-1]], dtype=np.intp),
                shipped_vectors(),
                unrelated_examples(),
                examples=[
                    (group, text)
                    for group, item_id in enumerate(entry_ids)
                    for text in knowledge.examples.get(item_id, ())
                ],
            )

    def normalize(self, text: str) -> str:
        """Return the form in which this matcher compares a text."""
        return self._normalize(text[:MAX_INPUT_CHARS])

    def query_length(self, text: str) -> int:
        """Return the length that MIN_QUERY_LEN asks of a text (see _query_length)."""
        return self._length(self.normalize(text))

    def embed(self, texts: Sequence[str]) -> FloatArray | None:
        """Return the texts' sentence vectors (None without an encoder), kept for their match."""
        if self._semantic is None:
            return None
        return self._semantic.embed([_for_encoder(self._normalize, t) for t in texts])

    def prepare(self, texts: Sequence[str]) -> None:
        """Score ahead, off the loop, texts about to be matched: `match` finds their scores.

        All of matching but the decision. The texts of several turns may come at once (see
        ahead.py): they are scored on spelling together (the full matrices in one call per
        scorer, the scorers that run only where needed in one call per text, so that each
        text scores as alone), then those that need meaning (not near-verbatim pastes) go to
        the encoder in one call, a fraction of the cost per text of one call each.
        """
        if not texts:
            return
        normalized = [self.normalize(t) for t in texts]
        scores = self._combined(texts, normalized, None)
        self._ahead.keep(texts, scores, [self._length(n) for n in normalized])

    def scored_ahead(self, text: str) -> bool:
        """Return True if `prepare` scored this text lately (match will find its scores)."""
        return text in self._ahead

    def needs_meaning(self, texts: Sequence[str]) -> list[bool]:
        """Tell for each text whether its match needs the encoder (it is not near-verbatim)."""
        normalized = [self.normalize(t) for t in texts]
        scoring = [self._normalize.without_devices(n) for n in normalized]
        lacking = self._lacking(normalized)
        return [bool(m) for m in ~_verbatim(self._scores(normalized, scoring, lacking))]

    def match(self, text: str, embedding: FloatArray | None = None) -> MatchResult:
        """Return the entry a text is about, or None with alternatives when unsure."""
        embeddings = None if embedding is None else embedding.reshape(1, -1)
        return self.match_many([text], embeddings)[0]

    def match_many(
        self, texts: Sequence[str], embeddings: FloatArray | None = None
    ) -> list[MatchResult]:
        """Match many texts at once: one cdist call per scorer and one encoder call."""
        if not texts:
            return []
        found = self._ahead.find(texts) if embeddings is None else None
        if found is None:
            normalized = [self.normalize(t) for t in texts]
            scores = self._combined(texts, normalized, embeddings)
            found = scores, [self._length(n) for n in normalized]
        scores, lengths = found
        rule, ids, topics = self.calibration, self.entry_ids, self._topic_ids
        return [
            decide(rule, ids, topics, text, length, row)
            for text, length, row in zip(texts, lengths, scores, strict=True)
        ]

    def needed_lengths(self) -> npt.NDArray[np.int_]:
        """Return per entry_ids the length a text needs to be taken for it (see decide)."""
        return np.array([needed_length(i in self._topic_ids) for i in self.entry_ids])

    def _length(self, normalized: str) -> int:
        """Return the length MIN_QUERY_LEN asks of a normalised text (see _query_length).

        A text that is one of the patterns as written ("予防策", a topic's title "まとめ") says
        exactly what it asks for, however short: it counts as long enough. A short one that
        names no topic ("エラーが出ます") counts as too short even for a topic (MIN_TOPIC_LEN).
        """
        length = _query_length(self._normalize, normalized)
        if normalized in self._written:
            return max(length, MIN_QUERY_LEN)
        if length < MIN_QUERY_LEN and not self._normalize.topics(normalized):
            return min(length, MIN_TOPIC_LEN - 1)
        return length

    def scores(self, texts: Sequence[str], embeddings: FloatArray | None = None) -> FloatArray:
        """Return each text's score for every entry (rows: texts, columns: entry_ids)."""
        return self._combined(texts, [self.normalize(t) for t in texts], embeddings)

    def _combined(
        self, texts: Sequence[str], normalized: list[str], embeddings: FloatArray | None
    ) -> FloatArray:
        """Score with this matcher's scorer: lexical, semantic, or the blend of both."""
        if self.scorer is Scorer.SEMANTIC:
            semantic: FloatArray = self._blend(texts, normalized, embeddings, None)
            return semantic
        scoring = [self._normalize.without_devices(n) for n in normalized]
        # Which entries never mention a topic each text names: one reading per text, for the
        # lexical and the semantic penalty alike.
        lacking = self._lacking(normalized)
        lexical = self._scores(normalized, scoring, lacking)
        if self._semantic is None:
            return lexical
        # A near-verbatim text is decided on spelling; the others are blended with meaning.
        rest = [int(i) for i in np.flatnonzero(~_verbatim(lexical))]
        scores = lexical.copy()
        if rest:
            scores[rest] = self._blend(
                [texts[i] for i in rest],
                [normalized[i] for i in rest],
                None if embeddings is None else embeddings[rest],
                (lexical[rest], lacking[rest]),
            )
        return scores

    def _blend(
        self,
        texts: Sequence[str],
        normalized: list[str],
        vecs: FloatArray | None,
        spelling: tuple[FloatArray, npt.NDArray[np.bool_]] | None,
    ) -> Any:
        """Score with meaning: the semantic scorer (spelling None), or its blend with the
        lexical scores (given with the entries lacking a topic each text names: _lacking)."""
        assert self._semantic is not None
        encoded = [_for_encoder(self._normalize, t) for t in texts]
        vectors = self._semantic.vectors(encoded) if vecs is None else vecs
        cosines = self._semantic.similarity(vectors)
        semantic = 100 * (cosines - SEMANTIC_ZERO) / (1 - SEMANTIC_ZERO)
        semantic = (
            semantic
            - _context_penalty(
                _context_flags(self._normalize, normalized), SEMANTIC_NO_CONTEXT_PENALTY
            )[:, None]
        )
        # Closer to an example of what the bot is not for than to any pattern.
        elsewhere = self._semantic.unrelated(vectors) > cosines.max(axis=1, initial=-1.0)
        semantic = np.where(elsewhere[:, None], semantic - UNRELATED_PENALTY, semantic)
        # Nothing left after normalising (emoji, punctuation): nothing to mean either.
        semantic[np.array([not t for t in normalized], dtype=bool)] = 0
        if spelling is not None:
            lexical, lacking = spelling
            semantic = np.where(lacking, semantic - SEMANTIC_TOPIC_PENALTY, semantic)
            blend = BLEND_LEXICAL * lexical + (1 - BLEND_LEXICAL) * semantic
            # What the lexical scorer alone is sure of stays sure (a message pasted inside a long
            # text, a hiragana-only error that the encoder reads poorly): its score, moved down
            # by LEXICAL_ALONE_OFFSET, is a floor of the blend.
            semantic = np.maximum(blend, lexical - LEXICAL_ALONE_OFFSET)
            semantic = np.where(elsewhere[:, None], semantic - UNRELATED_BLEND_PENALTY, semantic)
        result: FloatArray = np.clip(semantic, 0, 100).astype(np.float32)
        return result

    def _scores(
        self, normalized: list[str], scoring: list[str], lacking: npt.NDArray[np.bool_]
    ) -> FloatArray:
        """Score texts: topics and context from the normalised form, similarity from scoring.

        The scoring form lacks the device mentions ("on my ipad", "macbookで"): the device is
        read separately (detect_device) and must not pull a text towards, or away from, the
        patterns that happen to name one.
        """
        if self._prefilter is None:
            return self._scores_against(
                normalized, scoring, self._patterns, self._entry_starts, lacking
            )
        # Each text against its own few entries, so that it scores the same in any batch.
        scores = np.zeros((len(normalized), len(self.entry_ids)), dtype=np.float32)
        ends = np.append(self._entry_starts[1:], len(self._patterns.lengths))
        for row, (text, scored) in enumerate(zip(normalized, scoring, strict=True)):
            entries = self._prefilter.best_groups(
                cut_windows(self._window, self._stride, scored), self._prefilter_limit
            )
            sizes = ends[entries] - self._entry_starts[entries]
            starts = np.cumsum([0, *sizes[:-1]], dtype=np.intp)
            # The chosen entries' pattern columns, in order: each run shifted to its entry.
            shift = np.repeat(self._entry_starts[entries] - starts, sizes)
            columns = np.arange(sizes.sum()) + shift
            scores[row, entries] = self._scores_against(
                [text],
                [scored],
                self._patterns.subset(columns),
                starts,
                lacking[row : row + 1, entries],
            )[0]
        return scores

    def _scores_against(
        self,
        normalized: list[str],
        scoring: list[str],
        patterns: Patterns,
        entry_starts: npt.NDArray[np.intp],
        lacking: npt.NDArray[np.bool_],
    ) -> FloatArray:
        """Score texts against patterns grouped by entry_starts (lacking: per text and one of
        these groups' entries, whether it never mentions a topic the text names)."""
        windows: list[str] = []
        owners: list[int] = []
        for text in scoring:
            owners.append(len(windows))
            windows.extend(cut_windows(self._window, self._stride, text))
        pair, full = pair_scores(windows, owners, patterns, entry_starts)
        row_starts = np.array(owners, dtype=np.intp)
        per_text = best_of(pair, entry_starts, row_starts)
        near_exact = best_of(full, entry_starts, row_starts) >= NEAR_EXACT
        context = _context_flags(self._normalize, normalized)
        penalty = _context_penalty(context, NO_CONTEXT_PENALTY)
        # A near-verbatim pattern needs no context (a pasted error), unless another service is
        # named: "Xにログインできない" is X's sign-in however verbatim the rest.
        spared = near_exact & ~context[1][:, None]
        per_text = np.where(spared, per_text, per_text - penalty[:, None])

        per_text = np.where(lacking, per_text - TOPIC_PENALTY, per_text)
        return np.clip(per_text, 0, 100).astype(np.float32)

    def _lacking(self, normalized: list[str]) -> npt.NDArray[np.bool_]:
        """Per text and entry: does the text name a topic that the entry's patterns never
        mention, or not name the topic the entry requires (`requires_topic`)?"""
        text_topics = self._topic_matrix([self._normalize.topics(t) for t in normalized])
        lacking = text_topics.astype(np.int32) @ (~self._entry_topics).T.astype(np.int32)
        unnamed = (~text_topics).astype(np.int32) @ self._required.T.astype(np.int32)
        return np.asarray((lacking > 0) | (unnamed > 0))

    def _topic_matrix(self, found: Sequence[frozenset[str]]) -> npt.NDArray[np.bool_]:
        rows = [[name in topics for name in self._topic_names] for topics in found]
        return np.array(rows, dtype=bool).reshape(len(found), len(self._topic_names))


def settle(normalizer: Normalizer) -> None:
    """Let go of what building the indexes read and serving does not need again.

    Called once the matcher and the typed-reply classifier are built (start-up, reload): the
    shipped vectors (a copy of those the indexes keep, ~6 MB) are dropped, and the Japanese
    dictionary's pages that reading every pattern and example touched are given back to the
    page cache; users' texts map back those they need (bench_footprint).
    """
    shipped_vectors.cache_clear()
    normalizer.release_dictionary()


def matchable(knowledge: Knowledge) -> list[tuple[str, tuple[str, ...]]]:
    """Return every entry and every asked-about topic with its texts, entries first."""
    items: list[Entry | Topic] = [*knowledge.entries.values(), *knowledge.topics.values()]
    found = [
        (i.id, tuple(t for lang in LANGUAGES.codes for t in i.all_patterns(lang))) for i in items
    ]
    return [(item_id, texts) for item_id, texts in found if texts]


def _required_topics(knowledge: Knowledge, item_id: str, names: Sequence[str]) -> frozenset[str]:
    """Return the topic an entry requires (none for a topic of info.yaml); raise ValueError if
    the spellings do not define it."""
    entry = knowledge.entries.get(item_id)
    if entry is None or entry.requires_topic is None:
        return frozenset()
    if entry.requires_topic not in names:
        raise ValueError(f"entry {item_id!r} requires topic {entry.requires_topic!r}, not defined")
    return frozenset({entry.requires_topic})


def _verbatim(lexical: FloatArray) -> npt.NDArray[np.bool_]:
    """Tell which rows of lexical scores name one entry near-verbatim (see VERBATIM)."""
    if lexical.shape[1] < 2:
        return np.asarray(lexical.max(axis=1, initial=0.0) >= VERBATIM)
    top2 = -np.partition(-lexical, 1, axis=1)[:, :2]
    return np.asarray((top2[:, 0] >= VERBATIM) & (top2[:, 0] - top2[:, 1] >= VERBATIM_GAP))


def _for_encoder(normalizer: Normalizer, text: str) -> str:
    """Return the text as the encoder should read it: as written, less any device mention.

    "Cannot connect to iCloud on my iPad" must not lean towards the patterns that name a
    new iPad; the device is read separately (detect_device). The mention is found as the
    lexical scorer finds it, in lower case.
    """
    lowered = " ".join(unicodedata.normalize("NFKC", text[: 2 * MAX_ENCODED_CHARS]).split())
    lowered = lowered.lower()
    stripped = normalizer.without_devices(lowered)
    return stripped if stripped and stripped != lowered else text


def _context_flags(
    normalizer: Normalizer, normalized: list[str]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per text: does it lack iCloud context, and (among those) does it name another service?"""
    lacking = [not normalizer.has_context(t) for t in normalized]
    pairs = zip(normalized, lacking, strict=True)
    foreign = [lack and normalizer.is_foreign(t) for t, lack in pairs]
    return np.array(lacking, dtype=bool), np.array(foreign, dtype=bool)


def _context_penalty(
    flags: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]], penalty: float
) -> FloatArray:
    """Return what each text loses for lacking iCloud context (more when it names another)."""
    lacking, foreign = flags
    lost: FloatArray = (lacking * penalty + foreign * FOREIGN_PENALTY).astype(np.float32)
    return lost


def _query_length(normalizer: Normalizer, normalized: str) -> int:
    """Return a text's length, spaces and devices aside; 0 for a vague one (MIN_SPECIFIC_LEN)."""
    if normalizer.specific_length(normalized) < MIN_SPECIFIC_LEN:
        return 0
    return len(normalizer.without_devices(normalized).replace(" ", ""))
