"""Devices named in a message set the device and leave the match as it would be without them."""

from __future__ import annotations

import pytest

from bot.content.knowledge import Device, Knowledge, load_knowledge
from bot.matching.matcher import Matcher, Scorer
from bot.matching.normalize import default_normalizer, detect_device, normalize
from tests.support.paths import KNOWLEDGE

# (text, the device it names): the examples of issue 11 and their neighbours.
DEVICES = [
    ("Cannot connect to iCloud on my iPad", Device.IPHONE),
    ("MacBookでiCloudに接続できません", Device.MAC),
    ("Windows PCでサインインできない", Device.WINDOWS),
    ("iPhone 15で写真が同期されない", Device.IPHONE),
    ("my iPad Pro won't sync", Device.IPHONE),
    ("アイフォンでエラーが出る", Device.IPHONE),
    ("win11でiCloudが開かない", Device.WINDOWS),
    ("macbook air says verification failed", Device.MAC),
    ("iphone de icloud ni tsunagaranai", Device.IPHONE),
    ("iPhoneとMacで写真が同期されない", None),
    ("Cannot connect to iCloud", None),
]


@pytest.mark.parametrize(("text", "device"), DEVICES)
def test_the_device_is_detected(text: str, device: Device | None) -> None:
    assert detect_device(text) is device


# (text, the same text without its device mention), both normalised.
WITHOUT = [
    ("Cannot connect to iCloud on my iPad", "Cannot connect to iCloud"),
    ("MacBookでiCloudに接続できません", "iCloudに接続できません"),
    ("iCloudに接続できません、MacBookで", "iCloudに接続できません"),
    ("Connection to server failed on my Windows PC", "Connection to server failed"),
    ("my iphone 15 pro max says verification failed", "says verification failed"),
    ("iPad Proで検証に失敗しました", "検証に失敗しました"),
    ("アイフォンの写真が同期されない", "写真が同期されない"),
    ("win11のiCloudに接続できません", "iCloudに接続できません"),
    ("the macbook air cannot connect to icloud", "cannot connect to icloud"),
]


@pytest.mark.parametrize(("text", "plain"), WITHOUT)
def test_device_mentions_are_taken_out(text: str, plain: str) -> None:
    normalizer = default_normalizer()
    assert normalizer.without_devices(normalize(text)) == normalize(plain)


@pytest.mark.parametrize("text", ["my machine is slow", "macros in numbers", "a windowsill", "pcs"])
def test_words_that_only_contain_a_device_stay(text: str) -> None:
    normalizer = default_normalizer()
    assert normalizer.without_devices(normalize(text)) == normalize(text)


def test_only_the_device_mention_goes() -> None:
    normalizer = default_normalizer()
    assert normalizer.without_devices(normalize("machine on my mac")) == "machine"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    knowledge: Knowledge = load_knowledge(KNOWLEDGE)
    return Matcher(knowledge)


# (text with a device, the same problem without one): both must score alike.
PAIRS = [
    ("Cannot connect to iCloud on my iPad", "Cannot connect to iCloud"),
    ("MacBookでiCloudに接続できません", "iCloudに接続できません"),
    ("Connection to server failed on my Windows PC", "Connection to server failed"),
    ("iPhone 15でサーバーへの接続に失敗しました", "サーバーへの接続に失敗しました"),
    ("Verification failed on my iPad Pro", "Verification failed"),
    ("アイフォンで検証に失敗しました", "検証に失敗しました"),
    ("win11でiCloudに接続できません", "iCloudに接続できません"),
    (
        "my macbook air says there was an error connecting to the apple id server",
        "says there was an error connecting to the apple id server",
    ),
]


@pytest.fixture(scope="module")
def lexical() -> Matcher:
    return Matcher(load_knowledge(KNOWLEDGE), scorer=Scorer.LEXICAL)


@pytest.mark.parametrize(("with_device", "without"), PAIRS)
def test_a_device_does_not_disturb_the_match(
    matcher: Matcher, lexical: Matcher, with_device: str, without: str
) -> None:
    one, other = matcher.match(with_device), matcher.match(without)
    assert one.entry is not None
    assert one.entry == other.entry
    # The lexical scorer reads both alike; the encoder reads the text less its device mention
    # but not in the very same form (lower case), so the blend may differ a little.
    one, other = lexical.match(with_device), lexical.match(without)
    assert (one.entry, one.score) == (other.entry, other.score)
