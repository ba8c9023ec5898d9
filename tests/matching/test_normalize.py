"""Tests of the text normalisation shared by user texts and knowledge patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.knowledge import Device
from bot.content.spellings import Spellings, load_spellings
from bot.content.text import fold
from bot.errors import KnowledgeError
from bot.matching.normalize import Normalizer, detect_device, normalize

# (what, one spelling, another spelling): both must normalise to the same text.
SAME = [
    ("full-width Latin", "ＡｐｐｌｅＩＤ", "AppleID"),
    ("full-width digits", "ｉＯＳ１７", "iOS17"),
    ("half-width kana", "ｱｲｸﾗｳﾄﾞ", "アイクラウド"),
    ("half-width voiced kana", "ｻｰﾊﾞｰ", "サーバー"),
    ("case", "ICLOUD", "icloud"),
    ("katakana and hiragana", "エラー", "えらー"),
    ("long vowel dropped at the end", "サーバ", "サーバー"),
    ("long vowel typed as a hyphen", "サ-バ-", "サーバー"),
    ("corner brackets", "「iCloudに接続できません」", "iCloudに接続できません"),
    ("white corner brackets", "『検証に失敗しました』", "検証に失敗しました"),
    ("lenticular brackets", "【iCloud】", "iCloud"),
    ("parentheses and square brackets", "(iCloud) [Mac]", "iCloud Mac"),
    ("Japanese full stop", "検証に失敗しました。サーバー", "検証に失敗しましたサーバー"),
    ("Japanese comma and middle dot", "会社・学校、Wi-Fi", "会社学校Wi-Fi"),
    ("ellipsis and marks", "接続できません…!?", "接続できません"),
    ("curly quotes", "“Verification failed”", "Verification failed"),
    ("apostrophe joins", "can't connect", "cant connect"),
    ("curly apostrophe joins", "can’t connect", "cant connect"),
    ("spaces next to Japanese", "iCloud に 接続 できません", "iCloudに接続できません"),
    ("runs of whitespace", "verification \t\n  failed", "verification failed"),
    ("emoji", "iCloud 😭 sync", "iCloud sync"),
    ("katakana brand iCloud", "アイクラウドに接続できません", "iCloudに接続できません"),
    ("hiragana brand iCloud", "あいくらうど", "iCloud"),
    ("spaced i cloud", "i cloud", "icloud"),
    ("katakana brand Apple", "アップル", "Apple"),
    ("Apple ID spaced", "apple id", "appleid"),
    ("Apple ID in katakana", "アップルID", "Apple ID"),
    ("Apple ID in hiragana", "あっぷるID", "AppleID"),
    ("iPhone in katakana", "アイフォーン", "iPhone"),
    ("PC in katakana", "パソコン", "PC"),
    ("log in / sign in (ja)", "ログインできない", "サインインできない"),
    ("log in / sign in (en)", "log in", "sign in"),
    ("login / sign in (en)", "login", "sign in"),
    ("e-mail", "e-mail", "mail"),
    ("email", "email", "mail"),
    ("Wi-Fi in katakana", "ワイファイ", "Wi-Fi"),
    ("wi-fi / wifi", "wi-fi", "WiFi"),
    ("password", "パスワード", "password"),
    ("つながらない / 接続できない", "iCloudにつながらない", "iCloudに接続できない"),
    ("hiragana for kanji: 検証に失敗", "けんしょうにしっぱいしました", "検証に失敗しました"),
    ("hiragana for kanji: 接続", "せつぞく", "接続"),
    ("hiragana for kanji: 同期", "どうきされない", "同期されない"),
    ("hiragana for kanji: 通信中", "つうしんちゅう", "通信中"),
    ("hiragana for kanji: 発生", "はっせいしました", "発生しました"),
    ("hiragana for kanji: 起きました", "おきました", "起きました"),
    ("hiragana for kanji: 容量", "ようりょう", "容量"),
    ("hiragana for kanji: 設定", "せってい", "設定"),
    ("hiragana for kanji: 機種変更", "きしゅへんこう", "機種変更"),
    ("hiragana for kanji: 問題", "もんだいがあります", "問題があります"),
    (
        "a whole message typed in hiragana",
        "あっぷるあいでぃーさーばーへのせつぞくちゅうにえらーがおきました",
        "Apple IDサーバーへの接続中にエラーが起きました",
    ),
    # Read by the analyser (bot/matching/japanese.py), with no row in the spelling table.
    ("hiragana for kanji: 届かない", "とどかない", "届かない"),
    ("hiragana for kanji: 足りない", "ようりょうがたりない", "容量が足りない"),
    ("hiragana for kanji: 空き容量", "あきようりょう", "空き容量"),
    ("hiragana for kanji: 通信中にエラー", "つうしんちゅうにえらー", "通信中にエラー"),
    ("hiragana for kanji: 再発", "さいはつする", "再発する"),
    ("hiragana for kanji: 買い替えた", "かいかえた", "買い替えた"),
    ("katakana for kanji", "セツゾクデキナイ", "接続できない"),
    ("繋がらない / つながんない", "繋がらない", "つながんない"),
    ("つながんない / 接続できない", "iCloudにつながんない", "iCloudに接続できない"),
    ("接続できない / せつぞくできない", "接続できない", "せつぞくできない"),
    ("せつぞくできない / 繋がらない", "せつぞくできない", "繋がらない"),
    ("わかんない", "わかんない", "分からない"),
    # Romaji (bot/matching/romaji.py), product names kept.
    ("romaji", "icloud ni tsunagaranai", "iCloudにつながらない"),
    ("romaji, polite", "tsunagaranai desu", "つながらないです"),
    ("romaji, kanji words", "setsuzoku dekinai", "接続できない"),
    ("romaji, ません", "icloud ni setsuzoku dekimasen", "iCloudに接続できません"),
    ("romaji, long vowels", "saabaa no eraa ga deru", "サーバーのエラーが出る"),
    ("romaji, っ and ん", "kenshou ni shippai shimashita", "検証に失敗しました"),
    ("romaji, capitals", "ICLOUD NI TSUNAGARANAI", "iCloudにつながらない"),
    ("romaji, Apple ID kept", "apple id ni sain in dekinai", "Apple IDにサインインできない"),
    ("romaji, Wi-Fi kept", "wifi dato icloud ni tsunagaranai", "Wi-FiだとiCloudにつながらない"),
]


@pytest.mark.parametrize(("what", "one", "other"), SAME, ids=[s[0] for s in SAME])
def test_spellings_meet(what: str, one: str, other: str) -> None:
    assert normalize(one) == normalize(other), what


# (text, its normalised form): the exact output, so changes to the pipeline are deliberate.
EXACT = [
    ("", ""),
    ("   ", ""),
    ("!!!", ""),
    (
        "ＡｐｐｌｅＩＤサーバーへの接続中にエラーが起きました",
        "appleidさばへのせつぞくちゅうにえらがおきました",
    ),
    ("「iCloudに接続できません」", "icloudにせつぞくできません"),
    ("Verification failed. There was a problem.", "verification failed there was a problem"),
    ("can't connect to i cloud", "cant connect to icloud"),
    ("アイクラウドバックアップ", "icloudばっくあっぷ"),
    ("iCloudメール", "icloudめる"),
]


@pytest.mark.parametrize(("text", "expected"), EXACT)
def test_normal_form(text: str, expected: str) -> None:
    assert normalize(text) == expected


# (text, a text it must stay apart from)
APART = [
    ("mac", "machine"),
    ("止める", "メール"),
    ("iCloud", "Google"),
    ("検証", "確認"),
]


@pytest.mark.parametrize(("one", "other"), APART)
def test_different_words_stay_different(one: str, other: str) -> None:
    assert normalize(one) != normalize(other)


# English stays English, even where its words spell romaji syllables.
ENGLISH = [
    "machine login",
    "same time",
    "one more time",
    "no sync",
    "cannot connect to icloud on my mac",
    "I made a new apple id",
    "to do",
    "wifi",
]


@pytest.mark.parametrize("text", ENGLISH)
def test_english_is_not_read_as_romaji(text: str) -> None:
    assert normalize(text).isascii(), normalize(text)


def test_latin_words_are_replaced_whole_only() -> None:
    assert normalize("machine login") == "machine sign in"
    assert normalize("logins") == "logins"


def test_normalize_is_idempotent() -> None:
    for _, one, other in SAME:
        for text in (one, other):
            assert normalize(normalize(text)) == normalize(text)


def test_fold_leaves_the_table_out() -> None:
    assert fold("「アイクラウド」") == "あいくらうど"
    assert fold("Wi-Fi  ！") == "wi fi"


def test_long_text_is_linear_and_sane() -> None:
    text = "「iCloudに接続できません」と表示される。" * 500
    result = normalize(text)
    assert result.startswith("icloudにせつぞくできませんとひょうじされる")
    assert len(result) < len(text) * 2


def test_topics_and_context() -> None:
    normalizer = Normalizer(load_spellings())
    assert "work_school" in normalizer.topics(normalize("会社のWi-Fiでつながらない"))
    assert normalizer.has_context(normalize("iCloudに接続できません"))
    assert normalizer.has_context(normalize("写真が同期されない"))
    assert not normalizer.has_context(normalize("Androidの写真が同期されない"))
    assert not normalizer.has_context(normalize("プリンターがWi-Fiに接続できません"))
    # Words about fixing these errors are context without being a topic.
    assert normalizer.has_context(normalize("対処法を教えて"))
    assert normalizer.has_context(normalize("which fix works best"))
    assert not normalizer.topics(normalize("対処法を教えて"))
    assert not normalizer.has_context(normalize("Googleドライブの対処法"))
    assert normalizer.is_foreign(normalize("Googleドライブの対処法"))
    assert not normalizer.is_foreign(normalize("GoogleドライブとiCloudの同期"))


def test_apple_named_only_inside_another_service_is_not_icloud() -> None:
    normalizer = Normalizer(load_spellings())
    # "Apple" is strong context, but here only as part of another service's name.
    assert normalizer.is_foreign(normalize("Apple Musicの料金っていくら?"))
    assert normalizer.is_foreign(normalize("AppleCareの料金っていくら?"))
    assert not normalizer.has_context(normalize("Apple Watch not syncing workouts"))
    # Named beside iCloud or the Apple Account, the text is ours again.
    assert not normalizer.is_foreign(normalize("Apple WatchでiCloudにサインインできない"))
    assert normalizer.has_context(normalize("Apple Payの設定でApple IDの確認が失敗する"))
    # Nor does a foreign word hide Apple said separately.
    assert not normalizer.is_foreign(normalize("AppleのアカウントでGoogleドライブは使えない?"))


def test_a_topic_named_only_to_rule_it_out_is_not_read() -> None:
    normalizer = Normalizer(load_spellings())
    assert "storage" in normalizer.topics(normalize("iCloudの容量がいっぱい"))
    ruled_out = normalize("iCloudバックアップが失敗する。容量はまだ空いてるはず")
    assert normalizer.topics(ruled_out) == {"backup"}
    assert "storage" not in normalizer.topics(normalize("photos won't sync, plenty of space"))


def test_a_table_of_its_own() -> None:
    spellings = Spellings(replacements={fold("ﾃｽﾄ"): "test"})
    normalizer = Normalizer(spellings)
    assert normalizer("テストです") == "testです"
    assert normalizer.detect_device("iPhone") is None
    assert normalizer.topics("test") == frozenset()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spellings: [a, b]\n", "spellings: expected a mapping"),
        ("spellings:\n  icloud: アイクラウド\n", "spellings.icloud: expected a list"),
        ("readings:\n  検証: けんしょう\n", "unknown key 'readings'"),
        ("english: {a: b}\n", "english: expected a list of words"),
        ("devices:\n  android: [pixel]\n", "devices.android: expected iphone, mac or windows"),
        ("context:\n  weak: [x]\n", "context.weak: expected one of strong, subject"),
        ("colours: {}\n", "unknown key 'colours'"),
        (
            "spellings:\n  icloud: [アイクラウド]\n  apple: [アイクラウド]\n",
            "already listed in spellings.icloud",
        ),
        ("spellings: [\n", "YAML syntax"),
    ],
)
def test_a_broken_table_is_refused_with_its_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "spellings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_spellings(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- devices

DEVICES = [
    ("iPhoneの設定を開くと", Device.IPHONE),
    ("iPadで同期できない", Device.IPHONE),
    ("アイフォンです", Device.IPHONE),
    ("あいふぉんです", Device.IPHONE),
    ("iOS 17にしたら", Device.IPHONE),
    ("Macで検証に失敗", Device.MAC),
    ("MacBook Airです", Device.MAC),
    ("マックです", Device.MAC),
    ("macOS Sonomaで", Device.MAC),
    ("on my iMac", Device.MAC),
    ("Windowsです", Device.WINDOWS),
    ("on my PC", Device.WINDOWS),
    ("パソコンで", Device.WINDOWS),
    ("ウィンドウズ11", Device.WINDOWS),
    ("Win11で", Device.WINDOWS),
    ("iCloud for Windows", Device.WINDOWS),
    ("ｉＰｈｏｎｅ", Device.IPHONE),
    ("iPhoneとMacで写真が同期されない", None),
    ("PCとiPhone", None),
    ("iCloudに接続できません", None),
    ("my machine", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "device"), DEVICES)
def test_detect_device(text: str, device: Device | None) -> None:
    assert detect_device(text) is device
