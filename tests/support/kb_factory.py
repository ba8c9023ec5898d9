"""A small, valid knowledge base written to a folder, for tests that need to break it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def t(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def tl(ja: list[str], en: list[str]) -> dict[str, list[str]]:
    return {"ja": ja, "en": en}


def minimal_kb() -> dict[str, Any]:
    """Return the three documents of a tiny but complete knowledge base."""
    stages = [{"id": s, "title": t(s, s)} for s in ("basic", "easy", "last_resort")]
    section = {"ja": ["手順"], "en": ["Step"]}
    fixes = [
        {
            "id": "check_status",
            "stage": "basic",
            "title": t("状況", "Status"),
            "steps": {"iphone": [section], "mac": [section], "windows": [section]},
            "link": {
                "label": t("状況", "Status"),
                "url": t("https://example.com/ja", "https://example.com/en"),
            },
        },
        {
            "id": "airplane",
            "stage": "easy",
            "title": t("機内", "Airplane"),
            "steps": {"iphone": [section]},
            "warnings": tl(["注意"], ["Careful"]),
        },
        {
            "id": "firewall",
            "stage": "easy",
            "title": t("FW", "Firewall"),
            "steps": {"windows": [{"heading": t("見出し", "Heading"), **section}]},
        },
        {
            "id": "contact",
            "stage": "last_resort",
            "title": t("連絡", "Contact"),
            "steps": {"iphone": [section], "mac": [section], "windows": [section]},
        },
    ]
    entries = [
        {
            "id": "server_error",
            "kind": "error",
            "title": t("サーバーエラー", "Server error"),
            "message": t("サーバーへの接続に失敗しました", "Connection to server failed"),
            "summary": t("説明", "Summary"),
            "patterns": tl(["サーバーに接続できない"], ["cannot reach the server"]),
            "path": ["check_status", "airplane", "firewall", "contact"],
        },
        {
            "id": "faq_thing",
            "kind": "faq",
            "title": t("質問", "Question"),
            "answer": t("答え", "Answer"),
            "patterns": tl(["質問です"], ["a question"]),
            "path": ["check_status", "contact"],
        },
    ]
    info = {
        "links": {
            "system_status": t("https://s/ja", "https://s/en"),
            "contact_support": t("https://c/ja", "https://c/en"),
        },
        "topics": [
            {
                "id": "prevention",
                "title": t("予防", "Prevention"),
                "items": tl(["更新"], ["Update"]),
            }
        ],
    }
    return {
        "fixes": {"stages": stages, "fixes": fixes},
        "entries": {"entries": entries},
        "info": info,
    }


def write_kb(folder: Path, docs: dict[str, Any] | None = None) -> Path:
    """Write a knowledge base (default: the minimal one) as YAML files into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in (docs or minimal_kb()).items():
        (folder / f"{name}.yaml").write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return folder
