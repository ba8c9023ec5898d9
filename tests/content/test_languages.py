"""The languages table: a third language is one row plus YAML, and its gaps are located."""

from __future__ import annotations

import datetime as dtm
from pathlib import Path
from typing import Any

import pytest

from bot.content.knowledge import load_knowledge
from bot.content.languages import LANGUAGES, Language, Languages
from bot.content.locales import load_locales
from bot.errors import KnowledgeError
from tests.support.kb_factory import minimal_kb, write_kb

FRENCH = Language("fr", "Français", "fr_FR", dtm.UTC, "%d/%m/%Y %H:%M")
THREE = Languages(rows=(*LANGUAGES.rows, FRENCH), default="en")


def with_french(node: Any) -> Any:
    """Add a French text beside every English one of a knowledge document."""
    if isinstance(node, dict):
        copied = {key: with_french(value) for key, value in node.items()}
        if "en" in node:
            english = node["en"]
            copied["fr"] = [f"{t} (fr)" for t in english] if isinstance(english, list) else english
        return copied
    if isinstance(node, list):
        return [with_french(item) for item in node]
    return node


def test_a_complete_base_in_three_languages_loads(tmp_path: Path) -> None:
    kb = load_knowledge(write_kb(tmp_path, with_french(minimal_kb())), THREE)
    entry = kb.entries["server_error"]
    assert dict(entry.title) == {"ja": "サーバーエラー", "en": "Server error", "fr": "Server error"}
    assert entry.patterns["fr"] == ("cannot reach the server (fr)",)
    assert "cannot reach the server (fr)" in entry.all_patterns("fr")
    assert kb.fixes["airplane"].warnings["fr"] == ("Careful (fr)",)


def test_a_missing_french_text_is_reported_with_file_and_line(tmp_path: Path) -> None:
    docs = with_french(minimal_kb())
    del docs["entries"]["entries"][0]["title"]["fr"]
    folder = write_kb(tmp_path, docs)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(folder, THREE)
    lines = (folder / "entries.yaml").read_text(encoding="utf-8").splitlines()
    title_line = lines.index("  title:") + 2  # the mapping starts on the line after its key
    assert [str(p) for p in info.value.problems] == [
        f"{folder / 'entries.yaml'}:{title_line}: entry server_error.title: missing language 'fr'"
    ]


def test_the_real_base_lacks_french_everywhere(tmp_path: Path) -> None:
    """Without the YAML, a new row is refused, not silently filled from another language."""
    with pytest.raises(KnowledgeError, match="missing language 'fr'"):
        load_knowledge(write_kb(tmp_path), THREE)


def test_a_third_locale_file_is_compared_with_the_reference(tmp_path: Path) -> None:
    (tmp_path / "ja.yaml").write_text("a: あ\nreload:\n  more: 'ほか{count}件'\n", "utf-8")
    (tmp_path / "en.yaml").write_text("a: A\nreload:\n  more: '{count} more'\n", "utf-8")
    (tmp_path / "fr.yaml").write_text("a: A\nreload:\n  more: '{count} de plus'\n", "utf-8")
    locales = load_locales(tmp_path, THREE)
    assert locales.t("fr", "reload.more", count=3) == "3 de plus"
    (tmp_path / "fr.yaml").write_text("a: A\n", encoding="utf-8")
    with pytest.raises(KnowledgeError) as info:
        load_locales(tmp_path, THREE)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'fr.yaml'}:1: missing key 'reload.more' (present in ja.yaml)"
    ]


@pytest.mark.parametrize(
    ("chosen", "code", "expected"),
    [
        (None, "fr-CA", "fr"),
        (None, "ja_JP.UTF-8", "ja"),
        (None, "de", "en"),
        ("fr", "ja", "fr"),
        ("xx", "ja", "ja"),
    ],
)
def test_pick_names_a_row_or_the_default(chosen: str | None, code: str, expected: str) -> None:
    assert THREE.pick(chosen, code) == expected


def test_rows_of_the_real_table() -> None:
    assert LANGUAGES.codes == ("ja", "en")
    assert [row.feed_locale for row in LANGUAGES] == ["ja_JP", "en_US"]
    assert [row.name for row in LANGUAGES] == ["日本語", "English"]
    moment = dtm.datetime(2026, 1, 1, 8, 0, tzinfo=dtm.UTC)
    assert moment.astimezone(LANGUAGES["ja"].time_zone).hour == 17
    assert LANGUAGES["xx"] is LANGUAGES["en"]


@pytest.mark.parametrize(
    "rows",
    [(), (FRENCH, FRENCH)],
)
def test_a_table_needs_unique_codes_and_its_default(rows: tuple[Language, ...]) -> None:
    with pytest.raises(ValueError, match="languages table"):
        Languages(rows=rows, default="fr")
