"""Read content YAML with the line of every mapping and list, and collect located problems.

Every validator of content (knowledge, locales, spellings, the status service map) reads its
files through `Problems.load` and reports through `Problems.add` or a per-file `Reader`, so all
of them report `file:line: problem` the same way and `bot check` shows every problem at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bot.content.languages import LANGUAGES, Languages
from bot.errors import KnowledgeError, Problem


class _Node:
    """Marks a loaded mapping or list with the line it started on."""

    line: int


class Map(dict[str, Any], _Node):
    """A loaded YAML mapping (keys as text) that knows its line and the line of each key."""

    key_lines: dict[str, int]


class List(list[Any], _Node):
    """A loaded YAML list that knows its line."""


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers where each mapping and list starts, and refuses duplicates."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if str(key) in seen and key != "<<":
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen[str(key)] = key_node.start_mark.line + 1
        mapping = Map({str(k): v for k, v in super().construct_mapping(node, deep=True).items()})
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = seen
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        seq = List(super().construct_sequence(node, deep=True))
        seq.line = node.start_mark.line + 1
        return seq


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _LineLoader.construct_sequence
)


def line_of(value: Any, default: int = 0) -> int:
    """Return the line a loaded mapping or list starts on."""
    return getattr(value, "line", default)


def key_line(mapping: Any, key: str, default: int = 0) -> int:
    """Return the line a key of a loaded mapping is on."""
    lines: dict[str, int] = getattr(mapping, "key_lines", {})
    return lines.get(key, line_of(mapping, default))


class Problems:
    """Every problem found while reading content, in the order found."""

    def __init__(self) -> None:
        self._found: list[Problem] = []

    def add(self, file: str | Path, line: int, message: str) -> None:
        """Record one problem at a file and line."""
        self._found.append(Problem(str(file), line, message))

    def absorb(self, error: KnowledgeError) -> None:
        """Record every problem of an error raised by another loader."""
        self._found.extend(error.problems)

    def __len__(self) -> int:
        return len(self._found)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._found)

    def raise_if_any(self) -> None:
        """Raise KnowledgeError with every problem found so far, if there is one."""
        if self._found:
            raise KnowledgeError(self._found)

    def load(self, path: Path) -> Any:
        """Parse one YAML file; record a located problem (and return None) instead of raising."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.add(path, 0, f"cannot read file: {exc.strerror}")
            return None
        try:
            return yaml.load(text, Loader=_LineLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            self.add(path, line, f"YAML syntax: {exc.problem or exc}")
        except yaml.YAMLError as exc:
            self.add(path, 0, f"YAML syntax: {exc}")
        return None

    def load_mapping(self, path: Path) -> Map | None:
        """Parse a file whose top level must be a mapping; None (and a problem) otherwise."""
        before = len(self)
        doc = self.load(path)
        if doc is None:
            if len(self) == before:
                self.add(path, 1, "file is empty")
            return None
        if not isinstance(doc, Map):
            self.add(path, 1, "expected a mapping at the top level")
            return None
        return doc

    def load_section(self, path: Path, key: str) -> Map | None:
        """Parse a file whose top level holds one mapping, `key:`; None (and a problem)
        otherwise. Any other top-level key is reported as unknown."""
        doc = self.load_mapping(path)
        if doc is None:
            return None
        for unknown in sorted(set(doc) - {key}):
            self.add(path, key_line(doc, unknown, 1), f"unknown key {unknown!r}")
        section = doc.get(key)
        if not isinstance(section, Map):
            self.add(path, line_of(doc, 1), f"expected a mapping '{key}:'")
            return None
        return section

    def reader(self, path: Path, languages: Languages = LANGUAGES) -> Reader:
        """Return a reader that reports this file's problems here."""
        return Reader(path, self, languages)


def is_text_list(value: Any) -> bool:
    """Tell whether a value is a non-empty list of non-blank texts."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v.strip() for v in value)
    )


class Reader:
    """Checks the parsed YAML of one file, reporting located problems to a `Problems`."""

    def __init__(self, path: Path, problems: Problems, languages: Languages = LANGUAGES) -> None:
        self.file = str(path)
        self.problems = problems
        self.languages = languages

    def problem(self, line: int, message: str) -> None:
        """Record a problem of this file."""
        self.problems.add(self.file, line, message)

    def mapping(self, value: Any, where: str, line: int) -> Map | None:
        """Return the value if it is a mapping; else report it."""
        if isinstance(value, Map):
            return value
        self.problem(line, f"{where}: expected a mapping")
        return None

    def items(self, value: Any, where: str, line: int) -> Iterator[tuple[int, Any]]:
        """Yield each item of a list with its line; report a value that is not a list."""
        if not isinstance(value, List):
            self.problem(line, f"{where}: expected a list")
            return
        for item in value:
            yield line_of(item, line_of(value, line)), item

    def unknown_keys(self, data: Map, allowed: set[str] | frozenset[str], where: str) -> None:
        """Report every key of a mapping that is not allowed."""
        for key in data:
            if key not in allowed:
                self.problem(data.line, f"{where}: unknown key {key!r}")

    def ident(self, data: Map, where: str) -> str | None:
        """Return the mapping's lower_snake_case `id`, or report it."""
        value = data.get("id")
        if not isinstance(value, str) or not value.isidentifier() or not value.islower():
            self.problem(data.line, f"{where}: 'id' must be a lower_snake_case name")
            return None
        return value

    def texts(self, data: Map, key: str, where: str, *, required: bool = True) -> dict[str, str]:
        """Return a text in every language of the table, or {} after reporting what is missing."""
        value = data.get(key)
        if value is None:
            if required:
                self.problem(data.line, f"{where}: missing {key!r}")
            return {}
        m = self.mapping(value, f"{where}.{key}", data.line)
        if m is None:
            return {}
        texts: dict[str, str] = {}
        for code in self.languages.codes:
            t = m.get(code)
            if not isinstance(t, str) or not t.strip():
                self.problem(m.line, f"{where}.{key}: missing language {code!r}")
            else:
                texts[code] = t.strip()
        self.unknown_keys(m, frozenset(self.languages.codes), f"{where}.{key}")
        return texts if len(texts) == len(self.languages) else {}

    def text_lists(
        self, data: Map, key: str, where: str, *, required: bool = False
    ) -> dict[str, tuple[str, ...]]:
        """Return a list of texts per language (key "" reads `data` itself); report gaps."""
        value = data.get(key) if key else data
        if value is None:
            if required:
                self.problem(data.line, f"{where}: missing {key!r}")
            return {}
        m = self.mapping(value, f"{where}.{key}", data.line)
        if m is None:
            return {}
        lists: dict[str, tuple[str, ...]] = {}
        for code in self.languages.codes:
            items = m.get(code)
            if not isinstance(items, list) or not items:
                self.problem(m.line, f"{where}.{key}: missing language {code!r}")
                continue
            if not all(isinstance(i, str) and i.strip() for i in items):
                self.problem(m.line, f"{where}.{key}.{code}: every item must be a non-empty text")
                continue
            lists[code] = tuple(i.strip() for i in items)
        return lists if len(lists) == len(self.languages) else {}
