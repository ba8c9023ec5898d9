"""Generated knowledge bases of any size, shaped like the real one, for scaling benchmarks.

Each generated entry copies a real entry's shape (as many patterns per language, the same
lengths, the same path) and rewrites its texts word by word with words drawn from the real
patterns: English words for English words, kanji runs for kanji runs, katakana for katakana,
Latin words for Latin words; hiragana (particles, verb endings) stay, so the Japanese still reads
like Japanese. The real entries stay in, first, so real queries still have their right answer.
"""

from __future__ import annotations

import random
import re
import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from bot.content.knowledge import Device, Entry, Knowledge, Localized, LocalizedList
from bot.content.languages import LANGUAGES

# Script runs of a Japanese text; a run of one class is swapped for another of the same class.
_RUN = re.compile(
    r"(?P<latin>[A-Za-z0-9][A-Za-z0-9']*)"
    r"|(?P<kanji>[\u3400-\u9fff\uf900-\ufaff々]+)"
    r"|(?P<katakana>[\u30a0-\u30ffー]+)"
    r"|(?P<other>.)",
    re.S,
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9']*")
# How much of a text is rewritten: enough that generated entries are distinct from the real
# ones and from each other, little enough that they keep the real texts' look.
SWAP = 0.6


class Vocabulary:
    """The words of the real patterns, by language and script class."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.words: dict[str, list[str]] = defaultdict(list)
        for entry in knowledge.entries.values():
            for lang in LANGUAGES.codes:
                for text in entry.all_patterns(lang):
                    for kind, token in _tokens(text, lang):
                        if kind != "other":
                            self.words[f"{lang}:{kind}"].append(token)
        self.words = {k: sorted(set(v)) for k, v in self.words.items()}

    def rewrite(self, text: str, lang: str, rng: random.Random) -> str:
        """Return text with about SWAP of its words replaced by real words of the same kind."""
        out: list[str] = []
        for kind, token in _tokens(text, lang):
            pool = self.words.get(f"{lang}:{kind}")
            if kind != "other" and pool and rng.random() < SWAP:
                out.append(rng.choice(pool))
            else:
                out.append(token)
        return "".join(out)


def _tokens(text: str, lang: str) -> list[tuple[str, str]]:
    if lang == "en":
        tokens: list[tuple[str, str]] = []
        last = 0
        for m in _WORD.finditer(text):
            tokens += [("other", text[last : m.start()]), ("word", m.group())]
            last = m.end()
        tokens.append(("other", text[last:]))
        return [t for t in tokens if t[1]]
    return [(m.lastgroup or "other", m.group()) for m in _RUN.finditer(text)]


def _localized(value: Localized | None, vocab: Vocabulary, rng: random.Random) -> Localized | None:
    if value is None:
        return None
    return Localized(**{lang: vocab.rewrite(value[lang], lang, rng) for lang in LANGUAGES.codes})


def generate_entries(knowledge: Knowledge, count: int, seed: int = 4) -> dict[str, Entry]:
    """Return the real entries followed by generated ones, `count` entries in all."""
    rng = random.Random(seed)
    vocab = Vocabulary(knowledge)
    real = list(knowledge.entries.values())
    entries = {e.id: e for e in real[:count]}
    for number in range(count - len(entries)):
        template = real[number % len(real)]
        patterns = {
            lang: tuple(vocab.rewrite(p, lang, rng) for p in template.patterns[lang])
            for lang in LANGUAGES.codes
        }
        entry = replace(
            template,
            id=f"gen_{number:05d}_{template.id}"[:60],
            title=_localized(template.title, vocab, rng) or template.title,
            message=_localized(template.message, vocab, rng),
            patterns=LocalizedList(**patterns),
        )
        entries[entry.id] = entry
    return entries


def generated_knowledge(knowledge: Knowledge, count: int, seed: int = 4) -> Knowledge:
    """Return the knowledge base with `count` entries (the real ones first)."""
    return replace(knowledge, entries=generate_entries(knowledge, count, seed))


def write_knowledge_dir(source: Path, target: Path, knowledge: Knowledge, count: int) -> Path:
    """Copy the knowledge folder to target with `count` entries in entries.yaml."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.yaml"):
        if path.name != "entries.yaml":
            shutil.copyfile(path, target / path.name)
    docs = yaml.safe_load((source / "entries.yaml").read_text(encoding="utf-8"))
    raw: list[dict[str, Any]] = docs["entries"]
    by_id = {item["id"]: item for item in raw}
    out: list[dict[str, Any]] = []
    for entry in generate_entries(knowledge, count).values():
        if entry.id in by_id:
            out.append(by_id[entry.id])
            continue
        item: dict[str, Any] = {"id": entry.id, "kind": entry.kind.value}
        # Every text the entry has, in every language, so that the copy validates like it.
        texts = {
            "title": entry.title,
            "message": entry.message,
            "summary": entry.summary,
            "answer": entry.answer,
            "other_device": entry.other_device,
            "order_note": entry.order_note,
        }
        item.update({key: dict(text) for key, text in texts.items() if text is not None})
        item["patterns"] = {lang: list(items) for lang, items in entry.patterns.items()}
        if entry.devices != frozenset(Device):
            item["devices"] = sorted(device.value for device in entry.devices)
        item["path"] = list(entry.path)
        # A copy keeps what makes its model's path valid (a path out of stage order, a device
        # left out).
        for key, text in (("order_note", entry.order_note), ("other_device", entry.other_device)):
            if text is not None:
                item[key] = {"ja": text.ja, "en": text.en}
        if entry.other_device is not None:
            item["devices"] = sorted(d.value for d in entry.devices)
        out.append(item)
    (target / "entries.yaml").write_text(
        yaml.safe_dump({"entries": out}, allow_unicode=True, sort_keys=False, width=1000),
        encoding="utf-8",
    )
    return target
