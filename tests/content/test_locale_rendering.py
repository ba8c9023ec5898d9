"""`bot check` and reload refuse locale strings that would fail when the bot renders them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.content.locales import load_locales, rendering_problems
from bot.content.markup import html_problems
from bot.conversation.engine import Engine
from bot.errors import KnowledgeError
from bot.live import LiveEngine
from tests.support.fakebotapi import EntityParseError, parse_html
from tests.support.paths import LOCALES, ROOT

TYPO_JA = "did_you_mean: 「{qeury}」のことですか？"
TYPO_EN = "did_you_mean: Did you mean “{qeury}”?"


def copy_locales(tmp_path: Path) -> Path:
    folder = tmp_path / "locales"
    shutil.copytree(LOCALES, folder)
    return folder


def replace_line(path: Path, key: str, new: str) -> int:
    """Replace the one-line top-level `key:` of a locale file; return its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1  # a block text's own lines
    lines[start:end] = [new]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return start + 1


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        load_locales(folder)
    return [str(p) for p in info.value.problems]


def test_the_same_placeholder_typo_in_every_language_is_caught(tmp_path: Path) -> None:
    folder = copy_locales(tmp_path)
    ja_line = replace_line(folder / "ja.yaml", "did_you_mean", TYPO_JA)
    en_line = replace_line(folder / "en.yaml", "did_you_mean", TYPO_EN)
    reason = "key 'did_you_mean': placeholder {qeury} is not a parameter of this text"
    assert problems_of(folder) == [
        f"{folder / 'ja.yaml'}:{ja_line}: {reason} (it gets: query)",
        f"{folder / 'en.yaml'}:{en_line}: {reason} (it gets: query)",
    ]


def test_an_unclosed_tag_names_file_line_and_key(tmp_path: Path) -> None:
    folder = copy_locales(tmp_path)
    line = replace_line(folder / "en.yaml", "stale_button", 'stale_button: "<b>Out of date"')
    assert problems_of(folder) == [
        f"{folder / 'en.yaml'}:{line}: key 'stale_button': <b> is never closed"
    ]


def test_a_nested_key_is_located_on_its_own_line(tmp_path: Path) -> None:
    folder = copy_locales(tmp_path)
    path = folder / "ja.yaml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    line = next(i for i, ln in enumerate(lines) if ln.strip().startswith("solved:") and i > 60) + 1
    lines[line - 1] = lines[line - 1].split(":")[0] + ': "✅ <i>解決</b>"'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    [problem] = problems_of(folder)
    assert problem.startswith(f"{path}:{line}: key 'buttons.solved': </b> closes <i>")


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        ("Hi {name}", frozenset({"name"}), []),
        ("Hi {name}", frozenset(), ["placeholder {name} is not a parameter of this text"]),
        ("Hi {0}", frozenset({"name"}), ["placeholder {0} must be a name"]),
        ("Hi {}", frozenset({"name"}), ["placeholder {} must be a name"]),
        ("Hi {name!r}", frozenset({"name"}), ["must be plain"]),
        ("Hi {name:>5}", frozenset({"name"}), ["must be plain"]),
        ("Hi {name", frozenset({"name"}), ["malformed placeholder"]),
        ("Hi } there", frozenset({"name"}), ["malformed placeholder"]),
        ("{{literal}} <b>{name}</b>", frozenset({"name"}), []),
        ('<a href="{url}">{name}</a>', frozenset({"url", "name"}), []),
        ("<b>{name}", frozenset({"name"}), ["<b> is never closed"]),
    ],
)
def test_rendering_problems(template: str, params: frozenset[str], expected: list[str]) -> None:
    found = rendering_problems("k", template, params)
    assert len(found) == len(expected)
    for problem, part in zip(found, expected, strict=True):
        assert problem.startswith("key 'k': ") and part in problem


# Accepted and refused alike by our check and by the fake Bot API's parser, which follows
# Telegram's (tests/support/fakebotapi.py; bare "&" refused, as our texts must escape it).
AGREED = [
    ("<b>bold</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <ins>n</ins>", True),
    ("<s>s</s> <strike>k</strike> <del>d</del> <tg-spoiler>p</tg-spoiler>", True),
    ('<span class="tg-spoiler">p</span> <a href="https://apple.com/">a</a>', True),
    ('<code>c</code> <pre><code class="language-python">x</code></pre>', True),
    ("<blockquote>q</blockquote> <blockquote expandable>q</blockquote>", True),
    ("&lt;tag&gt; &amp; &quot; &#128512; &#x1F600;", True),
    ("<b><i>nested</i></b>", True),
    ("<B>upper</B>", True),
    ("<b>open", False),
    ("close</b>", False),
    ("<b><i>crossed</b></i>", False),
    ("<div>block</div>", False),
    ("<br>", False),
    ("a < b", False),
    ("fish & chips", False),
    ("&nbsp;", False),
    ("&#0;", False),
    ("<span>no class</span>", False),
    ('<span class="other">x</span>', False),
]


@pytest.mark.parametrize(("html", "accepted"), AGREED)
def test_the_check_agrees_with_telegrams_parser(html: str, accepted: bool) -> None:
    try:
        parse_html(html, reject_bare_ampersand=True)
        telegram_accepts = True
    except EntityParseError:
        telegram_accepts = False
    assert telegram_accepts is accepted
    assert (html_problems(html) == []) is accepted


def test_the_check_is_stricter_on_attributes_telegram_ignores() -> None:
    assert html_problems('<b class="x">b</b>') == ["<b>: attribute 'class' not allowed"]
    assert html_problems("<a>no link</a>") == ["<a> needs an href"]
    assert html_problems("> alone") == ["'>' at character 0 outside a tag: write &gt;"]


async def test_reload_refuses_a_locale_that_would_not_render(tmp_path: Path) -> None:
    from bot.app import build_engine

    folder = copy_locales(tmp_path)

    def build() -> Engine:
        return build_engine(ROOT / "knowledge", folder)

    first = build()
    live = LiveEngine(first, build)
    replace_line(folder / "en.yaml", "did_you_mean", TYPO_EN)
    replace_line(folder / "ja.yaml", "did_you_mean", TYPO_JA)
    with pytest.raises(KnowledgeError, match=r"en\.yaml:\d+: key 'did_you_mean'"):
        await live.reload()
    assert live.engine is first


def test_bot_check_prints_each_problem_with_file_and_line(tmp_path: Path) -> None:
    folder = copy_locales(tmp_path)
    line = replace_line(folder / "en.yaml", "stale_button", 'stale_button: "Out & about"')
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--locales", str(folder), "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{folder / 'en.yaml'}:{line}: key 'stale_button': bare or unknown '&' at character 4:"
        " write &amp;",
        "1 problem(s) found",
    ]
