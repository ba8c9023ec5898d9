"""knowledge/status.yaml: which of Apple's services matter for which entry; problems located."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import build_engine
from bot.content.status_map import load_service_map
from bot.conversation.events import Context
from bot.errors import KnowledgeError
from tests.support.paths import ROOT

EN = Context(now=1000.0, language_code="en")
JA = Context(now=1000.0, language_code="ja")
MAIL_EN = "iCloud Mail is not working"
OUTAGE_START_UTC = "2026-01-01 08:00 UTC"  # epochStartDate 1767254400000 in the samples
OUTAGE_START_JST = "2026/01/01 17:00"


# --------------------------------------------------------------------------- the service map


def test_service_map_of_the_knowledge_base() -> None:
    entries = build_engine(ROOT / "knowledge", ROOT / "locales").knowledge.entries
    services = load_service_map(ROOT / "knowledge" / "status.yaml", entries.keys())
    assert services.names_for("mail_not_working") == ("iCloud Mail", "iCloudメール")
    store = services.names_for("store_unavailable")
    assert "App Store" in store and "iTunes Store" in store and "iCloud Mail" not in store
    default = services.names_for("apple_id_server_error")
    for name in ("iCloud Account & Sign In", "Apple Account", "Apple ID", "iCloud Drive", "Photos"):
        assert name in default
    assert "iCloud Mail" not in default and "App Store" not in default


def test_service_map_problems_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "status.yaml"
    path.write_text(
        "services:\n"
        "  mail: [iCloud Mail]\n"
        "  Bad-Id: [x]\n"
        "  empty: []\n"
        "default: [mail, nowhere]\n"
        "entries:\n"
        "  no_such_entry: [mail]\n"
        "colour: blue\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as caught:
        load_service_map(path, {"mail_not_working"})
    text = str(caught.value)
    for needle in (
        "'Bad-Id' must be a lower_snake_case id",
        "services.empty: expected a list of names",
        "default: unknown service 'nowhere'",
        "'no_such_entry' is not an entry",
        "unknown key 'colour'",
    ):
        assert needle in text
    assert all(p.file == str(path) and p.line > 0 for p in caught.value.problems)


def test_check_reports_a_broken_status_yaml(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for source in (ROOT / "knowledge").glob("*.yaml"):
        (knowledge / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (knowledge / "status.yaml").write_text("services: {}\ndefault: []\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"status\.yaml"):
        build_engine(knowledge, ROOT / "locales")
