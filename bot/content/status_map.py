"""Load and check knowledge/status.yaml: which of Apple's services matter for which entry."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.content.reader import Map, Problems, Reader, is_text_list, line_of


@dataclass(frozen=True, slots=True)
class ServiceMap:
    """Which of Apple's services matter for which entry (knowledge/status.yaml)."""

    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # id → published names
    entries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # entry → group ids
    default: tuple[str, ...] = ()  # group ids for every other entry

    def names_for(self, entry_id: str) -> tuple[str, ...]:
        """Return every published name (every language) of the services that matter here."""
        group_ids = self.entries.get(entry_id, self.default)
        return tuple(name for g in group_ids for name in self.groups.get(g, ()))


def _read_groups(r: Reader, doc: Map, top: int) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    raw_groups = doc.get("services")
    if not isinstance(raw_groups, dict) or not raw_groups:
        r.problem(top, "services: expected a mapping of service ids to published names")
        return groups
    for gid, names in raw_groups.items():
        line = line_of(raw_groups, top)
        if not isinstance(gid, str) or not gid.isidentifier() or not gid.islower():
            r.problem(line, f"services: {gid!r} must be a lower_snake_case id")
        elif not is_text_list(names):
            r.problem(line_of(names, line), f"services.{gid}: expected a list of names")
        else:
            groups[gid] = tuple(n.strip() for n in names)
    return groups


def _group_list(
    r: Reader, groups: Mapping[str, Any], value: Any, where: str, line: int
) -> tuple[str, ...]:
    if not is_text_list(value):
        r.problem(line, f"{where}: expected a list of service ids")
        return ()
    for gid in value:
        if gid not in groups:
            r.problem(line_of(value, line), f"{where}: unknown service {gid!r}")
    return tuple(value)


def load_service_map(path: Path, entry_ids: Collection[str] | None = None) -> ServiceMap:
    """Load and check knowledge/status.yaml; raise KnowledgeError naming file and line."""
    problems = Problems()
    doc = problems.load_mapping(path)
    problems.raise_if_any()
    assert doc is not None  # load_mapping reports every other outcome
    r = problems.reader(path)
    top = line_of(doc, 1)
    for key in doc:
        if key not in ("services", "default", "entries"):
            r.problem(top, f"unknown key {key!r}")
    groups = _read_groups(r, doc, top)
    default = _group_list(r, groups, doc.get("default"), "default", top)
    entries: dict[str, tuple[str, ...]] = {}
    raw_entries = doc.get("entries", {})
    if not isinstance(raw_entries, dict):
        r.problem(top, "entries: expected a mapping of entry ids to service ids")
        raw_entries = {}
    for eid, value in raw_entries.items():
        line = line_of(raw_entries, top)
        if entry_ids is not None and eid not in entry_ids:
            r.problem(line, f"entries: {eid!r} is not an entry of the knowledge base")
        entries[str(eid)] = _group_list(r, groups, value, f"entries.{eid}", line)
    problems.raise_if_any()
    return ServiceMap(groups, entries, default)
