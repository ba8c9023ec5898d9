"""The real knowledge base: contract ids, paths per device, and every fact of the article."""

from __future__ import annotations

import re

import pytest

from bot.content.knowledge import Device, EntryKind, Fix, Knowledge, load_knowledge
from bot.content.languages import LANGUAGES
from tests.support.paths import KNOWLEDGE

KNOWLEDGE_DIR = KNOWLEDGE

STAGES = ["basic", "easy", "intermediate", "advanced", "last_resort"]

FIXES_BY_STAGE = {
    "basic": [
        "check_apple_status",
        "check_internet",
        "check_apple_id_password",
        "check_app_icloud_setting",
    ],
    "easy": [
        "restart_device",
        "reconnect_wifi",
        "restart_router",
        "try_mobile_data",
        "toggle_airplane_mode",
    ],
    "intermediate": [
        "reset_network_settings",
        "change_dns",
        "update_router_firmware",
        "check_date_time",
    ],
    "advanced": ["sign_out_and_in", "update_os", "disable_vpn", "get_verification_code"],
    "last_resort": [
        "check_icloud_storage",
        "free_up_icloud_storage",
        "upgrade_icloud_storage",
        "windows_ipv6",
        "windows_killer_network",
        "windows_firewall",
        "ask_network_admin",
        "contact_apple_support",
    ],
}
# The fix that ends a walk: Apple Support, or the network administrator on a company network.
FINAL_FIXES = {"contact_apple_support", "ask_network_admin"}
# Entries whose path leaves the stage order on purpose (each has an order_note).
REORDERED = {
    "verification_failed",
    "sync_not_working",
    "backup_failed",
    "verification_code_missing",
}
ALL_FIXES = [f for stage in STAGES for f in FIXES_BY_STAGE[stage]]

ERRORS = {
    "apple_id_server_error": "Apple IDサーバーへの接続中にエラーが起きました",
    "cannot_connect_icloud": "iCloudに接続できません",
    "server_connection_failed": "サーバーへの接続に失敗しました",
    "icloud_server_error": "iCloudサーバーとの通信中にエラーが発生しました",
    "verification_failed": "検証に失敗しました。サーバーへの接続に問題があります",
}
ERRORS_EN = {
    "apple_id_server_error": "There was an error connecting to the Apple ID server.",
    "cannot_connect_icloud": "Cannot connect to iCloud",
    "server_connection_failed": "Connection to server failed",
    "icloud_server_error": "An error occurred while communicating with the iCloud server",
    "verification_failed": "Verification failed. There was a problem connecting to the server.",
}
SYMPTOMS = [
    "cannot_sign_in",
    "sync_not_working",
    "backup_failed",
    "store_unavailable",
    "mail_not_working",
    "storage_full",
    "verification_code_missing",
]
FAQS = [
    "faq_recurring_error",
    "faq_single_app",
    "faq_wifi_only",
    "faq_work_school_network",
    "faq_new_device",
]

ALL_DEVICES = {Device.IPHONE, Device.MAC, Device.WINDOWS}
IPHONE_MAC = {Device.IPHONE, Device.MAC}
WINDOWS_ONLY = ["windows_ipv6", "windows_killer_network", "windows_firewall"]
DEVICE_INDEPENDENT = [
    "check_apple_status",
    "check_internet",
    "check_apple_id_password",
    "restart_device",
    "restart_router",
    "contact_apple_support",
]
FIX_DEVICES = {
    **{f: ALL_DEVICES for f in DEVICE_INDEPENDENT},
    "reconnect_wifi": ALL_DEVICES,
    "update_os": ALL_DEVICES,
    "try_mobile_data": {Device.IPHONE},
    "toggle_airplane_mode": {Device.IPHONE},
    "reset_network_settings": IPHONE_MAC,
    "change_dns": ALL_DEVICES,
    "check_date_time": ALL_DEVICES,  # Windows steps added: a wrong PC clock fails verification too
    "sign_out_and_in": ALL_DEVICES,
    "disable_vpn": ALL_DEVICES,
    "get_verification_code": ALL_DEVICES,
    "check_icloud_storage": ALL_DEVICES,
    "check_app_icloud_setting": ALL_DEVICES,
    "update_router_firmware": ALL_DEVICES,
    "free_up_icloud_storage": ALL_DEVICES,
    "upgrade_icloud_storage": ALL_DEVICES,
    "ask_network_admin": ALL_DEVICES,
    **{f: {Device.WINDOWS} for f in WINDOWS_ONLY},
}
# Mac fixes taken from the article: their steps go through System Settings / System Preferences.
ARTICLE_MAC_FIXES = [
    "reset_network_settings",
    "change_dns",
    "check_date_time",
    "sign_out_and_in",
    "update_os",
    "disable_vpn",
    "get_verification_code",
    "check_icloud_storage",
]

STATUS_URLS = {
    "ja": "https://www.apple.com/jp/support/systemstatus/",
    "en": "https://www.apple.com/support/systemstatus/",
}
CONTACT_URLS = {
    "ja": "https://support.apple.com/ja-jp/contact",
    "en": "https://support.apple.com/contact",
}


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge(KNOWLEDGE_DIR)


# --------------------------------------------------------------------------- helpers


def fix_text(fix: Fix, lang: str) -> str:
    """Every text of a fix in one language, joined (steps, headings, why, warnings, notes)."""
    parts = [fix.title[lang]]
    if fix.why is not None:
        parts.append(fix.why[lang])
    for sections in fix.steps.values():
        for section in sections:
            if section.heading is not None:
                parts.append(section.heading[lang])
            parts.extend(section.steps[lang])
    parts.extend(fix.warnings[lang])
    parts.extend(fix.notes[lang])
    return "\n".join(parts)


def device_text(fix: Fix, device: Device, lang: str) -> str:
    return "\n".join(s for section in fix.steps[device] for s in section.steps[lang])


def topic_text(k: Knowledge, topic_id: str, lang: str) -> str:
    return "\n".join(k.topics[topic_id].items[lang])


def all_texts(k: Knowledge) -> list[tuple[str, str, str]]:
    """(where, lang, text) for every text in the knowledge base."""
    out: list[tuple[str, str, str]] = []
    for lang in LANGUAGES.codes:
        for stage in k.stages:
            out.append((f"stage {stage.id}", lang, stage.title[lang]))
        for fix in k.fixes.values():
            out.append((f"fix {fix.id}", lang, fix_text(fix, lang)))
            if fix.link is not None:
                out.append((f"fix {fix.id} link", lang, fix.link.label[lang]))
        for entry in k.entries.values():
            out.extend((f"entry {entry.id}", lang, t) for t in entry.all_patterns(lang))
            for text in (entry.summary, entry.answer):
                if text is not None:
                    out.append((f"entry {entry.id}", lang, text[lang]))
        for topic in k.topics.values():
            out.append((f"topic {topic.id}", lang, topic.title[lang]))
            out.extend((f"topic {topic.id}", lang, t) for t in topic.items[lang])
    return out


# --------------------------------------------------------------------------- contract ids


def test_stages_in_order(k: Knowledge) -> None:
    assert [s.id for s in k.stages] == STAGES


def test_fixes_by_stage_in_order(k: Knowledge) -> None:
    for stage in STAGES:
        got = [f.id for f in k.fixes.values() if f.stage == stage]
        assert got == FIXES_BY_STAGE[stage], stage
    assert set(k.fixes) == set(ALL_FIXES)
    assert list(k.fixes) == ALL_FIXES


def test_entry_ids_and_kinds(k: Knowledge) -> None:
    for eid in ERRORS:
        assert k.entries[eid].kind is EntryKind.ERROR
    for eid in SYMPTOMS:
        assert k.entries[eid].kind is EntryKind.SYMPTOM
    for eid in FAQS:
        assert k.entries[eid].kind is EntryKind.FAQ
    assert set(k.entries) == set(ERRORS) | set(SYMPTOMS) | set(FAQS)


def test_error_messages_exact(k: Knowledge) -> None:
    for eid, message in ERRORS.items():
        entry = k.entries[eid]
        assert entry.message is not None
        assert entry.message["ja"] == message
        assert entry.message["en"] == ERRORS_EN[eid]
    assert "Unable to connect to iCloud" in k.entries["cannot_connect_icloud"].patterns["en"]


def test_faqs_have_answers(k: Knowledge) -> None:
    for eid in FAQS:
        answer = k.entries[eid].answer
        assert answer is not None and answer["ja"].strip() and answer["en"].strip()


# --------------------------------------------------------------------------- devices


def test_fix_devices(k: Knowledge) -> None:
    for fid, devices in FIX_DEVICES.items():
        assert k.fixes[fid].devices == devices, fid


def test_device_independent_fixes_share_steps(k: Knowledge) -> None:
    for fid in ["check_apple_status", "check_internet", "check_apple_id_password"]:
        steps = k.fixes[fid].steps
        assert steps[Device.IPHONE] == steps[Device.MAC] == steps[Device.WINDOWS], fid
    for fid in ["restart_router", "contact_apple_support"]:
        steps = k.fixes[fid].steps
        assert steps[Device.IPHONE] == steps[Device.MAC] == steps[Device.WINDOWS], fid


def test_mac_steps_name_both_settings_apps(k: Knowledge) -> None:
    for fid in ARTICLE_MAC_FIXES:
        fix = k.fixes[fid]
        assert "「システム設定」" in device_text(fix, Device.MAC, "ja"), fid
        assert "「システム環境設定」" in device_text(fix, Device.MAC, "ja"), fid
        assert "System Settings" in device_text(fix, Device.MAC, "en"), fid
        assert "System Preferences" in device_text(fix, Device.MAC, "en"), fid


# --------------------------------------------------------------------------- paths


def test_paths_follow_stage_order(k: Knowledge) -> None:
    for entry in k.entries.values():
        ranks = [STAGES.index(k.fixes[f].stage) for f in entry.path]
        assert (ranks == sorted(ranks)) == (entry.id not in REORDERED), entry.id
        assert (entry.order_note is not None) == (entry.id in REORDERED), entry.id
        assert len(set(entry.path)) == len(entry.path), entry.id


ERROR_PATH = [
    "check_apple_status",
    "check_internet",
    "check_apple_id_password",
    "restart_device",
    "reconnect_wifi",
    "restart_router",
    "try_mobile_data",
    "toggle_airplane_mode",
    "check_date_time",
    "change_dns",
    "reset_network_settings",
    "update_os",
    "disable_vpn",
    "get_verification_code",
    "sign_out_and_in",
    "check_icloud_storage",
    "windows_ipv6",
    "windows_killer_network",
    "windows_firewall",
    "contact_apple_support",
]


def before(path: tuple[str, ...], first: str, then: str) -> bool:
    return path.index(first) < path.index(then)


def test_error_paths(k: Knowledge) -> None:
    for eid in ERRORS:
        path = k.entries[eid].path
        assert path[0] == "check_apple_status", eid
        assert path[-1] == "contact_apple_support", eid
        if eid == "verification_failed":
            assert sorted(path) == sorted(ERROR_PATH), eid
        else:
            assert list(path) == ERROR_PATH, eid
        iphone = k.path_for(eid, Device.IPHONE)
        for fid in [
            "toggle_airplane_mode",
            "reset_network_settings",
            "change_dns",
            "sign_out_and_in",
            "update_os",
            "disable_vpn",
        ]:
            assert fid in iphone, (eid, fid)
        windows = k.path_for(eid, Device.WINDOWS)
        for fid in WINDOWS_ONLY:
            assert fid in windows, (eid, fid)
        assert windows[0] == "check_apple_status" and windows[-1] == "contact_apple_support"
    verification = k.entries["verification_failed"].path
    for likely in ["check_date_time", "get_verification_code"]:
        for risky in ["reset_network_settings", "sign_out_and_in"]:
            assert before(verification, likely, risky), (likely, risky)


def test_device_paths_filter_out_foreign_fixes(k: Knowledge) -> None:
    for entry in k.entries.values():
        for device in (Device.MAC, Device.WINDOWS):
            path = k.path_for(entry.id, device)
            assert "try_mobile_data" not in path, (entry.id, device)
            assert "toggle_airplane_mode" not in path, (entry.id, device)
        for device in (Device.IPHONE, Device.MAC):
            path = k.path_for(entry.id, device)
            for fid in WINDOWS_ONLY:
                assert fid not in path, (entry.id, device, fid)


def test_symptom_paths(k: Knowledge) -> None:
    for eid in SYMPTOMS:
        assert k.entries[eid].path[-1] == "contact_apple_support", eid
    assert k.entries["storage_full"].path[0] == "check_icloud_storage"
    assert "check_icloud_storage" in k.entries["sync_not_working"].path
    assert "check_icloud_storage" in k.entries["backup_failed"].path
    for eid in ["sync_not_working", "backup_failed"]:
        path = k.entries[eid].path
        for risky in ["reset_network_settings", "sign_out_and_in"]:
            assert before(path, "check_icloud_storage", risky), (eid, risky)
    full = k.entries["storage_full"].path
    assert full[:3] == ("check_icloud_storage", "free_up_icloud_storage", "upgrade_icloud_storage")
    for eid in ["store_unavailable", "mail_not_working", "cannot_sign_in"]:
        assert k.entries[eid].path[0] == "check_apple_status", eid


def test_faq_paths(k: Knowledge) -> None:
    for eid in FAQS:
        expected = (
            "ask_network_admin" if eid == "faq_work_school_network" else "contact_apple_support"
        )
        assert k.entries[eid].path[-1] == expected, eid
    new_device = k.entries["faq_new_device"].path
    assert "sign_out_and_in" in new_device and before(new_device, "sign_out_and_in", "update_os")
    assert k.entries["faq_single_app"].path[0] == "check_app_icloud_setting"
    wifi_only = k.entries["faq_wifi_only"].path
    assert "restart_router" in wifi_only and "change_dns" in wifi_only
    assert "restart_router" in k.entries["faq_recurring_error"].path
    work = k.entries["faq_work_school_network"].path
    assert "disable_vpn" in work
    assert "restart_router" not in work and "contact_apple_support" not in work
    assert "windows_firewall" not in work


def test_every_device_path_is_usable(k: Knowledge) -> None:
    for entry in k.entries.values():
        for device in Device:
            path = k.path_for(entry.id, device)
            assert path and path[-1] in FINAL_FIXES, (entry.id, device)


def test_three_fixes_before_the_last_resort_on_every_device(k: Knowledge) -> None:
    for entry in k.entries.values():
        for device in Device:
            if not entry.applies_to(device):
                continue
            path = k.path_for(entry.id, device)
            assert path[-1] in FINAL_FIXES, (entry.id, device)
            assert not FINAL_FIXES & set(path[:-1]), (entry.id, device)
            assert len(path) - 1 >= 3, (entry.id, device, path)


def test_backup_is_made_by_iphone_or_ipad(k: Knowledge) -> None:
    backup = k.entries["backup_failed"]
    assert backup.devices == {Device.IPHONE}
    assert backup.other_device is not None
    other = backup.other_device
    assert "Time Machine" in other["en"] and "Time Machine" in other["ja"]
    assert "iPhone or iPad" in other["en"] and "iPhone・iPad" in other["ja"]
    others = [e.id for e in k.entries.values() if e.devices != ALL_DEVICES]
    assert others == ["backup_failed"]


# --------------------------------------------------------------------------- languages and form


def test_every_text_in_both_languages(k: Knowledge) -> None:
    for fix in k.fixes.values():
        for lang in LANGUAGES.codes:
            assert fix.title[lang].strip(), fix.id
            assert fix.why is not None and fix.why[lang].strip(), fix.id
            for device, sections in fix.steps.items():
                for section in sections:
                    assert section.steps[lang], (fix.id, device, lang)
                    assert all(s.strip() for s in section.steps[lang])
            if fix.warnings:
                assert fix.warnings["ja"] and fix.warnings["en"], fix.id
            if fix.notes:
                assert fix.notes["ja"] and fix.notes["en"], fix.id
    for entry in k.entries.values():
        assert entry.summary is not None, entry.id
        for lang in LANGUAGES.codes:
            assert entry.title[lang].strip() and entry.summary[lang].strip(), entry.id
    for topic in k.topics.values():
        assert topic.items["ja"] and topic.items["en"], topic.id


def test_japanese_texts_are_japanese(k: Knowledge) -> None:
    kana = re.compile(r"[\u3040-\u30ff]")
    for fix in k.fixes.values():
        assert kana.search(fix_text(fix, "ja")), fix.id
        assert not kana.search(fix_text(fix, "en")), fix.id
    for entry in k.entries.values():
        assert entry.summary is not None
        assert kana.search(entry.summary["ja"]) and not kana.search(entry.summary["en"]), entry.id


def test_titles_fit_on_buttons(k: Knowledge) -> None:
    for entry in k.entries.values():
        assert len(entry.title["ja"]) <= 30, entry.id
        assert len(entry.title["en"]) <= 40, entry.id


def test_pattern_counts(k: Knowledge) -> None:
    for entry in k.entries.values():
        for lang in LANGUAGES.codes:
            patterns = entry.patterns[lang]
            # Enough ways of saying it for the encoder, not so many that the lexical scan slows.
            assert 6 <= len(patterns) <= 25, (entry.id, lang, len(patterns))
            assert len(set(patterns)) == len(patterns), (entry.id, lang)


def test_plain_text_only(k: Knowledge) -> None:
    markup = re.compile(r"</?[a-z]+>|\*\*|__|`|\]\(|https?://")
    for where, lang, text in all_texts(k):
        assert not markup.search(text), (where, lang, text)


# --------------------------------------------------------------------------- links


def test_links(k: Knowledge) -> None:
    assert k.links["system_status"]["ja"] == STATUS_URLS["ja"]
    assert k.links["system_status"]["en"] == STATUS_URLS["en"]
    assert k.links["contact_support"]["ja"] == CONTACT_URLS["ja"]
    assert k.links["contact_support"]["en"] == CONTACT_URLS["en"]
    status = k.fixes["check_apple_status"].link
    assert status is not None
    assert (status.url["ja"], status.url["en"]) == (STATUS_URLS["ja"], STATUS_URLS["en"])
    contact = k.fixes["contact_apple_support"].link
    assert contact is not None
    assert (contact.url["ja"], contact.url["en"]) == (CONTACT_URLS["ja"], CONTACT_URLS["en"])


# --------------------------------------------------------------------------- the article's facts


def test_fact_apple_status_colors(k: Knowledge) -> None:
    fix = k.fixes["check_apple_status"]
    ja, en = fix_text(fix, "ja"), fix_text(fix, "en")
    assert "緑色" in ja and "黄色" in ja and "赤色" in ja and "待つ" in ja
    assert "green" in en and "yellow" in en and "red" in en and "wait" in en


def test_fact_internet_checks(k: Knowledge) -> None:
    fix = k.fixes["check_internet"]
    ja, en = fix_text(fix, "ja"), fix_text(fix, "en")
    for word in ["Webサイト", "YouTube", "アプリ", "Wi-Fi", "ルーターを再起動"]:
        assert word in ja, word
    for word in ["websites", "YouTube", "apps", "Wi-Fi", "restart your router"]:
        assert word in en, word


def test_fact_typo_points(k: Knowledge) -> None:
    fix = k.fixes["check_apple_id_password"]
    ja, en = fix_text(fix, "ja"), fix_text(fix, "en")
    for word in ["大文字", "小文字", "全角", "半角", "スペース", "Caps Lock", "NumLock", "数字"]:
        assert word in ja, word
    for word in ["upper-case", "lower-case", "keyboard layout", "spaces", "Caps Lock"]:
        assert word in en, word
    assert "NumLock" in en and "digits" in en


def test_fact_router_timing(k: Knowledge) -> None:
    fix = k.fixes["restart_router"]
    ja, en = fix_text(fix, "ja"), fix_text(fix, "en")
    assert "30秒〜1分" in ja and "2〜3分" in ja and "ランプ" in ja
    assert "30 seconds to 1 minute" in en and "2-3 minutes" in en and "lights" in en


def test_fact_wifi_mobile_airplane(k: Knowledge) -> None:
    wifi = k.fixes["reconnect_wifi"]
    assert "「このネットワーク設定を削除」" in device_text(wifi, Device.IPHONE, "ja")
    assert "Forget This Network" in device_text(wifi, Device.IPHONE, "en")
    mobile = device_text(k.fixes["try_mobile_data"], Device.IPHONE, "ja")
    assert "「モバイル通信」" in mobile
    assert "Cellular" in device_text(k.fixes["try_mobile_data"], Device.IPHONE, "en")
    airplane = k.fixes["toggle_airplane_mode"]
    assert "コントロールセンター" in fix_text(airplane, "ja") and "5秒" in fix_text(airplane, "ja")
    assert "Control Center" in fix_text(airplane, "en")
    assert "5 seconds" in fix_text(airplane, "en")


def test_fact_network_reset(k: Knowledge) -> None:
    fix = k.fixes["reset_network_settings"]
    sections = fix.steps[Device.IPHONE]
    headings = [(s.heading["ja"], s.heading["en"]) for s in sections if s.heading is not None]
    assert headings == [
        ("iOS・iPadOS 15以降", "iOS and iPadOS 15 and later"),
        ("iOS・iPadOS 14以前", "iOS and iPadOS 14 and earlier"),
    ]
    ios15 = "\n".join(sections[0].steps["ja"])
    assert "「設定」→「一般」→「転送またはiPhoneをリセット」" in ios15
    assert "「ネットワーク設定をリセット」" in ios15 and "パスコード" in ios15
    assert "Settings > General > Transfer or Reset iPhone" in "\n".join(sections[0].steps["en"])
    assert "「設定」→「一般」→「リセット」" in "\n".join(sections[1].steps["ja"])
    assert "Settings > General > Reset" in "\n".join(sections[1].steps["en"])
    mac_ja, mac_en = device_text(fix, Device.MAC, "ja"), device_text(fix, Device.MAC, "en")
    assert "「−」" in mac_ja and "「+」" in mac_ja and "「ネットワーク」" in mac_ja
    assert "−" in mac_en and "+" in mac_en and "Network" in mac_en
    assert any("Wi-Fi" in w and "パスワード" in w for w in fix.warnings["ja"])
    assert any("Wi-Fi passwords" in w for w in fix.warnings["en"])


def test_fact_dns(k: Knowledge) -> None:
    fix = k.fixes["change_dns"]
    for lang in LANGUAGES.codes:
        notes = "\n".join(fix.notes[lang])
        iphone = device_text(fix, Device.IPHONE, lang)
        for address in ["8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1"]:
            assert address in notes and address in iphone, (lang, address)
        assert "Google" in notes and "Cloudflare" in notes
        mac = device_text(fix, Device.MAC, lang)
        assert "8.8.8.8" in mac and "8.8.4.4" in mac
    iphone_ja = device_text(fix, Device.IPHONE, "ja")
    for label in ["「DNSを構成」", "「手動」", "「サーバを追加」", "「保存」", "ⓘ"]:
        assert label in iphone_ja, label
    iphone_en = device_text(fix, Device.IPHONE, "en")
    for label in ["Configure DNS", "Manual", "Add Server", "Save"]:
        assert label in iphone_en, label
    assert "「DNS」タブ" in device_text(fix, Device.MAC, "ja")


def test_fact_date_time(k: Knowledge) -> None:
    fix = k.fixes["check_date_time"]
    assert fix.why is not None
    assert "認証" in fix.why["ja"] and "authenticate" in fix.why["en"]
    assert "「自動設定」" in device_text(fix, Device.IPHONE, "ja")
    assert "Set Automatically" in device_text(fix, Device.IPHONE, "en")
    assert "「日付と時刻を自動的に設定」" in device_text(fix, Device.MAC, "ja")
    assert "Set time and date automatically" in device_text(fix, Device.MAC, "en")


def test_fact_sign_out(k: Knowledge) -> None:
    fix = k.fixes["sign_out_and_in"]
    iphone_ja = device_text(fix, Device.IPHONE, "ja")
    assert "「データのコピーをこのiPhoneに残しますか?」" in iphone_ja
    assert "1〜2分" in iphone_ja and "「iPhoneにサインイン」" in iphone_ja
    iphone_en = device_text(fix, Device.IPHONE, "en")
    assert "keep a copy" in iphone_en and "1-2 minutes" in iphone_en
    assert "Sign in to your iPhone" in iphone_en
    assert any("バックアップ" in w for w in fix.warnings["ja"])
    assert any("backed up" in w for w in fix.warnings["en"])
    assert fix.why is not None and "認証" in fix.why["ja"] and "authentication" in fix.why["en"]


def test_fact_update(k: Knowledge) -> None:
    fix = k.fixes["update_os"]
    ja, en = fix_text(fix, "ja"), fix_text(fix, "en")
    assert "「ダウンロードしてインストール」" in ja and "「今すぐアップデート」" in ja
    assert "利用規約" in ja and "再起動" in ja
    assert "Download and Install" in en and "Update Now" in en
    assert "Terms and Conditions" in en and "restart" in en
    assert "Windows Update" in device_text(fix, Device.WINDOWS, "en")
    assert "iCloud for Windows" in device_text(fix, Device.WINDOWS, "en")
    assert "Windows用iCloud" in device_text(fix, Device.WINDOWS, "ja")


def test_fact_vpn(k: Knowledge) -> None:
    fix = k.fixes["disable_vpn"]
    assert fix.why is not None
    assert "会社" in fix.why["ja"] and "無料VPN" in fix.why["ja"]
    assert "corporate" in fix.why["en"] and "free VPN" in fix.why["en"]
    assert "「切断」" in device_text(fix, Device.MAC, "ja")
    assert "Disconnect" in device_text(fix, Device.MAC, "en")


def test_fact_windows(k: Knowledge) -> None:
    ipv6 = k.fixes["windows_ipv6"]
    assert "「インターネット プロトコル バージョン 6 (TCP/IPv6)」" in fix_text(ipv6, "ja")
    assert "Internet Protocol Version 6 (TCP/IPv6)" in fix_text(ipv6, "en")
    assert "iCloud.com" in fix_text(ipv6, "ja") and "iCloud.com" in fix_text(ipv6, "en")
    killer = k.fixes["windows_killer_network"]
    for lang in LANGUAGES.codes:
        assert "Killer Intelligence Center" in fix_text(killer, lang)
        assert "Prioritization Engine" in fix_text(killer, lang)
    firewall = k.fixes["windows_firewall"]
    assert "「Microsoft Defender ファイアウォール」" in fix_text(firewall, "ja")
    assert "Microsoft Defender Firewall" in fix_text(firewall, "en")
    assert any("オンに戻" in w for w in firewall.warnings["ja"])
    assert any("back on" in w for w in firewall.warnings["en"])


def test_fact_storage_and_plans(k: Knowledge) -> None:
    fix = k.fixes["check_icloud_storage"]
    ja, en = fix_text(fix, "ja"), fix_text(fix, "en")
    assert "5GB" in ja and "5 GB" in en
    notes_ja, notes_en = "\n".join(fix.notes["ja"]), "\n".join(fix.notes["en"])
    for fact in ["古いバックアップ", "写真やビデオ", "アプリのデータ", "iCloud+"]:
        assert fact in notes_ja, fact
    for price in ["50GBは月額150円", "200GBは月額450円", "2TBは月額1,500円"]:
        assert price in notes_ja, price
    for fact in ["old backups", "photos and videos", "apps you no longer use", "iCloud+"]:
        assert fact in notes_en, fact
    for price in ["50 GB for ¥150/month", "200 GB for ¥450/month", "2 TB for ¥1,500/month"]:
        assert price in notes_en, price
    assert "Japan" in notes_en
    plans_ja, plans_en = topic_text(k, "icloud_plus", "ja"), topic_text(k, "icloud_plus", "en")
    assert "5GB" in plans_ja and "5 GB" in plans_en
    for price in ["150円", "450円", "1,500円"]:
        assert price in plans_ja
    for price in ["¥150", "¥450", "¥1,500"]:
        assert price in plans_en
    assert "Japanese prices" in plans_en


def test_fact_verification_code(k: Knowledge) -> None:
    fix = k.fixes["get_verification_code"]
    assert fix.why is not None and "二要素認証" in fix.why["ja"]
    assert "two-factor authentication" in fix.why["en"]
    iphone_ja = device_text(fix, Device.IPHONE, "ja")
    assert "「設定」→自分の名前→「パスワードとセキュリティ」" in iphone_ja
    assert "「確認コードを取得」" in iphone_ja
    iphone_en = device_text(fix, Device.IPHONE, "en")
    assert "Settings > [your name] > Password & Security" in iphone_en
    assert "Get Verification Code" in iphone_en
    mac_en = device_text(fix, Device.MAC, "en")
    assert "Apple ID > Password & Security" in mac_en and "Get Verification Code" in mac_en


def test_fact_faq_answers(k: Knowledge) -> None:
    def answer(eid: str, lang: str) -> str:
        text = k.entries[eid].answer
        assert text is not None
        return text[lang]

    assert "中継器" in answer("faq_recurring_error", "ja")
    assert "extender" in answer("faq_recurring_error", "en")
    assert "「設定」→自分の名前→「iCloud」" in answer("faq_single_app", "ja")
    assert "Settings > [your name] > iCloud" in answer("faq_single_app", "en")
    wifi_ja, wifi_en = answer("faq_wifi_only", "ja"), answer("faq_wifi_only", "en")
    assert "ファームウェア" in wifi_ja and "DNS" in wifi_ja
    assert "firmware" in wifi_en and "DNS" in wifi_en
    assert "管理者" in answer("faq_work_school_network", "ja")
    assert "administrator" in answer("faq_work_school_network", "en")
    assert "サインアウト" in answer("faq_new_device", "ja")
    assert "Sign out" in answer("faq_new_device", "en")


def test_fact_topics(k: Knowledge) -> None:
    expected = {
        "prevention",
        "icloud_plus",
        "most_effective",
        "effects",
        "troubleshooting_order",
        "checks",
        "closing",
    }
    assert expected <= set(k.topics)
    prevention_ja = topic_text(k, "prevention", "ja")
    for fact in ["OS", "再起動", "障害物", "20%", "iTunes", "Finder", "パソコン"]:
        assert fact in prevention_ja, fact
    prevention_en = topic_text(k, "prevention", "en")
    for fact in ["Update the OS", "Restart", "obstacles", "20%", "iTunes", "Finder", "computer"]:
        assert fact in prevention_en, fact
    assert len(k.topics["effects"].items["ja"]) == len(k.topics["effects"].items["en"]) == 5
    assert len(k.topics["checks"].items["ja"]) == len(k.topics["checks"].items["en"]) == 4
    checks = k.topics["checks"].items
    assert "最新" in checks["ja"][3] and "up to date" in checks["en"][3]
    order = k.topics["troubleshooting_order"]
    assert len(order.items["ja"]) == len(order.items["en"]) == 5
    for stage, item in zip(k.stages, order.items["ja"], strict=True):
        assert item.startswith(stage.title["ja"]), stage.id
    for stage, item in zip(k.stages, order.items["en"], strict=True):
        assert item.startswith(stage.title["en"]), stage.id
    assert len(k.topics["most_effective"].items["ja"]) == 7
    assert "IPv6" in topic_text(k, "most_effective", "ja")
    assert "IPv6" in topic_text(k, "most_effective", "en")
    closing_ja, closing_en = topic_text(k, "closing", "ja"), topic_text(k, "closing", "en")
    assert "Appleの公式サポート" in closing_ja and "Apple's official support" in closing_en
    assert "安定" in closing_ja and "stable" in closing_en


# ------------------------------------------------------------- text for the device in hand

# The names of devices and systems a device's texts must not mention.
FOREIGN = {
    Device.IPHONE: re.compile(r"(?<![A-Za-z])(Mac|macOS|Windows|PC)(?![A-Za-z])"),
    Device.MAC: re.compile(r"(?<![A-Za-z])(iPhone|iPad|iOS|iPadOS|Windows|PC)(?![A-Za-z])"),
    Device.WINDOWS: re.compile(r"(?<![A-Za-z])(Mac|macOS|iPhone|iPad|iOS|iPadOS)(?![A-Za-z])"),
}
# Fixes whose texts have to name other devices, and why.
NAMES_OTHER_DEVICES = {
    "get_verification_code": "the code comes from another trusted iPhone, iPad or Mac",
}


def test_steps_name_only_the_device_in_hand(k: Knowledge) -> None:
    for fix in k.fixes.values():
        if fix.id in NAMES_OTHER_DEVICES:
            continue
        shared = [fix.title, *([fix.why] if fix.why else [])]
        for device in fix.devices:
            for lang in LANGUAGES.codes:
                texts = [device_text(fix, device, lang), *(t[lang] for t in shared)]
                texts += [*fix.warnings[lang], *fix.notes[lang]]
                for section in fix.steps[device]:
                    if section.heading is not None:
                        texts.append(section.heading[lang])
                for text in texts:
                    found = FOREIGN[device].search(text)
                    assert found is None, (fix.id, device, lang, found and found.group(), text)


def test_iphone_steps_speak_to_ipad_users_too(k: Knowledge) -> None:
    for fix in k.fixes.values():
        for section in fix.steps.get(Device.IPHONE, ()):
            for step in section.steps["en"]:
                if "this iPhone" in step or "your iPhone" in step:
                    assert "iPad" in step, (fix.id, step)
            for step in section.steps["ja"]:
                if "このiPhone" in step or "iPhoneに" in step:
                    assert "iPad" in step, (fix.id, step)


def test_english_is_written_for_english_readers(k: Knowledge) -> None:
    texts = [text for _, lang, text in all_texts(k) if lang == "en"]
    for entry in k.entries.values():
        for extra in (entry.other_device, entry.order_note):
            if extra is not None:
                texts.append(extra["en"])
    for text in texts:
        lowered = text.lower()
        for word in ["article", "full-width", "half-width"]:
            assert word not in lowered, (word, text)


def test_risky_fixes_warn(k: Knowledge) -> None:
    for fid in [
        "reset_network_settings",
        "sign_out_and_in",
        "disable_vpn",
        "free_up_icloud_storage",
        "windows_firewall",
    ]:
        warnings = k.fixes[fid].warnings
        assert warnings["ja"] and warnings["en"], fid
    assert any("Wi-Fi" in w for w in k.fixes["reset_network_settings"].warnings["en"])
    assert any("backed up" in w for w in k.fixes["sign_out_and_in"].warnings["en"])


def test_windows_steps_beyond_the_article_are_marked_general(k: Knowledge) -> None:
    article_windows = {
        "check_apple_status",
        "check_internet",
        "check_apple_id_password",
        "restart_router",
        *WINDOWS_ONLY,
    }
    for fix in k.fixes.values():
        if fix.id in article_windows or Device.WINDOWS not in fix.devices:
            continue
        for section in fix.steps[Device.WINDOWS]:
            assert section.source == "general", fix.id


def test_current_names(k: Knowledge) -> None:
    vpn = k.fixes["disable_vpn"]
    assert "VPN in the sidebar" in device_text(vpn, Device.MAC, "en")
    code = k.fixes["get_verification_code"]
    assert "Sign-In & Security" in fix_text(code, "en")
    assert "「サインインとセキュリティ」" in fix_text(code, "ja")
    assert "2ファクタ認証" in code.title["ja"]
    dns = device_text(k.fixes["change_dns"], Device.WINDOWS, "en")
    assert "Hardware properties" in dns and "DNS server assignment" in dns and "Edit" in dns
    assert "Network and Sharing Center" in dns and "Change adapter settings" in dns
    assert "TCP/IPv4" in dns
    sign_out = k.fixes["sign_out_and_in"]
    assert "Apple Account (Apple ID)" in fix_text(sign_out, "en")
    assert "Appleアカウント(Apple ID)" in fix_text(sign_out, "ja")
