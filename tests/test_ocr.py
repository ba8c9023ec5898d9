"""OCR of error-dialog screenshots: limits, dark mode, text cleaning, the pool, and accuracy."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bot import ocr
from bot.content.knowledge import load_knowledge
from bot.matching.matcher import Matcher
from tests.support.paths import ROOT
from tests.support.screenshots import DIALOGS, Style, Variant, font, generate, render

needs_tesseract = pytest.mark.skipif(
    not ocr.available(),
    reason="Tesseract with jpn, eng and osd data is not installed "
    "(apt-get install tesseract-ocr tesseract-ocr-jpn tesseract-ocr-eng)",
)

# Share of the generated screenshots that must be recognised as their entry, OCR plus matcher.
MIN_ACCURACY = 0.9
# While the pool reads every screenshot, a 10 ms timer on the event loop may run this late at
# most. OCR on the loop itself would hold it up for a whole read, 0.3 s to several seconds.
MAX_LOOP_LAG = 0.25


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_knowledge(ROOT / "knowledge"))


@pytest.fixture(scope="module")
def shots() -> list[tuple[str, bytes, str]]:
    return generate(seed=0)


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run with a PATH on which there is no tesseract."""
    monkeypatch.setenv("PATH", str(tmp_path))
    ocr.available.cache_clear()
    yield
    monkeypatch.undo()
    ocr.available.cache_clear()


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """Return a PNG whose header claims a size, with one tiny row of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def noisy_png() -> bytes:
    return encode(Image.effect_noise((300, 300), 60).convert("RGB"))


REJECTED = {
    "too many bytes": (b"\xff\xd8\xff" + b"\0" * ocr.MAX_BYTES, "too_large_bytes"),
    "too wide": (encode(Image.new("L", (ocr.MAX_SIDE + 1, 8), 255)), "too_large_pixels"),
    "too tall": (encode(Image.new("L", (8, ocr.MAX_SIDE + 1), 255)), "too_large_pixels"),
    "decompression bomb": (png_header_only(60_000, 60_000), "too_large_pixels"),
    "text": (b"There was an error connecting to the Apple ID server.", "not_an_image"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "not_an_image"),
    "truncated png": (noisy_png()[:5000], "not_an_image"),
    "icon (not a screenshot format)": (encode(Image.new("RGB", (32, 32)), "ICO"), "not_an_image"),
}


@pytest.mark.parametrize(("data", "reason"), REJECTED.values(), ids=REJECTED.keys())
def test_unacceptable_uploads_are_rejected_before_ocr(data: bytes, reason: str) -> None:
    # So short a timeout ends any OCR at once (TimeoutError), and without Tesseract reading
    # raises OcrUnavailable: ImageRejected means the upload was judged before either.
    with pytest.raises(ocr.ImageRejected) as info:
        ocr.read_text(data, timeout=1e-9)
    assert info.value.reason == reason


def test_images_at_the_limits_are_accepted() -> None:
    for size in [(ocr.MAX_SIDE, 8), (8, ocr.MAX_SIDE)]:
        assert ocr.load_image(encode(Image.new("L", size, 255))).size == size
    data = encode(Image.new("RGB", (640, 480), "white"), "JPEG")
    assert ocr.load_image(data).size == (640, 480)


async def test_pool_rejects_without_a_worker_and_passes_rejections_on() -> None:
    pool = ocr.OcrPool(max_workers=1)
    try:
        for data, reason in REJECTED.values():
            with pytest.raises(ocr.ImageRejected) as info:
                await pool.read(data, timeout=10)
            assert info.value.reason == reason
    finally:
        pool.close()


def variant(style: Style, dark: bool) -> Variant:
    return Variant(style, dark, 2.0, full_screen=True, quality=None, noise=0.0, buttons=2)


@pytest.mark.parametrize("style", list(Style))
def test_dark_mode_is_detected_and_inverted(style: Style) -> None:
    dialog = DIALOGS[0]
    for dark in (False, True):
        data = render(dialog, variant(style, dark), seed=7).data
        image = ocr.load_image(data)
        assert ocr.has_light_text(image.convert("L")) is dark
        page = ocr.preprocess(image)
        assert page.mode == "L"
        ink = page.histogram()[0] / (page.width * page.height)
        # Black text on white, whatever the theme: a little ink, and white corners.
        assert 0.002 < ink < 0.15
        assert page.getpixel((0, 0)) == page.getpixel((page.width - 1, page.height - 1)) == 255


def test_light_dialog_on_dark_wallpaper_is_not_inverted() -> None:
    # The mean luminance says "dark" here; the strokes of the text say otherwise.
    for ground, card, ink in [(30, 245, 0), (225, 40, 255)]:
        image = Image.new("L", (900, 600), ground)
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle((250, 220, 650, 380), 24, fill=card)
        draw.text((450, 300), "Cannot connect to iCloud", font=font(26), fill=ink, anchor="mm")
        mean = sum(i * n for i, n in enumerate(image.histogram())) / (900 * 600)
        assert (mean < 128) is (ground == 30)
        assert ocr.has_light_text(image) is (ink == 255)


def test_text_is_rescaled_into_the_size_tesseract_reads_best() -> None:
    scales = []
    for size in [12, 20, 34, 80]:
        image = Image.new("L", (size * 24, size * 4), 255)
        text = "サーバーへの接続に失敗しました Connection"
        ImageDraw.Draw(image).text((size, size), text, font=font(size), fill=0)
        scale = ocr.rescale_factor(image)
        resized = image.resize((round(image.width * scale), round(image.height * scale)))
        # The estimate is rough for tiny text; what counts is landing in the readable band.
        assert 0.6 * ocr.TARGET_STROKE <= ocr.stroke_height(resized) <= 1.2 * ocr.TARGET_STROKE
        scales.append(scale)
    assert scales == sorted(scales, reverse=True)
    assert scales[0] > 2 and scales[-1] < 1


def test_a_page_without_text_keeps_its_size() -> None:
    assert ocr.stroke_height(Image.new("L", (500, 300), 255)) == 0
    assert ocr.rescale_factor(Image.new("L", (500, 300), 255)) == 1.0


def test_clean_text_joins_japanese_and_drops_chrome() -> None:
    raw = "\n".join(
        [
            "9:41",
            "Clock   Camera",
            "サー バー へ の 接続 に 失敗 しま し",
            "た 。",
            "Apple ID サーバー へ の 接続 中 に エラー",
            "There  was an error connecting to the Apple ID",
            "server,",
            "ーーーーーー",
            "| @ ©",
            "設定",
            "OK",
            "",
        ]
    )
    assert ocr.clean_text(raw).splitlines() == [
        "Clock Camera",
        "サーバーへの接続に失敗しまし",
        "た。",
        "Apple IDサーバーへの接続中にエラー",
        "There was an error connecting to the Apple ID",
        "server,",
    ]


def tsv(*words: tuple[int, int, int, float, str]) -> str:
    """Build Tesseract TSV from (line, left, width, confidence, text), all 30 px tall."""
    rows = ["level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth"]
    rows[0] += "\theight\tconf\ttext"
    rows.append("1\t1\t0\t0\t0\t0\t0\t0\t1000\t800\t-1\t")
    for n, (line, left, width, conf, text) in enumerate(words):
        rows.append(f"5\t1\t{line}\t1\t1\t{n}\t{left}\t{line * 50}\t{width}\t30\t{conf}\t{text}")
    return "\n".join(rows) + "\n"


def test_confident_lines_split_labels_and_drop_unsure_pieces() -> None:
    text = ocr.confident_lines(
        tsv(
            # a menu bar: words far apart are separate labels
            (1, 10, 80, 92.0, "Finder"),
            (1, 150, 40, 90.0, "File"),
            (1, 230, 40, 91.0, "Edit"),
            # texture read as words, all unsure
            (2, 0, 300, 0.0, "aaa"),
            (2, 310, 40, 22.0, "ee"),
            # one unsure word inside a sure sentence is kept; overlapping boxes are no gap
            (3, 100, 60, 96.0, "サー"),
            (3, 160, 60, 96.0, "バー"),
            (3, 220, 200, 95.0, "接続"),
            (3, 300, 30, 96.0, "に"),
            (3, 430, 60, 31.0, "失敗"),
            (3, 490, 60, 96.0, "しました"),
        )
    )
    assert text.splitlines() == ["Finder", "File", "Edit", "サー バー 接続 に 失敗 しました"]
    assert ocr.clean_text(text) == "サーバー接続に失敗しました"
    assert ocr.confident_lines("level\tpage_num\n") == ""


def test_every_dialog_text_is_matched_to_its_label(matcher: Matcher) -> None:
    # The labels are right: the words drawn on each dialog, typed in, give its entry.
    for dialog in DIALOGS:
        assert matcher.match(f"{dialog.title}\n{dialog.body}").entry == dialog.entry, dialog


def test_generated_set_covers_every_message_language_and_style(
    shots: list[tuple[str, bytes, str]],
) -> None:
    assert len(shots) >= 30
    assert len({name for name, _, _ in shots}) == len(shots)
    langs = ("ja", "en")
    covered = {
        (entry, name.split("-")[0], lang)
        for name, _, entry in shots
        for lang in langs
        if f"-{lang}-" in name
    }
    entries = {d.entry for d in DIALOGS}
    assert len(entries) == 5
    assert covered == {(e, s.value, lang) for e in entries for s in Style for lang in langs}
    assert {"light", "dark"} == {name.split("-")[1] for name, _, _ in shots}
    first = render(DIALOGS[3], variant(Style.MAC, True), seed=11)
    assert render(DIALOGS[3], variant(Style.MAC, True), seed=11) == first  # deterministic


async def test_closed_pool_and_full_queue_refuse_work() -> None:
    pool = ocr.OcrPool(max_workers=1, max_pending=1)
    try:
        first = asyncio.create_task(pool.read(noisy_png(), timeout=2))
        await asyncio.sleep(0)  # let it take the only place
        with pytest.raises(ocr.OcrBusy):
            await pool.read(noisy_png(), timeout=2)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
    finally:
        pool.close(wait=True)
    with pytest.raises(ocr.OcrUnavailable, match="closed"):
        await pool.read(noisy_png(), timeout=30)


def test_without_tesseract_reading_is_unavailable(no_tesseract: None) -> None:
    assert not ocr.available()
    data = render(DIALOGS[1], variant(Style.IOS, False), seed=3).data
    with pytest.raises(ocr.OcrUnavailable):
        ocr.read_text(data, timeout=10)


def child_pids() -> set[int]:
    """Return the processes whose parent is this one (from /proc)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                pids.add(int(entry.name))
    return pids


@needs_tesseract
async def test_timeouts_end_the_ocr() -> None:
    data = encode(Image.effect_noise((3000, 3000), 80))
    page = ocr._encode(ocr.preprocess(ocr.load_image(data)))
    before = child_pids()
    with pytest.raises(TimeoutError):
        ocr.run_tesseract(page, timeout=0.2)
    assert child_pids() <= before  # the tesseract process was killed and reaped
    pool = ocr.OcrPool()
    try:
        with pytest.raises(asyncio.TimeoutError):
            await pool.read(data, timeout=0.2)
    finally:
        pool.close(wait=True)


@needs_tesseract
def test_read_text_reads_a_dark_screenshot(matcher: Matcher) -> None:
    dialog = DIALOGS[8]  # 検証に失敗しました / サーバーへの接続に問題があります。
    data = render(dialog, variant(Style.IOS, True), seed=5).data
    text = ocr.read_text(data)
    assert "検証に失敗しました" in text
    assert matcher.match(text).entry == dialog.entry


@needs_tesseract
async def test_screenshots_are_read_and_matched(
    matcher: Matcher, shots: list[tuple[str, bytes, str]]
) -> None:
    """The key test: the screenshots, read through the pool, are recognised by the matcher."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()

    async def timer() -> None:
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - start - 0.01)

    pool = ocr.OcrPool(max_workers=2, max_pending=len(shots))
    try:
        ticking = asyncio.create_task(timer())
        texts = await asyncio.gather(*(pool.read(data, timeout=120) for _, data, _ in shots))
        done.set()
        await ticking
    finally:
        pool.close()

    results = [matcher.match(text) for text in texts]
    failures = [
        (name, text, result.entry, expected)
        for (name, _, expected), text, result in zip(shots, texts, results, strict=True)
        if result.entry != expected
    ]
    by_group: Counter[str] = Counter()
    for name, _, _, _ in failures:
        by_group[name.split("-")[0]] += 1
        by_group[name.split("-")[1]] += 1
    report = "\n".join(
        [f"{len(shots) - len(failures)}/{len(shots)} recognised; misses by group: {by_group}"]
        + ["name | OCR text | matched | expected"]
        + [f"{n} | {t!r} | {m} | {e}" for n, t, m, e in failures]
    )
    print(report)
    assert len(shots) - len(failures) >= MIN_ACCURACY * len(shots), report
    assert max(lags) < MAX_LOOP_LAG, f"the event loop was held up for {max(lags):.3f} s"


@pytest.mark.skipif(not ocr.available(), reason="Tesseract (jpn+eng) is not installed")
def test_a_picture_pillow_opens_but_cannot_convert_is_rejected() -> None:
    lab = io.BytesIO()
    Image.new("LAB", (120, 80), (50, 10, 10)).save(lab, "TIFF")
    with pytest.raises(ocr.ImageRejected) as caught:
        ocr.read_text(lab.getvalue())
    assert caught.value.reason == "not_an_image"
