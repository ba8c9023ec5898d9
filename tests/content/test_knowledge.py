"""The loader: a valid base loads; each kind of problem is reported with file, line and cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.knowledge import Device, EntryKind, Localized, load_knowledge
from bot.errors import KnowledgeError
from tests.support.kb_factory import minimal_kb, t, write_kb


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(folder)
    return [str(p) for p in info.value.problems]


def test_minimal_base_loads(tmp_path: Path) -> None:
    kb = load_knowledge(write_kb(tmp_path))
    assert set(kb.entries) == {"server_error", "faq_thing"}
    assert kb.entries["server_error"].kind is EntryKind.ERROR
    assert kb.fixes["airplane"].devices == {Device.IPHONE}
    assert kb.path_for("server_error", Device.MAC) == ("check_status", "contact")
    assert kb.path_for("server_error", "windows") == ("check_status", "firewall", "contact")
    assert kb.fixes["firewall"].steps[Device.WINDOWS][0].heading is not None
    assert kb.links["contact_support"]["en"] == "https://c/en"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    folder = write_kb(tmp_path)
    (folder / "entries.yaml").write_text(
        "entries:\n  - id: x\n    title: [unclosed\n", encoding="utf-8"
    )
    [problem] = problems_of(folder)
    assert problem.startswith(f"{folder / 'entries.yaml'}:")
    assert "YAML syntax" in problem
    line = int(problem.split(":")[1])
    assert line >= 3


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    folder = write_kb(tmp_path)
    text = (folder / "info.yaml").read_text(encoding="utf-8")
    (folder / "info.yaml").write_text(text + "links: {}\n", encoding="utf-8")
    assert any("duplicate key 'links'" in p for p in problems_of(folder))


def test_duplicate_entry_id(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["entries"]["entries"].append(dict(docs["entries"]["entries"][0]))
    found = problems_of(write_kb(tmp_path, docs))
    assert any("entries.yaml:" in p and "duplicate entry id 'server_error'" in p for p in found)


def test_duplicate_fix_id(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["fixes"]["fixes"].append(dict(docs["fixes"]["fixes"][0]))
    assert any(
        "duplicate fix id 'check_status'" in p for p in problems_of(write_kb(tmp_path, docs))
    )


def test_path_names_unknown_fix(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["entries"]["entries"][0]["path"].insert(1, "no_such_fix")
    found = problems_of(write_kb(tmp_path, docs))
    assert any("entry server_error: path names unknown fix 'no_such_fix'" in p for p in found)


def test_path_out_of_stage_order(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["entries"]["entries"][0]["path"] = ["contact", "check_status"]
    assert any("stage order" in p for p in problems_of(write_kb(tmp_path, docs)))


@pytest.mark.parametrize("where", ["entry", "fix", "step"])
def test_missing_language(tmp_path: Path, where: str) -> None:
    docs = minimal_kb()
    if where == "entry":
        del docs["entries"]["entries"][0]["title"]["en"]
        expected = "entry server_error.title: missing language 'en'"
    elif where == "fix":
        del docs["fixes"]["fixes"][1]["title"]["ja"]
        expected = "fix airplane.title: missing language 'ja'"
    else:
        docs["fixes"]["fixes"][1]["steps"]["iphone"] = [{"ja": ["手順"]}]
        expected = "missing language 'en'"
    found = problems_of(write_kb(tmp_path, docs))
    assert any(expected in p for p in found), found


def test_fix_without_steps(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["fixes"]["fixes"][1]["steps"] = {}
    found = problems_of(write_kb(tmp_path, docs))
    assert any("fix airplane: no steps for any device" in p for p in found)


def test_unknown_device_and_unknown_key(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["fixes"]["fixes"][0]["steps"]["android"] = docs["fixes"]["fixes"][0]["steps"]["mac"]
    docs["fixes"]["fixes"][0]["colour"] = "red"
    found = problems_of(write_kb(tmp_path, docs))
    assert any("unknown device 'android'" in p for p in found)
    assert any("unknown key 'colour'" in p for p in found)


def test_problem_lines_point_at_the_item(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["entries"]["entries"][1]["kind"] = "question"
    folder = write_kb(tmp_path, docs)
    [problem] = problems_of(folder)
    line = int(problem.split(":")[1])
    text = (folder / "entries.yaml").read_text(encoding="utf-8").splitlines()
    assert "faq_thing" in text[line - 1] or "faq_thing" in text[line]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["entries"]["entries"][0]["path"].append("ghost")
    del docs["fixes"]["fixes"][0]["title"]["en"]
    del docs["info"]["links"]["contact_support"]
    found = problems_of(write_kb(tmp_path, docs))
    assert len(found) >= 3


def test_missing_file(tmp_path: Path) -> None:
    folder = write_kb(tmp_path)
    (folder / "info.yaml").unlink()
    assert any("info.yaml" in p and "cannot read" in p for p in problems_of(folder))


# ------------------------------------------------------------- devices, order_note, source


def test_new_fields_default_safely(tmp_path: Path) -> None:
    kb = load_knowledge(write_kb(tmp_path))
    entry = kb.entries["server_error"]
    assert entry.devices == frozenset(Device)
    assert entry.other_device is None and entry.order_note is None
    assert all(kb.applies("server_error", d) for d in Device)
    assert kb.fixes["check_status"].steps[Device.MAC][0].source == "article"


def test_entry_devices_and_other_device(tmp_path: Path) -> None:
    docs = minimal_kb()
    entry = docs["entries"]["entries"][0]
    entry["devices"] = ["iphone"]
    entry["other_device"] = t("iPhoneで", "Use the iPhone")
    kb = load_knowledge(write_kb(tmp_path, docs))
    assert kb.entries["server_error"].devices == {Device.IPHONE}
    assert kb.applies("server_error", "iphone") and not kb.applies("server_error", Device.MAC)
    assert kb.entries["server_error"].other_device == Localized(ja="iPhoneで", en="Use the iPhone")
    # path_for does not look at devices: code that doesn't check applies() keeps working
    assert kb.path_for("server_error", Device.MAC) == ("check_status", "contact")


@pytest.mark.parametrize(
    ("devices", "other", "expected"),
    [
        (["iphone"], None, "'devices' leaves out a device, so 'other_device' is needed"),
        (None, True, "'other_device' needs 'devices' that leave out a device"),
        (["android"], True, "entry server_error.devices: unknown device 'android'"),
        (["mac", "mac"], True, "entry server_error.devices: 'mac' named twice"),
        ([], True, "'devices' must be a non-empty list of devices"),
    ],
)
def test_entry_devices_problems(
    tmp_path: Path, devices: list[str] | None, other: bool | None, expected: str
) -> None:
    docs = minimal_kb()
    entry = docs["entries"]["entries"][0]
    if devices is not None:
        entry["devices"] = devices
    if other:
        entry["other_device"] = t("別のデバイス", "Another device")
    folder = write_kb(tmp_path, docs)
    found = problems_of(folder)
    assert any(expected in p for p in found), found
    assert all(p.startswith(f"{folder / 'entries.yaml'}:") for p in found), found


def test_an_entry_may_require_a_topic(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["entries"]["entries"][1]["requires_topic"] = "work_school"
    folder = write_kb(tmp_path, docs)
    kb = load_knowledge(folder, topic_names={"work_school", "sync"})
    assert kb.entries["faq_thing"].requires_topic == "work_school"
    assert kb.entries["server_error"].requires_topic is None
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(folder, topic_names={"sync"})
    assert [p.message for p in info.value.problems] == [
        "entry faq_thing: 'requires_topic' names 'work_school', not a topic of spellings"
    ]
    docs["entries"]["entries"][1]["requires_topic"] = ["work_school"]
    found = problems_of(write_kb(tmp_path, docs))
    assert any("'requires_topic' must be a topic name" in p for p in found), found


def test_device_without_a_fix_in_the_path(tmp_path: Path) -> None:
    docs = minimal_kb()
    entry = docs["entries"]["entries"][0]
    entry["path"] = ["airplane"]
    entry["devices"] = ["iphone", "windows"]
    entry["other_device"] = t("別のデバイス", "Another device")
    found = problems_of(write_kb(tmp_path, docs))
    assert any("entry server_error: path has no fix with steps for 'windows'" in p for p in found)


def test_order_note_allows_a_path_out_of_stage_order(tmp_path: Path) -> None:
    docs = minimal_kb()
    entry = docs["entries"]["entries"][0]
    entry["path"] = ["contact", "check_status"]
    entry["order_note"] = t("先に連絡します", "We contact first")
    kb = load_knowledge(write_kb(tmp_path, docs))
    expected = Localized(ja="先に連絡します", en="We contact first")
    assert kb.entries["server_error"].order_note == expected
    assert kb.entries["server_error"].path == ("contact", "check_status")


def test_order_note_on_a_path_in_stage_order_is_refused(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["entries"]["entries"][0]["order_note"] = t("順番", "Order")
    found = problems_of(write_kb(tmp_path, docs))
    assert any("'order_note' given, but the path follows the stage order" in p for p in found)


def test_order_note_needs_every_language(tmp_path: Path) -> None:
    docs = minimal_kb()
    entry = docs["entries"]["entries"][0]
    entry["path"] = ["contact", "check_status"]
    entry["order_note"] = {"ja": "先に連絡します"}
    found = problems_of(write_kb(tmp_path, docs))
    assert any("entry server_error.order_note: missing language 'en'" in p for p in found)


def test_section_source(tmp_path: Path) -> None:
    docs = minimal_kb()
    docs["fixes"]["fixes"][1]["steps"]["iphone"] = [
        {"source": "general", "ja": ["手"], "en": ["S"]}
    ]
    kb = load_knowledge(write_kb(tmp_path, docs))
    assert kb.fixes["airplane"].steps[Device.IPHONE][0].source == "general"
    docs["fixes"]["fixes"][1]["steps"]["iphone"][0]["source"] = "blog"
    found = problems_of(write_kb(tmp_path / "bad", docs))
    assert any(
        "fix airplane.steps.iphone: 'source' must be one of article, general" in p for p in found
    )
