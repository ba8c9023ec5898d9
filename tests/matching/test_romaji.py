"""Tests of romaji detection and conversion (Japanese typed in Latin letters)."""

from __future__ import annotations

import pytest

from bot.matching.romaji import RomajiReader, is_romaji_word

NAMES = ["icloud", "wifi", "mac", "iphone", "apple id", "sign in"]


@pytest.fixture(scope="module")
def reader() -> RomajiReader:
    return RomajiReader(english=["to", "no", "same", "time", "one", "more"], names=NAMES)


@pytest.mark.parametrize(
    "word", ["tsunagaranai", "setsuzoku", "dekimasen", "kenshou", "shippai", "tte", "n", "jyu"]
)
def test_romaji_words(word: str) -> None:
    assert is_romaji_word(word)


@pytest.mark.parametrize("word", ["icloud", "connect", "sync", "my", "apple", "id", "printer"])
def test_english_words_break_the_syllable_rules(word: str) -> None:
    assert not is_romaji_word(word)


@pytest.mark.parametrize(
    ("text", "kana"),
    [
        ("icloud ni tsunagaranai", "icloud に つながらない"),
        ("tsunagaranai desu", "つながらない です"),
        ("setsuzoku dekinai", "せつぞく できない"),
        ("wifi dato tsunagaranai", "wifi だと つながらない"),
        ("saabaa no eraa", "さーばー の えらー"),
        ("minna tsunagaranai", "みんな つながらない"),
        ("apple id ni sign in dekinai", "apple id に sign in できない"),
        # no particle, but words or endings no English sentence has
        ("junban oshiete", "じゅんばん おしえて"),
        ("naoshitemo mata eraa deru", "なおしても また えらー でる"),
        ("wifi dake icloud eraa", "wifi だけ icloud えらー"),
    ],
)
def test_romaji_messages_become_kana(reader: RomajiReader, text: str, kana: str) -> None:
    assert reader.to_kana(text) == kana


@pytest.mark.parametrize(
    "text",
    [
        "cannot connect to icloud on my mac",
        "machine",  # ma-chi-ne, but no Japanese grammar
        "same time no sync",
        "one more time",
        "on my ipad",
        "icloud wifi",
        "",
        "15 16",
        "the era of icloud",
    ],
)
def test_english_messages_stay(reader: RomajiReader, text: str) -> None:
    assert not reader.looks_romaji(text)
    assert reader.to_kana(text) == text


def test_words_learnt_as_english_stop_counting_as_romaji(reader: RomajiReader) -> None:
    assert reader.looks_romaji("sore ga dame")
    assert not reader.with_english(["sore", "dame"]).looks_romaji("sore ga dame")
