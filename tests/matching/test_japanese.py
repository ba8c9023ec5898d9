"""Tests of the Japanese reader: Japanese runs become the hiragana readings of their words."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.content.text import to_hiragana
from bot.matching.japanese import JapaneseReader, default_reader, release_pages
from tests.support.resident import SMAPS, resident_mb


@pytest.fixture(scope="module")
def reader() -> JapaneseReader:
    return default_reader()


# (text, its reading): kanji read, kana kept, everything else untouched.
READINGS = [
    ("検証に失敗しました", "けんしょうにしっぱいしました"),
    ("けんしょうにしっぱいしました", "けんしょうにしっぱいしました"),
    ("接続できない", "せつぞくできない"),
    ("サーバー", "さーばー"),
    ("つながんない", "つながらない"),
    ("アイクラウドにつながらへん", "あいくらうどにつながらない"),
    ("変なエラー", "へんなえらー"),
    ("iPhone 15で写真が同期されない", "iPhone 15でしゃしんがどうきされない"),
    ("verification failed", "verification failed"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "reading"), READINGS)
def test_reading(reader: JapaneseReader, text: str, reading: str) -> None:
    assert reader.reading(text) == reading


def test_an_unknown_word_keeps_its_spelling(reader: JapaneseReader) -> None:
    # Not in the dictionary: its surface is all that can be said of it.
    assert reader.reading("ぴよぴよ") == "ぴよぴよ"


def test_to_hiragana_leaves_the_rest() -> None:
    assert to_hiragana("アイクラウド ー iCloud 検証") == "あいくらうど ー iCloud 検証"


def test_one_reader_per_process() -> None:
    assert default_reader() is default_reader()


def test_threads_share_the_reader_safely(reader: JapaneseReader) -> None:
    # Distinct texts, so that the analyser (not the cache) runs concurrently.
    texts = [f"写真{i}枚が同期されないので困っています" for i in range(400)]
    fresh = JapaneseReader()
    expected = [fresh.reading(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(reader.reading, texts)) == expected


@pytest.mark.skipif(not SMAPS.exists(), reason="Linux only")
def test_the_pages_read_at_opening_are_let_go() -> None:
    fresh = JapaneseReader()  # opening reads the dictionary's last 72 MB through
    assert resident_mb("sudachidict_") < 40  # every reader's mapping, less what opening read
    assert fresh.reading("検証に失敗しました") == "けんしょうにしっぱいしました"
    assert release_pages("sudachidict_") > 100 * 2**20  # read-only mappings of the file
    assert release_pages("no such file") == 0
    assert fresh.reading("接続できない") == "せつぞくできない"  # pages come back when read


@pytest.mark.skipif(not SMAPS.exists(), reason="Linux only")
def test_the_pages_are_let_go_again_every_so_many_runs() -> None:
    reader = JapaneseReader(release_every=60)
    # 60 distinct runs (a different kanji in each), each analysed once.
    runs = [f"検証に失敗しました{chr(0x4E00 + 500 + n)}同期もできない" for n in range(60)]
    for run in runs[:59]:
        reader.reading(run)
    read = resident_mb("sudachidict_")
    assert reader.reading("はい") == "はい"  # the 60th: the pages are let go, then it is read
    assert resident_mb("sudachidict_") < read / 2
