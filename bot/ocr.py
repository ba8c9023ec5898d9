"""Read the text of an error-dialog screenshot with Tesseract (Japanese and English)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from bot.errors import BotError

__all__ = [
    "MAX_BYTES",
    "MAX_SIDE",
    "ImageRejected",
    "OcrBusy",
    "OcrPool",
    "OcrUnavailable",
    "RejectReason",
    "available",
    "clean_text",
    "confident_lines",
    "is_message_line",
    "preprocess",
    "read_text",
]

logger = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4000

LANGUAGES = "jpn+eng"
# Page segmentation mode 12 also needs the orientation data (osd, from tesseract-ocr-osd).
REQUIRED_DATA = frozenset({"jpn", "eng", "osd"})
# Formats a phone, a Mac or a PC saves screenshots in (Telegram re-encodes photos as JPEG).
# Anything else is refused before a decoder for it is ever run.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# psm 12 ("sparse text with orientation detection") finds every line of a dialog whatever its
# layout. On the generated screenshots it reads best: psm 11 drops some bold Japanese lines
# outright, and psm 3/4 read wallpaper texture as lines of text more often.
PAGE_SEGMENTATION = "12"
# Now and then psm 12 reads a clear line as garbage that other modes read well: when nothing
# usable comes out, the page is read once more as one uniform block of text.
FALLBACK_SEGMENTATION = "6"
# Pieces of lines whose words Tesseract is less sure of than this (median, 0-100) are dropped:
# texture, borders and shadows come out as "aaa ee tine" at 0-45, real words mostly above 70.
MIN_CONFIDENCE = 50.0
# Words further apart than this many text heights belong to different labels.
WORD_GAP = 1.0
# Tesseract reads text best when a character is about this tall (pixels, measured by the height
# of vertical strokes); screenshots are rescaled towards it, within these factors.
TARGET_STROKE = 26.0
MIN_SCALE, MAX_SCALE = 0.5, 4.0
# Binarisation: a pixel is ink when it is this much darker than the mean of a box of this radius
# around it (at the target text size the box is about one character wide). Tesseract's own
# global threshold loses text on a mid-grey dialog over a similar background.
INK_RADIUS = 25
INK_OFFSET = 15.0
DENOISE_RADIUS = 1.0
# Never hand Tesseract more than this many pixels: time grows with the area.
MAX_PIXELS = 12_000_000
# The OCR child runs at a lower priority so the bot's own process keeps its CPU share.
NICENESS = 10
AVAILABILITY_TIMEOUT = 10.0

RejectReason = Literal["too_large_bytes", "too_large_pixels", "not_an_image"]
IntArray = npt.NDArray[np.int16]


class OcrUnavailable(BotError):
    """Tesseract or its Japanese/English data is missing, or it failed on an image."""


class OcrBusy(OcrUnavailable):
    """Too many screenshots are already waiting for OCR."""


class ImageRejected(BotError):
    """The upload is not something we OCR: too large, or not an image at all."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        self.reason: RejectReason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@cache
def available() -> bool:
    """Tell whether the tesseract binary and its jpn, eng and osd data are installed."""
    binary = shutil.which("tesseract")
    if binary is None:
        return False
    try:
        listed = subprocess.run(
            [binary, "--list-langs"],
            capture_output=True,
            timeout=AVAILABILITY_TIMEOUT,
            check=True,
            text=True,
        )
    except (OSError, subprocess.SubprocessError):
        logger.warning("tesseract --list-langs failed", exc_info=True)
        return False
    # The first line is a header ("List of available languages in ...").
    langs = {line.strip() for line in listed.stdout.splitlines()[1:]}
    return REQUIRED_DATA.issubset(langs)


def load_image(data: bytes) -> Image.Image:
    """Decode an upload after checking its size; raise ImageRejected if it is not acceptable."""
    if len(data) > MAX_BYTES:
        raise ImageRejected("too_large_bytes", f"{len(data)} bytes > {MAX_BYTES}")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    # Pillow warns about, then refuses, images whose header claims a huge size (the warning is
    # an exception where warnings are errors); the side check below would refuse them anyway.
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageRejected("too_large_pixels", str(exc)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected("not_an_image", str(exc)) from exc
    if max(image.size) > MAX_SIDE:
        raise ImageRejected("too_large_pixels", f"{image.width}x{image.height} > {MAX_SIDE}")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageRejected("not_an_image", str(exc)) from exc
    return image


def preprocess(image: Image.Image) -> Image.Image:
    """Return a black-on-white page, sized for Tesseract, from a screenshot in any theme."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Window captures have a transparent shadow around them: lay them on white.
        rgba = image.convert("RGBA")
        ground = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(ground, rgba)
    gray = image.convert("L")
    if has_light_text(gray):
        gray = ImageOps.invert(gray)
    scale = rescale_factor(gray)
    if abs(scale - 1.0) > 0.05:
        size = (max(round(gray.width * scale), 1), max(round(gray.height * scale), 1))
        gray = gray.resize(size, Image.Resampling.LANCZOS)
    return binarize(gray)


def binarize(gray: Image.Image) -> Image.Image:
    """Return black ink on white: pixels clearly darker than their surroundings become ink."""
    # A slight blur first: at the target size strokes are several pixels wide, while grain and
    # JPEG noise are single pixels that would otherwise turn into speckles of ink.
    smooth = gray.filter(ImageFilter.GaussianBlur(DENOISE_RADIUS))
    ink = _local_contrast(smooth, INK_RADIUS) < -INK_OFFSET
    return Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), "L")


def _local_contrast(gray: Image.Image, radius: int) -> IntArray:
    """Return each pixel minus the mean of its neighbourhood (int16: half the memory)."""
    blurred = gray.filter(ImageFilter.BoxBlur(radius))
    pixels: IntArray = np.asarray(gray, dtype=np.int16)
    return pixels - np.asarray(blurred, dtype=np.int16)


def has_light_text(gray: Image.Image) -> bool:
    """Tell whether the text is lighter than its ground (dark mode).

    Text strokes are thin, so they stand far out of their neighbourhood while the ground beside
    them barely does: the third moment of the local contrast takes the strokes' sign. Unlike the
    mean luminance, this is not fooled by a light dialog over a dark, dimmed wallpaper.
    """
    contrast = _local_contrast(gray, 4).astype(np.float32)
    np.power(contrast, 3, out=contrast)
    return float(contrast.sum(dtype=np.float64)) > 0.0


def rescale_factor(gray: Image.Image) -> float:
    """Return how much to scale a dark-on-light image so its text is about TARGET_STROKE tall."""
    stroke = stroke_height(gray)
    scale = TARGET_STROKE / stroke if stroke > 0 else 1.0
    scale = min(max(scale, MIN_SCALE), MAX_SCALE)
    area = gray.width * gray.height * scale * scale
    if area > MAX_PIXELS:
        scale *= (MAX_PIXELS / area) ** 0.5
    return scale


def stroke_height(gray: Image.Image) -> float:
    """Estimate the text height in pixels from the long vertical runs of ink (0 if no ink).

    Ink is what is clearly darker than its surroundings; the tallest vertical runs of it are the
    stems of letters and the verticals of kanji, about as tall as a character.
    """
    ink = _local_contrast(gray, 12) < -40.0
    column_major = np.ascontiguousarray(ink.T)
    padded = np.pad(column_major, ((0, 0), (1, 1))).astype(np.int8)
    edges = np.diff(padded, axis=1)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    runs = ends - starts
    runs = runs[runs >= 3]
    if runs.size < 20:
        return 0.0
    return float(np.percentile(runs, 95))


_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# Japanese is written without spaces, also next to Latin words ("Apple IDサーバー"), but
# Tesseract puts one between every word it finds.
_SPACE_NEAR_CJK = re.compile(f"(?<=[{_CJK}])[ \t]+|[ \t]+(?=[{_CJK}])")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’]*")
_WORD_CHAR = re.compile(f"[A-Za-z0-9{_CJK}]")
_SPACES = re.compile(r"[ \t]+")
# An error message is a phrase: a line with fewer Latin words and fewer Japanese characters than
# this is a button, an app or menu label, a clock or a window title ("OK", "設定", "9:41").
MIN_LATIN_WORDS = 2
MIN_CJK_CHARS = 6
SENTENCE_ENDS = ".,。、．，!?！？"


def confident_lines(tsv: str, min_confidence: float = MIN_CONFIDENCE) -> str:
    """Rebuild the text from Tesseract's TSV: one line per line, leaving out unsure ones.

    A line is first cut where two words stand further apart than the text is tall (a menu bar
    or a row of buttons is a row of separate labels, not a sentence); then each piece is kept
    if its median word confidence reaches min_confidence, so one misread word does not cost
    the rest of its sentence.
    """
    lines: dict[tuple[str, str, str], list[_Word]] = {}
    for row in tsv.splitlines()[1:]:
        # level, page, block, paragraph, line, word, left, top, width, height, conf, text
        cols = row.split("\t")
        if len(cols) != 12 or cols[0] != "5" or not cols[11].strip():
            continue
        try:
            left, width, height, confidence = (float(cols[i]) for i in (6, 8, 9, 10))
        except ValueError:
            continue
        word = _Word(left, left + width, height, confidence, cols[11].strip())
        lines.setdefault((cols[2], cols[3], cols[4]), []).append(word)
    if not lines:
        return ""
    # A word's box can take in a border or an underline and grow much taller than the text;
    # the page's median keeps such a line from hiding its gaps.
    page_height = float(np.median([w.height for words in lines.values() for w in words]))
    out: list[str] = []
    for words in lines.values():
        line_height = min(float(np.median([w.height for w in words])), page_height)
        for piece in _split_at_gaps(sorted(words, key=lambda w: w.left), WORD_GAP * line_height):
            if np.median([w.confidence for w in piece]) >= min_confidence:
                out.append(" ".join(w.text for w in piece))
    return "\n".join(out)


def _split_at_gaps(words: list[_Word], gap: float) -> list[list[_Word]]:
    """Cut a line, sorted from left to right, where nothing covers a stretch wider than gap."""
    pieces = [[words[0]]]
    # Tesseract's boxes for Japanese can overlap (a wide box around two characters and one
    # inside it): measure from the rightmost edge so far, not from the previous box.
    covered = words[0].right
    for word in words[1:]:
        if word.left - covered > gap:
            pieces.append([])
        pieces[-1].append(word)
        covered = max(covered, word.right)
    return pieces


@dataclass(frozen=True, slots=True)
class _Word:
    left: float
    right: float
    height: float
    confidence: float
    text: str


def clean_text(raw: str) -> str:
    """Tidy Tesseract's output: join spaced-out Japanese, drop stray marks and lone labels."""
    lines: list[str] = []
    for raw_line in raw.splitlines():
        line = _SPACE_NEAR_CJK.sub("", _SPACES.sub(" ", raw_line).strip())
        if is_message_line(line):
            lines.append(line)
    return "\n".join(lines)


def is_message_line(line: str) -> bool:
    """Tell whether an OCR'd line can be part of a message rather than chrome or noise."""
    visible = line.replace(" ", "")
    if not visible:
        return False
    # Borders, icons and shadows come out as "|", "©", "@D" or rows of "ー" and "一".
    if len(_WORD_CHAR.findall(visible)) * 2 < len(visible):
        return False
    if max(visible.count(char) for char in set(visible)) * 2 > len(visible):
        return False
    latin = len(_LATIN_WORD.findall(line))
    cjk = len(_CJK_CHAR.findall(line))
    # Labels and buttons never end in punctuation: this is the wrapped tail of a message
    # ("server.", often read as "server,").
    return latin >= MIN_LATIN_WORDS or cjk >= MIN_CJK_CHARS or visible[-1] in SENTENCE_ENDS


def _encode(gray: Image.Image) -> bytes:
    """Encode as binary PGM: no compression to spend time on, and Leptonica reads it."""
    out = io.BytesIO()
    gray.save(out, "PPM")
    return out.getvalue()


def run_tesseract(page: bytes, timeout: float, psm: str = PAGE_SEGMENTATION) -> str:
    """Run tesseract on an encoded page through pipes and return its TSV (one row per word).

    Raise TimeoutError past the timeout, OcrUnavailable if tesseract cannot run or fails.
    """
    binary = shutil.which("tesseract")
    if binary is None:
        raise OcrUnavailable("the tesseract binary is not installed")
    command = [binary, "stdin", "stdout", "-l", LANGUAGES, "--psm", psm, "tsv"]
    # One thread per OCR: the pool, not OpenMP, decides how many cores OCR uses.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise OcrUnavailable(f"cannot start tesseract: {exc}") from exc
    # Leaving the block closes the pipes and reaps the child, also after a kill.
    with process:
        # The child may have finished already; then a normal priority did no harm.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, process.pid, NICENESS)
        try:
            stdout, stderr = process.communicate(page, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            raise TimeoutError(f"tesseract took longer than {timeout:.1f} s") from exc
    if process.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip()[-500:]
        raise OcrUnavailable(f"tesseract exited with {process.returncode}: {message}")
    return stdout.decode("utf-8", "replace")


def read_text(data: bytes, *, timeout: float = 15.0) -> str:
    """Return the text of a screenshot; raise ImageRejected, OcrUnavailable or TimeoutError."""
    started = time.monotonic()
    image = load_image(data)
    if not available():
        raise OcrUnavailable("tesseract with its jpn, eng and osd data is not installed")
    try:
        page = preprocess(image)
    # Pillow opens more than it can convert (a LAB or HSV TIFF: "conversion from LAB to RGB
    # not supported"), and its converters raise assorted types: the picture is the user's.
    except Exception as exc:
        raise ImageRejected("not_an_image", f"{image.mode}: {type(exc).__name__}: {exc}") from exc
    remaining = started + timeout - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"preparing the image took longer than {timeout:.1f} s")
    encoded = _encode(page)
    text = clean_text(confident_lines(run_tesseract(encoded, remaining)))
    if not text:
        remaining = started + timeout - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"OCR took longer than {timeout:.1f} s")
        text = clean_text(confident_lines(run_tesseract(encoded, remaining, FALLBACK_SEGMENTATION)))
    logger.debug(
        "OCR of a %dx%d image (%dx%d page): %d characters in %.2f s",
        image.width,
        image.height,
        page.width,
        page.height,
        len(text),
        time.monotonic() - started,
    )
    return text


class OcrPool:
    """Run read_text in a few worker threads so the event loop never waits on OCR.

    Tesseract is a child process, so threads suffice; Pillow and numpy release the GIL for
    the heavy image work. At most max_pending screenshots wait or run at once: beyond that,
    read() raises OcrBusy at once rather than queueing without bound. Use it from one event
    loop.
    """

    def __init__(self, max_workers: int = 2, *, max_pending: int = 16) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="ocr"
        )
        self._max_pending = max_pending
        # Only read() changes it, always on the event loop's thread: no lock needed.
        self._pending = 0

    async def read(self, data: bytes, timeout: float) -> str:
        """Return the text of a screenshot; raise TimeoutError, OcrUnavailable or ImageRejected.

        The timeout covers waiting for a free worker as well as the OCR itself.
        """
        if len(data) > MAX_BYTES:
            raise ImageRejected("too_large_bytes", f"{len(data)} bytes > {MAX_BYTES}")
        if self._pending >= self._max_pending:
            raise OcrBusy(f"{self._pending} screenshots are already waiting for OCR")
        self._pending += 1
        try:
            deadline = time.monotonic() + timeout
            loop = asyncio.get_running_loop()
            try:
                job = loop.run_in_executor(self._executor, self._work, data, deadline)
            except RuntimeError as exc:  # the executor has been shut down
                raise OcrUnavailable("the OCR pool is closed") from exc
            return await asyncio.wait_for(job, timeout)
        finally:
            self._pending -= 1

    @staticmethod
    def _work(data: bytes, deadline: float) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the screenshot waited too long for a free OCR worker")
        return read_text(data, timeout=remaining)

    def close(self, *, wait: bool = False) -> None:
        """Refuse new work and drop what is waiting; OCR already running ends by its deadline.

        Without wait it returns at once, so it can be called on the event loop; reads that
        were still waiting for a worker are cancelled.
        """
        self._executor.shutdown(wait=wait, cancel_futures=True)
