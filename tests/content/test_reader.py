"""The one YAML reader and problem collector of every content file; Localized as a mapping."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from bot.content.knowledge import Localized, LocalizedList
from bot.content.reader import Problems, key_line, line_of
from bot.errors import KnowledgeError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_mappings_lists_and_keys_know_their_lines(tmp_path: Path) -> None:
    problems = Problems()
    text = "# a comment\na: 1\nb:\n  - x\n  - y\nc:\n  d: 2\n"
    doc = problems.load_mapping(write(tmp_path, text))
    assert doc is not None and len(problems) == 0
    assert line_of(doc) == 2 and line_of(doc["b"]) == 4 and line_of(doc["c"]) == 7
    assert [key_line(doc, k) for k in "abc"] == [2, 3, 6]
    assert key_line(doc["c"], "d") == 7 and key_line(doc, "missing", 9) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1: file is empty"),
        ("- a list\n", "1: expected a mapping at the top level"),
        ("a: 1\nb: [\n", "3: YAML syntax"),
        ("a: 1\nb: 2\na: 3\n", "3: YAML syntax: duplicate key 'a'"),
    ],
)
def test_every_file_problem_is_located(tmp_path: Path, text: str, expected: str) -> None:
    problems = Problems()
    path = write(tmp_path, text)
    assert problems.load_mapping(path) is None
    [problem] = [str(p) for p in problems]
    assert problem.startswith(f"{path}:{expected}")


def test_an_unreadable_file_and_raising_every_problem_at_once(tmp_path: Path) -> None:
    problems = Problems()
    assert problems.load_mapping(tmp_path / "missing.yaml") is None
    problems.reader(tmp_path / "other.yaml").problem(4, "something else")
    with pytest.raises(KnowledgeError) as info:
        problems.raise_if_any()
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'missing.yaml'}:0: cannot read file: No such file or directory",
        f"{tmp_path / 'other.yaml'}:4: something else",
    ]
    Problems().raise_if_any()  # nothing found: nothing raised


def test_localized_is_an_immutable_mapping_by_language() -> None:
    text = Localized(ja="あ", en="a")
    assert text == Localized({"en": "a", "ja": "あ"}) and dict(text) == {"ja": "あ", "en": "a"}
    assert text["en"] == "a" and len(text) == 2 and hash(text) == hash(Localized(dict(text)))
    with pytest.raises(KeyError):
        text["fr"]  # no silent fallback to another language
    with pytest.raises(AttributeError):
        text.ja = "い"  # type: ignore[attr-defined]
    for clone in (copy.deepcopy(text), pickle.loads(pickle.dumps(text))):
        assert clone == text and isinstance(clone, Localized)


def test_localized_list_empty_has_nothing_in_any_language() -> None:
    items = LocalizedList(ja=["一", "二"], en=["one"])
    assert items["ja"] == ("一", "二") and items["en"] == ("one",) and items
    assert not LocalizedList() and LocalizedList()["fr"] == ()
    with pytest.raises(KeyError):
        items["fr"]
    assert pickle.loads(pickle.dumps(items)) == items
