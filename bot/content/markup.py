"""Check text against Telegram's HTML parse mode before it is ever sent.

Telegram refuses a whole message whose HTML it cannot parse ("Can't parse entities"), so a
locale string with an unclosed <b> would break every reply that uses it. The rules are those
of the Bot API's HTML style: the tags below, properly nested and closed, the attributes each
allows, and character references &lt; &gt; &amp; &quot; or numeric ones. A bare `&` is
refused too: Telegram would keep it, but it is always a mistake in our texts (locales say
"escape & as &amp;").
"""

from __future__ import annotations

import re

# Tag -> the attributes it may carry (with a fixed value when the value matters).
_TAGS: dict[str, frozenset[str]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "tg-spoiler": frozenset(),
    "span": frozenset({"class"}),
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
}
_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)((?:\s+[^<>]*?)?)\s*(/?)>")
_ATTRIBUTE = re.compile(
    r"""\s*([A-Za-z][\w-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")


def html_problems(text: str) -> list[str]:
    """Return why Telegram would refuse this HTML (empty when it parses)."""
    problems: list[str] = []
    open_tags: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            entity = _ENTITY.match(text, i)
            if entity is None or not _valid_reference(entity.group()):
                problems.append(f"bare or unknown '&' at character {i}: write &amp;")
                i += 1
                continue
            i = entity.end()
        elif char == "<":
            tag = _TAG.match(text, i)
            if tag is None:
                problems.append(f"'<' at character {i} starts no tag: write &lt;")
                i += 1
                continue
            problems += _tag_problems(tag, open_tags)
            i = tag.end()
        elif char == ">":
            problems.append(f"'>' at character {i} outside a tag: write &gt;")
            i += 1
        else:
            i += 1
    problems += [f"<{name}> is never closed" for name in reversed(open_tags)]
    return problems


def _valid_reference(entity: str) -> bool:
    if not entity.startswith("&#"):
        return True
    digits = entity[2:-1]
    value = int(digits[1:], 16) if digits.startswith("x") else int(digits)
    return 0 < value < 0x110000 and not 0xD800 <= value <= 0xDFFF


def _tag_problems(tag: re.Match[str], open_tags: list[str]) -> list[str]:
    closing, name, attributes, self_closing = tag.groups()
    name = name.lower()
    if name not in _TAGS:
        return [f"<{name}> is not a tag Telegram supports"]
    if self_closing:
        return [f"<{name}/>: Telegram has no self-closing tags"]
    if closing:
        if attributes.strip():
            return [f"</{name}> has attributes"]
        if not open_tags:
            return [f"</{name}> closes nothing"]
        if open_tags[-1] != name:
            return [f"</{name}> closes <{open_tags.pop()}>: tags must nest"]
        open_tags.pop()
        return []
    problems = _attribute_problems(name, attributes)
    open_tags.append(name)
    return problems


def _attribute_problems(name: str, attributes: str) -> list[str]:
    found: dict[str, str | None] = {}
    position = 0
    while attributes[position:].strip():
        attribute = _ATTRIBUTE.match(attributes, position)
        if attribute is None or attribute.end() == position:
            return [f"<{name}>: malformed attributes {attributes.strip()!r}"]
        key, *values = attribute.groups()
        value = next((v for v in values if v is not None), None)
        found[key.lower()] = value
        position = attribute.end()
    problems = [
        f"<{name}>: attribute {key!r} not allowed" for key in found if key not in _TAGS[name]
    ]
    if name == "a" and not found.get("href"):
        problems.append("<a> needs an href")
    if name == "span" and found.get("class") != "tg-spoiler":
        problems.append('<span> needs class="tg-spoiler"')
    if name == "code" and "class" in found and not (found["class"] or "").startswith("language-"):
        problems.append('<code class> must be "language-…"')
    return problems
