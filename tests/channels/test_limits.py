"""Message limits: one UTF-16 length, cutting a text and splitting long texts into messages."""

from __future__ import annotations

from bot.channels.limits import cut, split_blocks
from bot.content.text import utf16_len


def test_utf16_len_counts_what_telegram_counts() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("日本") == 2
    assert utf16_len("😀") == 2  # outside the BMP: a surrogate pair


def test_cut_keeps_whole_characters_within_the_units() -> None:
    assert cut("hello", 10) == "hello"
    assert cut("hello", 3) == "hel"
    assert cut("a😀b", 2) == "a"  # the emoji would need units 2 and 3
    assert cut("a😀b", 3) == "a😀"


def test_split_blocks_respects_the_limit_and_keeps_lines_whole() -> None:
    blocks = [
        f"<b>block {i}</b>\n" + "\n".join(f"line {i}.{j}" for j in range(30)) for i in range(40)
    ]
    parts = split_blocks(blocks, limit=500)
    assert len(parts) > 1
    assert all(len(p) <= 500 for p in parts)
    assert "\n\n".join(parts).replace("\n\n", "\n") == "\n".join(blocks).replace("\n\n", "\n")
    # a single block longer than the limit is cut between its lines
    long_block = "\n".join(f"<i>row {j}</i>" for j in range(200))
    pieces = split_blocks([long_block], limit=300)
    assert all(len(p) <= 300 and p.count("<i>") == p.count("</i>") for p in pieces)
