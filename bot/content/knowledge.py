"""Load and validate the knowledge base (knowledge/*.yaml) into frozen dataclasses.

The format is described in knowledge/SCHEMA.md. Every problem found is reported with its
file and line; nothing half-valid is ever returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from bot.errors import KnowledgeError, Problem

LANGS: tuple[str, ...] = ("ja", "en")

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


@dataclass(frozen=True, slots=True)
class Localized:
    """A text in every language."""

    ja: str
    en: str

    def __getitem__(self, lang: str) -> str:
        return self.en if lang == "en" else self.ja


@dataclass(frozen=True, slots=True)
class LocalizedList:
    """A list of texts in every language (the lists may differ in length)."""

    ja: tuple[str, ...] = ()
    en: tuple[str, ...] = ()

    def __getitem__(self, lang: str) -> tuple[str, ...]:
        return self.en if lang == "en" else self.ja

    def __bool__(self) -> bool:
        return bool(self.ja or self.en)


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

    def stage_rank(self, fix_id: str) -> int:
        """Return the position of the fix's stage in the troubleshooting order."""
        stage = self.fixes[fix_id].stage
        return next(i for i, s in enumerate(self.stages) if s.id == stage)

    def path_for(self, entry_id: str, device: Device | str) -> tuple[str, ...]:
        """Return the fixes of an entry that have steps for the device, in walking order."""
        device = Device(device)
        return tuple(f for f in self.entries[entry_id].path if device in self.fixes[f].devices)

    def applies(self, entry_id: str, device: Device | str) -> bool:
        """Return whether the entry applies to the device (path_for does not check this)."""
        return self.entries[entry_id].applies_to(device)


# --------------------------------------------------------------------------- YAML with lines


class _Node:
    """Marks a loaded mapping or list with the line it started on."""

    line: int


class _Map(dict[str, Any], _Node):
    pass


class _List(list[Any], _Node):
    pass


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers where each mapping and list starts, and refuses duplicates."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen and key != "<<":
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        mapping = _Map({str(k): v for k, v in super().construct_mapping(node, deep=True).items()})
        mapping.line = node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        seq = _List(super().construct_sequence(node, deep=True))
        seq.line = node.start_mark.line + 1
        return seq


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _LineLoader.construct_mapping,
)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
    _LineLoader.construct_sequence,
)


def load_yaml(path: Path, problems: list[Problem]) -> Any:
    """Parse one YAML file, recording a located problem instead of raising."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(str(path), 0, f"cannot read file: {exc.strerror}"))
        return None
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problems.append(Problem(str(path), line, f"YAML syntax: {exc.problem or exc}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(str(path), 0, f"YAML syntax: {exc}"))
    return None


def line_of(value: Any, default: int = 0) -> int:
    """Return the line a loaded mapping or list starts on."""
    return getattr(value, "line", default)


# --------------------------------------------------------------------------- the reader


class _Reader:
    """Turns parsed YAML of one file into dataclasses, collecting problems."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.file = str(path)
        self.problems = problems

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, value: Any, where: str, line: int) -> _Map | None:
        if isinstance(value, _Map):
            return value
        self.problem(line, f"{where}: expected a mapping")
        return None

    def items(self, value: Any, where: str, line: int) -> Iterator[tuple[int, Any]]:
        if not isinstance(value, _List):
            self.problem(line, f"{where}: expected a list")
            return
        for item in value:
            yield line_of(item, line_of(value, line)), item

    def unknown_keys(self, data: _Map, allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                self.problem(data.line, f"{where}: unknown key {key!r}")

    def ident(self, data: _Map, where: str) -> str | None:
        value = data.get("id")
        if not isinstance(value, str) or not value.isidentifier() or not value.islower():
            self.problem(data.line, f"{where}: 'id' must be a lower_snake_case name")
            return None
        return value

    def text(self, data: _Map, key: str, where: str, *, required: bool = True) -> Localized | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(data.line, f"{where}: missing {key!r}")
            return None
        m = self.mapping(value, f"{where}.{key}", data.line)
        if m is None:
            return None
        texts: dict[str, str] = {}
        for lang in LANGS:
            t = m.get(lang)
            if not isinstance(t, str) or not t.strip():
                self.problem(m.line, f"{where}.{key}: missing language {lang!r}")
            else:
                texts[lang] = t.strip()
        self.unknown_keys(m, set(LANGS), f"{where}.{key}")
        if len(texts) != len(LANGS):
            return None
        return Localized(**texts)

    def text_list(
        self, data: _Map, key: str, where: str, *, required: bool = False, line: int | None = None
    ) -> LocalizedList:
        value = data.get(key) if key else data
        if value is None:
            if required:
                self.problem(data.line, f"{where}: missing {key!r}")
            return LocalizedList()
        m = self.mapping(value, f"{where}.{key}", data.line)
        if m is None:
            return LocalizedList()
        lists: dict[str, tuple[str, ...]] = {}
        for lang in LANGS:
            items = m.get(lang)
            if not isinstance(items, list) or not items:
                self.problem(m.line, f"{where}.{key}: missing language {lang!r}")
                continue
            bad = [i for i in items if not isinstance(i, str) or not i.strip()]
            if bad:
                self.problem(m.line, f"{where}.{key}.{lang}: every item must be a non-empty text")
                continue
            lists[lang] = tuple(i.strip() for i in items)
        return LocalizedList(**lists)


def _read_stages(r: _Reader, doc: _Map) -> list[Stage]:
    stages: list[Stage] = []
    for line, item in r.items(doc.get("stages"), "stages", doc.line):
        data = r.mapping(item, "stages[]", line)
        if data is None:
            continue
        sid = r.ident(data, "stage")
        title = r.text(data, "title", f"stage {sid}")
        r.unknown_keys(data, {"id", "title"}, f"stage {sid}")
        if sid and title:
            if any(s.id == sid for s in stages):
                r.problem(data.line, f"duplicate stage id {sid!r}")
            stages.append(Stage(sid, title))
    return stages


def _read_sections(r: _Reader, value: Any, where: str, line: int) -> tuple[Section, ...]:
    sections: list[Section] = []
    for sline, item in r.items(value, where, line):
        data = r.mapping(item, where, sline)
        if data is None:
            continue
        r.unknown_keys(data, {"heading", "source", *LANGS}, where)
        heading = r.text(data, "heading", where, required=False)
        source = data.get("source", "article")
        if source not in SOURCES:
            r.problem(data.line, f"{where}: 'source' must be one of {', '.join(SOURCES)}")
            source = "article"
        steps = r.text_list(data, "", f"{where} section", required=True)
        if steps.ja and steps.en:
            sections.append(Section(steps=steps, heading=heading, source=source))
    return tuple(sections)


def _read_link(r: _Reader, data: _Map, where: str) -> Link | None:
    value = data.get("link")
    if value is None:
        return None
    m = r.mapping(value, f"{where}.link", data.line)
    if m is None:
        return None
    r.unknown_keys(m, {"label", "url"}, f"{where}.link")
    label = r.text(m, "label", f"{where}.link")
    url = r.text(m, "url", f"{where}.link")
    if url is not None:
        for lang in LANGS:
            if not url[lang].startswith("https://"):
                r.problem(m.line, f"{where}.link.url.{lang}: must start with https://")
    if label is None or url is None:
        return None
    return Link(label=label, url=url)


_FIX_KEYS = {"id", "stage", "title", "why", "steps", "warnings", "notes", "link"}


def _read_fixes(r: _Reader, doc: _Map, stage_ids: set[str]) -> dict[str, tuple[Fix, int]]:
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
        title = r.text(data, "title", where)
        why = r.text(data, "why", where, required=False)
        steps: dict[Device, tuple[Section, ...]] = {}
        raw_steps = r.mapping(data.get("steps", _Map()), f"{where}.steps", data.line)
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
        warnings = r.text_list(data, "warnings", where)
        notes = r.text_list(data, "notes", where)
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
}


def _read_entry_devices(r: _Reader, data: _Map, where: str) -> frozenset[Device]:
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


def _read_entries(
    r: _Reader, doc: _Map, fixes: Mapping[str, Fix], stage_rank: Mapping[str, int]
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
        title = r.text(data, "title", where)
        message = r.text(data, "message", where, required=kind is EntryKind.ERROR)
        summary = r.text(data, "summary", where, required=False)
        answer = r.text(data, "answer", where, required=kind is EntryKind.FAQ)
        patterns = r.text_list(data, "patterns", where, required=True)
        path: list[str] = []
        raw_path = data.get("path")
        if not isinstance(raw_path, list) or not raw_path:
            r.problem(data.line, f"{where}: 'path' must be a non-empty list of fix ids")
        else:
            for fid in raw_path:
                if fid not in fixes:
                    r.problem(
                        line_of(raw_path, data.line), f"{where}: path names unknown fix {fid!r}"
                    )
                elif fid in path:
                    r.problem(line_of(raw_path, data.line), f"{where}: path names {fid!r} twice")
                else:
                    path.append(fid)
        devices = _read_entry_devices(r, data, where)
        other_device = r.text(data, "other_device", where, required=False)
        if devices != frozenset(Device) and other_device is None:
            r.problem(
                data.line, f"{where}: 'devices' leaves out a device, so 'other_device' is needed"
            )
        if devices == frozenset(Device) and "other_device" in data:
            r.problem(data.line, f"{where}: 'other_device' needs 'devices' that leave out a device")
        order_note = r.text(data, "order_note", where, required=False)
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
        if eid is None or title is None or not patterns.ja or not patterns.en:
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
        )
        entries[eid] = (entry, data.line)
    return entries


def _read_info(
    r: _Reader, doc: _Map, topic_lines: dict[str, int]
) -> tuple[dict[str, Localized], dict[str, Topic]]:
    links: dict[str, Localized] = {}
    raw_links = r.mapping(doc.get("links"), "links", doc.line)
    if raw_links is not None:
        for name in raw_links:
            url = r.text(raw_links, name, "links")
            if url is not None:
                links[name] = url
        for required in ("system_status", "contact_support"):
            if required not in raw_links:
                r.problem(raw_links.line, f"links: missing {required!r}")
    topics: dict[str, Topic] = {}
    for line, item in r.items(doc.get("topics", _List()), "topics", doc.line):
        data = r.mapping(item, "topics[]", line)
        if data is None:
            continue
        tid = r.ident(data, "topic")
        r.unknown_keys(data, {"id", "title", "items", "patterns"}, f"topic {tid}")
        title = r.text(data, "title", f"topic {tid}")
        items = r.text_list(data, "items", f"topic {tid}", required=True)
        patterns = r.text_list(data, "patterns", f"topic {tid}")
        if tid in topics:
            r.problem(data.line, f"duplicate topic id {tid!r}")
        elif tid and title and items.ja and items.en:
            topics[tid] = Topic(tid, title, items, patterns)
            topic_lines[tid] = data.line
    return links, topics


def load_knowledge(directory: Path) -> Knowledge:
    """Load fixes.yaml, entries.yaml and info.yaml; raise KnowledgeError on any problem."""
    problems: list[Problem] = []
    docs: dict[str, _Map] = {}
    for name in ("fixes", "entries", "info"):
        path = directory / f"{name}.yaml"
        doc = load_yaml(path, problems)
        if doc is None and path.exists() and not problems:
            problems.append(Problem(str(path), 1, "file is empty"))
        if doc is not None and not isinstance(doc, _Map):
            problems.append(Problem(str(path), 1, "expected a mapping at the top level"))
        elif doc is not None:
            docs[name] = doc
    if problems:
        raise KnowledgeError(problems)

    fr = _Reader(directory / "fixes.yaml", problems)
    fr.unknown_keys(docs["fixes"], {"stages", "fixes"}, "fixes.yaml")
    stages = _read_stages(fr, docs["fixes"])
    stage_rank = {s.id: i for i, s in enumerate(stages)}
    located_fixes = _read_fixes(fr, docs["fixes"], set(stage_rank))
    fixes = {fid: fix for fid, (fix, _) in located_fixes.items()}

    er = _Reader(directory / "entries.yaml", problems)
    er.unknown_keys(docs["entries"], {"entries"}, "entries.yaml")
    located_entries = _read_entries(er, docs["entries"], fixes, stage_rank)
    entries = {eid: e for eid, (e, _) in located_entries.items()}
    for fid in set(fixes) & set(entries):
        er.problem(located_entries[fid][1], f"id {fid!r} is both an entry and a fix")

    ir = _Reader(directory / "info.yaml", problems)
    ir.unknown_keys(docs["info"], {"links", "topics"}, "info.yaml")
    topic_lines: dict[str, int] = {}
    links, topics = _read_info(ir, docs["info"], topic_lines)
    # A topic people ask about is matched like an entry, so their ids share one namespace.
    for tid in sorted(set(entries) & {t.id for t in topics.values() if t.patterns}):
        ir.problem(topic_lines[tid], f"topic {tid!r} has patterns and the id of an entry")

    if problems:
        raise KnowledgeError(problems)
    return Knowledge(tuple(stages), fixes, entries, links, topics)
