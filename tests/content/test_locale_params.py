"""PARAMS says what the bot passes to each locale string; check it against every call in bot/."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from bot.content.locale_params import PARAMS
from bot.content.locales import load_locales
from tests.support.paths import LOCALES, ROOT

KEYS = frozenset(load_locales(LOCALES).strings["en"])
RENDERERS = frozenset({"t", "_say"})  # Locales.t, and the engine's helper that calls it


def literal_calls(source: str, where: str) -> Iterator[tuple[str, str, frozenset[str]]]:
    """Yield (file:line, key, keyword names) for each renderer call naming a key literally.

    Calls that also spread `**params` are skipped: what they pass is known only at run time.
    """
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg is None for k in node.keywords):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in RENDERERS:
            continue
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value in KEYS:
                passed = frozenset(k.arg for k in node.keywords if k.arg is not None)
                yield f"{where}:{node.lineno}", arg.value, passed


def lacking(source: str, where: str) -> list[str]:
    return [
        f"{at}: {key} lacks {sorted(PARAMS.get(key, frozenset()) - passed)}"
        for at, key, passed in literal_calls(source, where)
        if PARAMS.get(key, frozenset()) - passed
    ]


def test_every_call_passes_at_least_the_declared_parameters() -> None:
    sources = {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "bot").rglob("*.py"))
    }
    calls = [c for where, source in sources.items() for c in literal_calls(source, where)]
    assert len(calls) > 50  # the scan does see the bot's calls
    assert [p for where, source in sources.items() for p in lacking(source, where)] == []


def test_the_scan_reports_a_call_that_passes_too_little() -> None:
    source = (
        'locales.t(lang, "did_you_mean")\n'
        'locales.t(lang, "did_you_mean", query=q)\n'
        'self._say(state, ctx, "walk.progress", position=1, total=2)\n'
    )
    assert lacking(source, "x.py") == [
        "x.py:1: did_you_mean lacks ['query']",
        "x.py:3: walk.progress lacks ['device', 'stage']",
    ]


def test_every_declared_key_exists() -> None:
    assert sorted(PARAMS.keys() - KEYS) == []
