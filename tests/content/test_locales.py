"""Locales: same keys everywhere, parameters escaped, language choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.locales import Html, load_locales, pick_lang
from bot.errors import KnowledgeError
from tests.support.paths import LOCALES


def test_real_locales_have_the_same_keys_and_placeholders() -> None:
    locales = load_locales(LOCALES)
    assert locales.strings["ja"].keys() == locales.strings["en"].keys()
    assert "buttons.solved" in locales.strings["en"]
    assert "解決した" in locales.t("ja", "buttons.solved")
    assert "次の方法" in locales.t("ja", "buttons.next")
    assert "Solved" in locales.t("en", "buttons.solved")
    assert "Next fix" in locales.t("en", "buttons.next")


def test_parameters_are_escaped_but_html_is_kept() -> None:
    locales = load_locales(LOCALES)
    out = locales.t("en", "did_you_mean", query="<b>&hi</b>")
    assert "&lt;b&gt;&amp;hi&lt;/b&gt;" in out
    kept = locales.t("en", "did_you_mean", query=Html("<i>x</i>"))
    assert "<i>x</i>" in kept


def _write(folder: Path, ja: str, en: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ja.yaml").write_text(ja, encoding="utf-8")
    (folder / "en.yaml").write_text(en, encoding="utf-8")
    return folder


def test_different_keys_are_reported_with_file(tmp_path: Path) -> None:
    folder = _write(tmp_path, "a: あ\nb:\n  c: し\n", "a: A\nextra: E\n")
    with pytest.raises(KnowledgeError) as info:
        load_locales(folder)
    text = str(info.value)
    assert "en.yaml" in text
    assert "missing key 'b.c'" in text
    assert "key 'extra' is not in ja.yaml" in text


def test_different_placeholders_are_reported(tmp_path: Path) -> None:
    folder = _write(tmp_path, "a: '{name}さん'\n", "a: 'Hi {nme}'\n")
    with pytest.raises(KnowledgeError, match="placeholders differ"):
        load_locales(folder)


def test_yaml_error_in_a_locale(tmp_path: Path) -> None:
    folder = _write(tmp_path, "a: [\n", "a: A\n")
    with pytest.raises(KnowledgeError, match=r"ja\.yaml:\d+: YAML syntax"):
        load_locales(folder)


@pytest.mark.parametrize(
    ("chosen", "code", "expected"),
    [
        (None, "ja", "ja"),
        (None, "ja-JP", "ja"),
        (None, "en-US", "en"),
        (None, None, "en"),
        (None, "de", "en"),
        ("en", "ja", "en"),
        ("ja", "en", "ja"),
    ],
)
def test_pick_lang(chosen: str | None, code: str | None, expected: str) -> None:
    assert pick_lang(chosen, code) == expected
