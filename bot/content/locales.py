"""Load locales/<lang>.yaml and render the bot's own strings, HTML-escaping every parameter."""

from __future__ import annotations

import html
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.content.languages import LANGUAGES, Languages
from bot.content.locale_params import PARAMS
from bot.content.markup import html_problems
from bot.content.reader import Problems, key_line


class Html(str):
    """A string that is already valid Telegram HTML: inserted into a template as it is."""

    __slots__ = ()


def escape(text: str) -> Html:
    """Escape user or knowledge text for Telegram's HTML parse mode."""
    return Html(html.escape(text, quote=False))


def pick_lang(chosen: str | None, language_code: str | None) -> str:
    """Return the user's language: their /lang choice, else Telegram's, else the default."""
    return LANGUAGES.pick(chosen, language_code)


@dataclass(frozen=True, slots=True)
class Locales:
    """Every user-facing string the bot says about itself, per language."""

    strings: Mapping[str, Mapping[str, str]]

    def t(self, lang: str, key: str, **params: Any) -> Html:
        """Render one string; parameters are escaped unless they are Html already."""
        template = self.strings[lang if lang in self.strings else LANGUAGES.default][key]
        if not params:
            return Html(template)
        safe = {k: v if isinstance(v, Html) else escape(str(v)) for k, v in params.items()}
        return Html(template.format_map(safe))


def _flatten(data: Any, prefix: str, out: dict[str, tuple[str, int]], line: int) -> list[str]:
    """Flatten nested mappings to dotted keys, remembering each key's line; return bad keys."""
    bad: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            full = f"{prefix}.{key}" if prefix else str(key)
            bad += _flatten(value, full, out, key_line(data, str(key), line))
    elif isinstance(data, str):
        out[prefix] = (data.strip("\n") if "\n" in data.rstrip("\n") else data.strip(), line)
    else:
        out[prefix] = ("", line)
        bad.append(prefix)
    return bad


def _placeholders(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError:
        return {"<malformed>"}


def rendering_problems(key: str, template: str, params: frozenset[str]) -> list[str]:
    """Return why a locale string would fail when rendered with these parameters.

    Each placeholder must be a parameter the bot passes for the key (bot.content.locale_params),
    plain `{name}` without conversion or format; the text, its placeholders filled, must be
    HTML that Telegram parses.
    """
    try:
        fields = [f for f in string.Formatter().parse(template) if f[1] is not None]
    except ValueError as exc:
        return [f"key {key!r}: malformed placeholder ({exc}); write {{{{ and }}}} for braces"]
    problems: list[str] = []
    for _, name, spec, conversion in fields:
        if not name or not name.isidentifier():
            problems.append(f"key {key!r}: placeholder {{{name}}} must be a name")
        elif name not in params:
            given = ", ".join(sorted(params)) or "none"
            problems.append(
                f"key {key!r}: placeholder {{{name}}} is not a parameter of this text"
                f" (it gets: {given})"
            )
        elif spec or conversion:
            problems.append(f"key {key!r}: placeholder {{{name}}} must be plain, without ! or :")
    if problems:
        return problems
    rendered = template.format_map(dict.fromkeys(params, "x")) if params else template
    return [f"key {key!r}: {problem}" for problem in html_problems(rendered)]


def load_locales(directory: Path, languages: Languages = LANGUAGES) -> Locales:
    """Load and cross-check every locale file; raise KnowledgeError naming file, line and key.

    Besides the same keys in every language, each string must render: its placeholders are
    parameters the bot passes (PARAMS) and its HTML is what Telegram accepts.
    """
    problems = Problems()
    flat: dict[str, dict[str, tuple[str, int]]] = {}
    for code in languages.codes:
        path = directory / f"{code}.yaml"
        doc = problems.load_mapping(path)
        if doc is None:
            continue
        strings: dict[str, tuple[str, int]] = {}
        bad = set(_flatten(doc, "", strings, 1))
        for key, (template, line) in strings.items():
            if key in bad:
                problems.add(path, line, f"key {key!r}: expected a text")
                continue
            for problem in rendering_problems(key, template, PARAMS.get(key, frozenset())):
                problems.add(path, line, problem)
        flat[code] = strings
    if len(flat) == len(languages):
        _compare(directory, languages, flat, problems)
    problems.raise_if_any()
    return Locales(
        {lang: {k: v for k, (v, _) in strings.items()} for lang, strings in flat.items()}
    )


def _compare(
    directory: Path,
    languages: Languages,
    flat: Mapping[str, Mapping[str, tuple[str, int]]],
    problems: Problems,
) -> None:
    """Report keys and placeholders of each language that differ from the reference's."""
    reference_lang = languages.reference.code
    reference = flat[reference_lang]
    for lang in languages.codes[1:]:
        other = flat[lang]
        file = directory / f"{lang}.yaml"
        for key in sorted(reference.keys() - other.keys()):
            problems.add(file, 1, f"missing key {key!r} (present in {reference_lang}.yaml)")
        for key in sorted(other.keys() - reference.keys()):
            problems.add(file, other[key][1], f"key {key!r} is not in {reference_lang}.yaml")
        for key in sorted(reference.keys() & other.keys()):
            if _placeholders(reference[key][0]) != _placeholders(other[key][0]):
                problems.add(
                    file,
                    other[key][1],
                    f"key {key!r}: placeholders differ from {reference_lang}.yaml",
                )
