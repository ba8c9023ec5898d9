"""Load and validate the knowledge base (knowledge/*.yaml) into frozen dataclasses.

The format is described in knowledge/SCHEMA.md. Every problem found is reported with its
file and line; nothing half-valid is ever returned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.content.examples import FILE as EXAMPLES
from bot.content.examples import read_examples
from bot.content.languages import LANGUAGES, Languages
from bot.content.reader import List, Map, Problems, Reader, line_of

# The codes of the languages table, in its order (for code written before the table).

SOURCES: tuple[str, ...] = ("article", "general")
"""Where a section's steps come from: the source article, or general knowledge beyond it."""


class Device(StrEnum):
    """The devices a fix can have steps for (iphone covers iPhone and iPad)."""

    IPHONE = "iphone"
    MAC = "mac"
    WINDOWS = "windows"


class EntryKind(StrEnum):
    """What an entry is: an on-screen error, a symptom people describe, or a FAQ."""

    ERROR = "error"
    SYMPTOM = "symptom"
    FAQ = "faq"


class Localized(Mapping[str, str]):
    """A text in every language of the table: language code → text.

    `Localized(ja="…", en="…")` or `Localized({"ja": "…", "en": "…"})`. The loader only builds
    one with every language, so a lookup never falls back to another language.
    """

    __slots__ = ("_texts",)
    _texts: dict[str, str]

    def __init__(self, texts: Mapping[str, str] | None = None, /, **by_code: str) -> None:
        object.__setattr__(self, "_texts", {**(texts or {}), **by_code})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __getitem__(self, lang: str) -> str:
        return self._texts[lang]

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __hash__(self) -> int:
        return hash(frozenset(self._texts.items()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._texts!r})"

    def __reduce__(self) -> tuple[type[Localized], tuple[dict[str, str]]]:
        return (type(self), (self._texts,))


class LocalizedList(Mapping[str, tuple[str, ...]]):
    """A list of texts per language (the lists may differ in length); empty: none at all.

    An empty one (an optional list left out) has no items in any language.
    """

    __slots__ = ("_lists",)
    _lists: dict[str, tuple[str, ...]]

    def __init__(
        self, lists: Mapping[str, Iterable[str]] | None = None, /, **by_code: Iterable[str]
    ) -> None:
        merged = {**(lists or {}), **by_code}
        object.__setattr__(self, "_lists", {code: tuple(v) for code, v in merged.items()})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __getitem__(self, lang: str) -> tuple[str, ...]:
        if not self._lists:
            return ()
        return self._lists[lang]

    def __contains__(self, lang: object) -> bool:
        return lang in self._lists

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)

    def __bool__(self) -> bool:
        return any(self._lists.values())

    def __hash__(self) -> int:
        return hash(frozenset(self._lists.items()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._lists!r})"

    def __reduce__(self) -> tuple[type[LocalizedList], tuple[dict[str, tuple[str, ...]]]]:
        return (type(self), (self._lists,))


@dataclass(frozen=True, slots=True)
class Section:
    """A run of numbered steps, optionally headed (e.g. "iOS 14 and earlier").

    `source` is "article" (the steps carry the source article's facts) or "general" (written
    from general knowledge beyond the article); see knowledge/SCHEMA.md.
    """

    steps: LocalizedList
    heading: Localized | None = None
    source: str = "article"


@dataclass(frozen=True, slots=True)
class Link:
    """A URL button: a label and a page per language."""

    label: Localized
    url: Localized


@dataclass(frozen=True, slots=True)
class Stage:
    """A stage of the article's troubleshooting order."""

    id: str
    title: Localized


@dataclass(frozen=True, slots=True)
class Fix:
    """One thing to try, with its steps for each device it applies to."""

    id: str
    stage: str
    title: Localized
    steps: Mapping[Device, tuple[Section, ...]]
    why: Localized | None = None
    warnings: LocalizedList = field(default_factory=LocalizedList)
    notes: LocalizedList = field(default_factory=LocalizedList)
    link: Link | None = None

    @property
    def devices(self) -> frozenset[Device]:
        return frozenset(self.steps)


@dataclass(frozen=True, slots=True)
class Entry:
    """Something a user can tell us: an error message, a symptom or a FAQ."""

    id: str
    kind: EntryKind
    title: Localized
    patterns: LocalizedList
    path: tuple[str, ...]
    message: Localized | None = None
    summary: Localized | None = None
    answer: Localized | None = None
    devices: frozenset[Device] = frozenset(Device)
    other_device: Localized | None = None
    order_note: Localized | None = None
    # A topic of spellings.yaml the text must name for the entry to be taken (see the matcher).
    requires_topic: str | None = None

    def applies_to(self, device: Device | str) -> bool:
        """Return whether the entry's walk is meant for the device (see `devices`)."""
        return Device(device) in self.devices

    def all_patterns(self, lang: str) -> tuple[str, ...]:
        """Return every text that should match this entry in one language."""
        texts = [self.title[lang]]
        if self.message is not None:
            texts.append(self.message[lang])
        texts.extend(self.patterns[lang])
        return tuple(dict.fromkeys(t for t in texts if t))


@dataclass(frozen=True, slots=True)
class Topic:
    """A piece of general advice from the article (prevention tips, plans, …).

    A topic with `patterns` is a question people ask: the matcher recognises it like an entry.
    """

    id: str
    title: Localized
    items: LocalizedList
    patterns: LocalizedList = field(default_factory=LocalizedList)

    def all_patterns(self, lang: str) -> tuple[str, ...]:
        """Return every text that should match this topic in one language (none: not asked)."""
        if not self.patterns:
            return ()
        return tuple(dict.fromkeys((self.title[lang], *self.patterns[lang])))


@dataclass(frozen=True, slots=True)
class Knowledge:
    """The whole validated knowledge base."""

    stages: tuple[Stage, ...]
    fixes: Mapping[str, Fix]
    entries: Mapping[str, Entry]
    links: Mapping[str, Localized]
    topics: Mapping[str, Topic]
    # Labelled messages per matched entry or topic (examples.yaml; see bot/content/examples.py).
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def path_for(self, entry_id: str, device: Device | str) -> tuple[str, ...]:
        """Return the fixes of an entry that have steps for the device, in walking order."""
        device = Device(device)
        return tuple(f for f in self.entries[entry_id].path if device in self.fixes[f].devices)

    def applies(self, entry_id: str, device: Device | str) -> bool:
        """Return whether the entry applies to the device (path_for does not check this)."""
        return self.entries[entry_id].applies_to(device)


# --------------------------------------------------------------------------- the reader


def _text(r: Reader, data: Map, key: str, where: str, *, required: bool = True) -> Localized | None:
    texts = r.texts(data, key, where, required=required)
    return Localized(texts) if texts else None


def _text_list(
    r: Reader, data: Map, key: str, where: str, *, required: bool = False
) -> LocalizedList:
    return LocalizedList(r.text_lists(data, key, where, required=required))


def _read_stages(r: Reader, doc: Map) -> list[Stage]:
    stages: list[Stage] = []
    for line, item in r.items(doc.get("stages"), "stages", doc.line):
        data = r.mapping(item, "stages[]", line)
        if data is None:
            continue
        sid = r.ident(data, "stage")
        title = _text(r, data, "title", f"stage {sid}")
        r.unknown_keys(data, {"id", "title"}, f"stage {sid}")
        if sid and title:
            if any(s.id == sid for s in stages):
                r.problem(data.line, f"duplicate stage id {sid!r}")
            stages.append(Stage(sid, title))
    return stages


def _read_sections(r: Reader, value: Any, where: str, line: int) -> tuple[Section, ...]:
    sections: list[Section] = []
    for sline, item in r.items(value, where, line):
        data = r.mapping(item, where, sline)
        if data is None:
            continue
        r.unknown_keys(data, {"heading", "source", *r.languages.codes}, where)
        heading = _text(r, data, "heading", where, required=False)
        source = data.get("source", "article")
        if source not in SOURCES:
            r.problem(data.line, f"{where}: 'source' must be one of {', '.join(SOURCES)}")
            source = "article"
        steps = _text_list(r, data, "", f"{where} section", required=True)
        if steps:
            sections.append(Section(steps=steps, heading=heading, source=source))
    return tuple(sections)


def _read_link(r: Reader, data: Map, where: str) -> Link | None:
    value = data.get("link")
    if value is None:
        return None
    m = r.mapping(value, f"{where}.link", data.line)
    if m is None:
        return None
    r.unknown_keys(m, {"label", "url"}, f"{where}.link")
    label = _text(r, m, "label", f"{where}.link")
    url = _text(r, m, "url", f"{where}.link")
    if url is not None:
        for lang in url:
            if not url[lang].startswith("https://"):
                r.problem(m.line, f"{where}.link.url.{lang}: must start with https://")
    if label is None or url is None:
        return None
    return Link(label=label, url=url)


_FIX_KEYS = {"id", "stage", "title", "why", "steps", "warnings", "notes", "link"}


def _read_fixes(r: Reader, doc: Map, stage_ids: set[str]) -> dict[str, tuple[Fix, int]]:
    fixes: dict[str, tuple[Fix, int]] = {}
    for line, item in r.items(doc.get("fixes"), "fixes", doc.line):
        data = r.mapping(item, "fixes[]", line)
        if data is None:
            continue
        fid = r.ident(data, "fix")
        where = f"fix {fid}"
        r.unknown_keys(data, _FIX_KEYS, where)
        stage = data.get("stage")
        if stage not in stage_ids:
            r.problem(data.line, f"{where}: unknown stage {stage!r}")
        title = _text(r, data, "title", where)
        why = _text(r, data, "why", where, required=False)
        steps: dict[Device, tuple[Section, ...]] = {}
        raw_steps = r.mapping(data.get("steps", Map()), f"{where}.steps", data.line)
        if raw_steps is not None:
            for device_name, sections in raw_steps.items():
                try:
                    device = Device(device_name)
                except ValueError:
                    r.problem(raw_steps.line, f"{where}.steps: unknown device {device_name!r}")
                    continue
                read = _read_sections(r, sections, f"{where}.steps.{device}", raw_steps.line)
                if read:
                    steps[device] = read
        if not steps:
            r.problem(data.line, f"{where}: no steps for any device")
        warnings = _text_list(r, data, "warnings", where)
        notes = _text_list(r, data, "notes", where)
        link = _read_link(r, data, where)
        if fid is None or title is None or stage not in stage_ids or not steps:
            continue
        if fid in fixes:
            r.problem(data.line, f"duplicate fix id {fid!r} (first at line {fixes[fid][1]})")
            continue
        fix = Fix(fid, stage, title, steps, why, warnings, notes, link)
        fixes[fid] = (fix, data.line)
    return fixes


_ENTRY_KEYS = {
    "id",
    "kind",
    "title",
    "message",
    "summary",
    "answer",
    "patterns",
    "path",
    "devices",
    "other_device",
    "order_note",
    "requires_topic",
}


def _read_entry_devices(r: Reader, data: Map, where: str) -> frozenset[Device]:
    """Read an entry's optional `devices` list (default: every device)."""
    raw = data.get("devices")
    if raw is None:
        return frozenset(Device)
    if not isinstance(raw, list) or not raw:
        r.problem(data.line, f"{where}: 'devices' must be a non-empty list of devices")
        return frozenset(Device)
    devices: list[Device] = []
    for name in raw:
        try:
            device = Device(name)
        except ValueError:
            r.problem(line_of(raw, data.line), f"{where}.devices: unknown device {name!r}")
            continue
        if device in devices:
            r.problem(line_of(raw, data.line), f"{where}.devices: {name!r} named twice")
            continue
        devices.append(device)
    return frozenset(devices) if devices else frozenset(Device)


def _read_path(r: Reader, data: Map, where: str, fixes: Mapping[str, Fix]) -> list[str]:
    """Read an entry's `path`: known fix ids, each once."""
    path: list[str] = []
    raw_path = data.get("path")
    if not isinstance(raw_path, list) or not raw_path:
        r.problem(data.line, f"{where}: 'path' must be a non-empty list of fix ids")
        return path
    for fid in raw_path:
        if fid not in fixes:
            r.problem(line_of(raw_path, data.line), f"{where}: path names unknown fix {fid!r}")
        elif fid in path:
            r.problem(line_of(raw_path, data.line), f"{where}: path names {fid!r} twice")
        else:
            path.append(fid)
    return path


def _read_requires_topic(
    r: Reader, data: Map, where: str, topic_names: Collection[str] | None
) -> str | None:
    """Read an entry's optional `requires_topic`: a topic of spellings.yaml, when known."""
    raw = data.get("requires_topic")
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        r.problem(data.line, f"{where}: 'requires_topic' must be a topic name")
        return None
    if topic_names is not None and raw not in topic_names:
        r.problem(data.line, f"{where}: 'requires_topic' names {raw!r}, not a topic of spellings")
    return raw


def _read_entries(
    r: Reader,
    doc: Map,
    fixes: Mapping[str, Fix],
    stage_rank: Mapping[str, int],
    topic_names: Collection[str] | None,
) -> dict[str, tuple[Entry, int]]:
    entries: dict[str, tuple[Entry, int]] = {}
    for line, item in r.items(doc.get("entries"), "entries", doc.line):
        data = r.mapping(item, "entries[]", line)
        if data is None:
            continue
        eid = r.ident(data, "entry")
        where = f"entry {eid}"
        r.unknown_keys(data, _ENTRY_KEYS, where)
        try:
            kind = EntryKind(str(data.get("kind")))
        except ValueError:
            r.problem(data.line, f"{where}: 'kind' must be one of error, symptom, faq")
            continue
        title = _text(r, data, "title", where)
        message = _text(r, data, "message", where, required=kind is EntryKind.ERROR)
        summary = _text(r, data, "summary", where, required=False)
        answer = _text(r, data, "answer", where, required=kind is EntryKind.FAQ)
        patterns = _text_list(r, data, "patterns", where, required=True)
        raw_path = data.get("path")
        path = _read_path(r, data, where, fixes)
        devices = _read_entry_devices(r, data, where)
        other_device = _text(r, data, "other_device", where, required=False)
        if devices != frozenset(Device) and other_device is None:
            r.problem(
                data.line, f"{where}: 'devices' leaves out a device, so 'other_device' is needed"
            )
        if devices == frozenset(Device) and "other_device" in data:
            r.problem(data.line, f"{where}: 'other_device' needs 'devices' that leave out a device")
        order_note = _text(r, data, "order_note", where, required=False)
        requires_topic = _read_requires_topic(r, data, where, topic_names)
        if path:
            ranks = [stage_rank[fixes[f].stage] for f in path]
            in_order = ranks == sorted(ranks)
            if not in_order and "order_note" not in data:
                r.problem(
                    line_of(raw_path, data.line),
                    f"{where}: path does not follow the stage order"
                    " (if on purpose, say why in 'order_note')",
                )
            if in_order and "order_note" in data:
                r.problem(
                    data.line, f"{where}: 'order_note' given, but the path follows the stage order"
                )
            for device in sorted(devices):
                if not any(device in fixes[f].devices for f in path):
                    r.problem(
                        line_of(raw_path, data.line),
                        f"{where}: path has no fix with steps for {device.value!r}",
                    )
        if eid is None or title is None or not patterns:
            continue
        if eid in entries:
            r.problem(data.line, f"duplicate entry id {eid!r} (first at line {entries[eid][1]})")
            continue
        entry = Entry(
            eid,
            kind,
            title,
            patterns,
            tuple(path),
            message,
            summary,
            answer,
            devices,
            other_device,
            order_note,
            requires_topic,
        )
        entries[eid] = (entry, data.line)
    return entries


def _read_info(
    r: Reader, doc: Map, topic_lines: dict[str, int]
) -> tuple[dict[str, Localized], dict[str, Topic]]:
    links: dict[str, Localized] = {}
    raw_links = r.mapping(doc.get("links"), "links", doc.line)
    if raw_links is not None:
        for name in raw_links:
            url = _text(r, raw_links, name, "links")
            if url is not None:
                links[name] = url
        for required in ("system_status", "contact_support"):
            if required not in raw_links:
                r.problem(raw_links.line, f"links: missing {required!r}")
    topics: dict[str, Topic] = {}
    for line, item in r.items(doc.get("topics", List()), "topics", doc.line):
        data = r.mapping(item, "topics[]", line)
        if data is None:
            continue
        tid = r.ident(data, "topic")
        r.unknown_keys(data, {"id", "title", "items", "patterns"}, f"topic {tid}")
        title = _text(r, data, "title", f"topic {tid}")
        items = _text_list(r, data, "items", f"topic {tid}", required=True)
        patterns = _text_list(r, data, "patterns", f"topic {tid}")
        if tid in topics:
            r.problem(data.line, f"duplicate topic id {tid!r}")
        elif tid and title and items:
            topics[tid] = Topic(tid, title, items, patterns)
            topic_lines[tid] = data.line
    return links, topics


def load_knowledge(
    directory: Path,
    languages: Languages = LANGUAGES,
    topic_names: Collection[str] | None = None,
) -> Knowledge:
    """Load fixes.yaml, entries.yaml, info.yaml and examples.yaml; raise KnowledgeError on any
    problem. With `topic_names` (spellings.yaml's topics), an entry's `requires_topic` is
    checked against them."""
    problems = Problems()
    docs: dict[str, Map] = {}
    for name in ("fixes", "entries", "info"):
        doc = problems.load_mapping(directory / f"{name}.yaml")
        if doc is not None:
            docs[name] = doc
    problems.raise_if_any()

    fr = problems.reader(directory / "fixes.yaml", languages)
    fr.unknown_keys(docs["fixes"], {"stages", "fixes"}, "fixes.yaml")
    stages = _read_stages(fr, docs["fixes"])
    stage_rank = {s.id: i for i, s in enumerate(stages)}
    located_fixes = _read_fixes(fr, docs["fixes"], set(stage_rank))
    fixes = {fid: fix for fid, (fix, _) in located_fixes.items()}

    er = problems.reader(directory / "entries.yaml", languages)
    er.unknown_keys(docs["entries"], {"entries"}, "entries.yaml")
    located_entries = _read_entries(er, docs["entries"], fixes, stage_rank, topic_names)
    entries = {eid: e for eid, (e, _) in located_entries.items()}
    for fid in set(fixes) & set(entries):
        er.problem(located_entries[fid][1], f"id {fid!r} is both an entry and a fix")

    ir = problems.reader(directory / "info.yaml", languages)
    ir.unknown_keys(docs["info"], {"links", "topics"}, "info.yaml")
    topic_lines: dict[str, int] = {}
    links, topics = _read_info(ir, docs["info"], topic_lines)
    # A topic people ask about is matched like an entry, so their ids share one namespace.
    for tid in sorted(set(entries) & {t.id for t in topics.values() if t.patterns}):
        ir.problem(topic_lines[tid], f"topic {tid!r} has patterns and the id of an entry")

    problems.raise_if_any()  # entries read whole: an example's id is checked against them
    asked = set(entries) | {t.id for t in topics.values() if t.patterns}
    examples = read_examples(problems, directory / EXAMPLES, asked)
    problems.raise_if_any()
    return Knowledge(tuple(stages), fixes, entries, links, topics, examples)
