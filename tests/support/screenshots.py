"""Draw realistic screenshots of the iCloud error dialogs (iOS, macOS, Windows), labelled by entry.

Used by tests/test_ocr.py and benchmarks/bench_ocr.py; needs Pillow, numpy and fonts-noto-cjk.
`python -m tests.support.screenshots DIR` writes a set to DIR to look at.
"""

from __future__ import annotations

import io
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
# Face 0 of the Noto CJK collections is the Japanese one.
FONT_FILES = {False: FONT_DIR / "NotoSansCJK-Regular.ttc", True: FONT_DIR / "NotoSansCJK-Bold.ttc"}

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]


class Style(StrEnum):
    """Where the dialog comes from."""

    IOS = "ios"
    MAC = "mac"
    WINDOWS = "windows"


@dataclass(frozen=True, slots=True)
class Dialog:
    """The words of one error dialog: a bold title and an optional message under it."""

    entry: str
    lang: str
    title: str
    body: str = ""


DIALOGS: tuple[Dialog, ...] = (
    Dialog("apple_id_server_error", "ja", "Apple IDサーバーへの接続中にエラーが起きました。"),
    Dialog("apple_id_server_error", "en", "There was an error connecting to the Apple ID server."),
    Dialog("cannot_connect_icloud", "ja", "iCloudに接続できません"),
    Dialog("cannot_connect_icloud", "en", "Cannot connect to iCloud"),
    Dialog("server_connection_failed", "ja", "サーバーへの接続に失敗しました"),
    Dialog("server_connection_failed", "en", "Connection to server failed"),
    Dialog(
        "icloud_server_error", "ja", "iCloud", "iCloudサーバーとの通信中にエラーが発生しました。"
    ),
    Dialog(
        "icloud_server_error",
        "en",
        "iCloud",
        "An error occurred while communicating with the iCloud server.",
    ),
    Dialog("verification_failed", "ja", "検証に失敗しました", "サーバーへの接続に問題があります。"),
    Dialog(
        "verification_failed",
        "en",
        "Verification Failed",
        "There was a problem connecting to the server.",
    ),
)


@dataclass(frozen=True, slots=True)
class Words:
    """The other words on screen: buttons, app names under icons, the macOS menu bar."""

    ok: str
    settings: str
    cancel: str
    apps: tuple[str, ...]
    menu: tuple[str, ...]


WORDS = {
    "ja": Words(
        ok="OK",
        settings="設定",
        cancel="キャンセル",
        apps=("時計", "カメラ", "写真", "メモ", "マップ", "天気", "計算機", "株価"),
        menu=("Finder", "ファイル", "編集", "表示", "移動", "ウインドウ", "ヘルプ"),
    ),
    "en": Words(
        ok="OK",
        settings="Settings",
        cancel="Cancel",
        apps=("Clock", "Camera", "Photos", "Notes", "Maps", "Weather", "Calculator", "Stocks"),
        menu=("Finder", "File", "Edit", "View", "Go", "Window", "Help"),
    ),
}

# Screen size in points, and the scales each platform is seen at.
SCREENS = {Style.IOS: (390, 844), Style.MAC: (1440, 900), Style.WINDOWS: (1920, 1080)}
SCALES = {Style.IOS: (1.0, 2.0, 3.0), Style.MAC: (1.0, 2.0), Style.WINDOWS: (1.0, 1.25, 1.5, 2.0)}
BLUE = {False: (0, 122, 255), True: (10, 132, 255)}


@dataclass(frozen=True, slots=True)
class Variant:
    """How one screenshot is taken: platform, theme, scale, framing and file format."""

    style: Style
    dark: bool
    scale: float
    full_screen: bool
    quality: int | None  # JPEG quality, None for PNG
    noise: float  # standard deviation of the added grain, in grey levels
    buttons: int  # 1: OK; 2: Settings/Cancel and OK

    def label(self) -> str:
        """Return a short description for file names."""
        theme = "dark" if self.dark else "light"
        frame = "full" if self.full_screen else "crop"
        fmt = f"q{self.quality}" if self.quality is not None else "png"
        return f"{self.style}-{theme}-{self.scale:g}x-{frame}-{fmt}"


@dataclass(frozen=True, slots=True)
class Screenshot:
    """One encoded screenshot, the entry it shows and every text drawn on it."""

    name: str
    data: bytes
    entry: str
    text: str


@cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Return Noto Sans CJK JP at a pixel size."""
    return ImageFont.truetype(str(FONT_FILES[bold]), max(size, 6), index=0)


_TOKENS = re.compile(r"[A-Za-z0-9'.,!?\-]+ ?| |.")
_NO_LINE_START = set("。、.,!?）」")


def wrap(text: str, face: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Break a text into lines no wider than width: Latin at spaces, Japanese anywhere."""
    lines: list[str] = []
    line = ""
    for token in _TOKENS.findall(text):
        candidate = line + token
        if line and face.getlength(candidate.rstrip()) > width and token[0] not in _NO_LINE_START:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line = candidate
    if line.strip():
        lines.append(line.rstrip())
    return lines


class Canvas:
    """An RGB image with drawing helpers in points, and a log of every text drawn."""

    def __init__(self, image: Image.Image, scale: float) -> None:
        self.image = image
        self.scale = scale
        self.draw = ImageDraw.Draw(image)
        self.texts: list[str] = []

    def px(self, points: float) -> int:
        """Convert points to pixels."""
        return round(points * self.scale)

    def box(self, x: float, y: float, w: float, h: float) -> Box:
        """Convert a box in points to pixel corners."""
        return (self.px(x), self.px(y), self.px(x + w), self.px(y + h))

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        fill: RGB,
        *,
        bold: bool = False,
        anchor: str = "la",
    ) -> None:
        """Draw a line of text at a point, anchored as in Pillow."""
        face = font(self.px(size), bold)
        self.draw.text((self.px(x), self.px(y)), text, font=face, fill=fill, anchor=anchor)
        self.texts.append(text)

    def paragraph(
        self,
        cx: float,
        y: float,
        width: float,
        text: str,
        size: float,
        leading: float,
        fill: RGB,
        *,
        bold: bool = False,
        centered: bool = True,
    ) -> float:
        """Draw wrapped text from y (centred on cx, or left-aligned at cx); return the end y."""
        if not text:
            return y
        lines = wrap(text, font(self.px(size), bold), self.px(width))
        for line in lines:
            self.text(cx, y, line, size, fill, bold=bold, anchor="ma" if centered else "la")
            y += leading
        self.texts[len(self.texts) - len(lines) :] = [text]
        return y

    def lines_height(
        self, text: str, width: float, size: float, leading: float, bold: bool
    ) -> float:
        """Return the height in points that paragraph() will use."""
        if not text:
            return 0.0
        return leading * len(wrap(text, font(self.px(size), bold), self.px(width)))


def wallpaper(size: tuple[int, int], rng: random.Random, dark: bool) -> Image.Image:
    """Return a smooth colourful background: a gradient with soft blobs, blurred."""
    small = (max(size[0] // 8, 8), max(size[1] // 8, 8))
    top = random_color(rng, dark)
    bottom = random_color(rng, dark)
    gradient = Image.linear_gradient("L").resize(small)
    image = Image.composite(Image.new("RGB", small, bottom), Image.new("RGB", small, top), gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        r = rng.uniform(0.1, 0.35) * max(small)
        x, y = rng.uniform(0, small[0]), rng.uniform(0, small[1])
        draw.ellipse((x - r, y - r, x + r, y + r), fill=random_color(rng, dark))
    image = image.filter(ImageFilter.GaussianBlur(max(small) / 12))
    return image.resize(size, Image.Resampling.BICUBIC)


def random_color(rng: random.Random, dark: bool) -> RGB:
    """Return a random saturated colour, darker for dark mode."""
    low, high = (20, 140) if dark else (80, 240)
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def shade(image: Image.Image, box: Box, color: RGB, alpha: float, radius: int = 0) -> None:
    """Blend a (rounded) rectangle of a colour over part of an image, in place."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).rounded_rectangle(box, radius, fill=(*color, round(alpha * 255)))
    image.paste(Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB"))


def drop_shadow(image: Image.Image, box: Box, radius: int, blur: float) -> None:
    """Darken the surroundings of a window as a soft shadow, in place."""
    # Blurred at a quarter of the size: the shadow is smooth anyway, and that is much faster.
    k = 4
    mask = Image.new("L", (image.width // k + 1, image.height // k + 1), 0)
    x0, y0, x1, y1 = (v // k for v in box)
    offset = round(blur / 3 / k)
    ImageDraw.Draw(mask).rounded_rectangle(
        (x0, y0 + offset, x1, y1 + offset), radius // k, fill=110
    )
    mask = mask.filter(ImageFilter.GaussianBlur(blur / k))
    mask = mask.resize((mask.width * k, mask.height * k), Image.Resampling.BILINEAR)
    mask = mask.crop((0, 0, *image.size))
    image.paste(Image.new("RGB", image.size, (0, 0, 0)), (0, 0), mask)


def render_ios(dialog: Dialog, v: Variant, rng: random.Random) -> tuple[Image.Image, Box, Canvas]:
    """Draw an iPhone home screen, dimmed, with a system alert in the middle."""
    w, h = SCREENS[Style.IOS]
    c = Canvas(wallpaper((round(w * v.scale), round(h * v.scale)), rng, v.dark), v.scale)
    words = WORDS[dialog.lang]
    white: RGB = (255, 255, 255)
    c.text(40, 16, "9:41", 15, white, bold=True, anchor="ma")
    c.draw.rounded_rectangle(c.box(w - 48, 17, 24, 11), c.px(3), outline=white, width=c.px(1))
    for i, name in enumerate(words.apps):
        col, row = i % 4, i // 4
        ix, iy = 27.0 + col * 88, 70.0 + row * 100
        c.draw.rounded_rectangle(c.box(ix, iy, 60, 60), c.px(13), fill=random_color(rng, v.dark))
        c.text(ix + 30, iy + 66, name, 11, white, anchor="ma")

    shade(c.image, (0, 0, *c.image.size), (0, 0, 0), 0.45 if v.dark else 0.25)
    card_w, pad = 270.0, 19.0
    title_h = c.lines_height(dialog.title, card_w - 32, 17, 22, True)
    body_h = c.lines_height(dialog.body, card_w - 32, 13, 17, False)
    card_h = pad + title_h + (4 + body_h if body_h else 0) + pad + 44
    x0, y0 = (w - card_w) / 2, (h - card_h) / 2
    card = c.box(x0, y0, card_w, card_h)
    ink: RGB = (255, 255, 255) if v.dark else (0, 0, 0)
    c.draw.rounded_rectangle(card, c.px(14), fill=(37, 37, 37) if v.dark else (240, 240, 242))
    y = c.paragraph(w / 2, y0 + pad, card_w - 32, dialog.title, 17, 22, ink, bold=True)
    c.paragraph(w / 2, y + 4, card_w - 32, dialog.body, 13, 17, ink)
    line: RGB = (70, 70, 72) if v.dark else (200, 200, 204)
    sep_y = y0 + card_h - 44
    c.draw.line([c.box(x0, sep_y, card_w, 0)[:2], c.box(x0, sep_y, card_w, 0)[2:]], line, c.px(0.5))
    blue = BLUE[v.dark]
    if v.buttons == 1:
        c.text(w / 2, sep_y + 22, words.ok, 17, blue, bold=True, anchor="mm")
    else:
        c.draw.line([c.box(w / 2, sep_y, 0, 44)[:2], c.box(w / 2, sep_y, 0, 44)[2:]], line, 1)
        c.text(x0 + card_w / 4, sep_y + 22, words.settings, 17, blue, anchor="mm")
        c.text(x0 + 3 * card_w / 4, sep_y + 22, words.ok, 17, blue, bold=True, anchor="mm")
    return c.image, card, c


def cloud_icon(c: Canvas, x: float, y: float, size: float) -> None:
    """Draw a blue cloud, roughly the iCloud icon, with its top-left corner at (x, y)."""
    blue = (52, 152, 235)
    s = size / 64
    for cx, cy, r in ((24, 36, 12), (36, 30, 15), (48, 38, 10)):
        c.draw.ellipse(c.box(x + (cx - r) * s, y + (cy - r) * s, 2 * r * s, 2 * r * s), fill=blue)
    c.draw.rectangle(c.box(x + 14 * s, y + 36 * s, 36 * s, 12 * s), fill=blue)


def render_mac(dialog: Dialog, v: Variant, rng: random.Random) -> tuple[Image.Image, Box, Canvas]:
    """Draw a macOS desktop with its menu bar and a modern alert window."""
    w, h = SCREENS[Style.MAC]
    c = Canvas(wallpaper((round(w * v.scale), round(h * v.scale)), rng, v.dark), v.scale)
    words = WORDS[dialog.lang]
    bar: RGB = (30, 30, 30) if v.dark else (235, 235, 235)
    shade(c.image, c.box(0, 0, w, 24), bar, 0.75)
    ink: RGB = (255, 255, 255) if v.dark else (0, 0, 0)
    x = 40.0
    for i, item in enumerate(words.menu):
        c.text(x, 12, item, 13, ink, bold=i == 0, anchor="lm")
        x += font(c.px(13), i == 0).getlength(item) / v.scale + 20
    c.text(w - 20, 12, "9:41", 13, ink, anchor="rm")

    win_w, pad = 260.0, 20.0
    title_h = c.lines_height(dialog.title, win_w - 32, 13, 17, True)
    body_h = c.lines_height(dialog.body, win_w - 32, 11, 14, False)
    win_h = pad + 64 + 12 + title_h + (6 + body_h if body_h else 0) + 20 + 24 * v.buttons + 16
    x0, y0 = (w - win_w) / 2, h * 0.3
    window = c.box(x0, y0, win_w, win_h)
    drop_shadow(c.image, window, c.px(10), c.px(18))
    c.draw = ImageDraw.Draw(c.image)
    c.draw.rounded_rectangle(window, c.px(10), fill=(48, 48, 50) if v.dark else (236, 236, 236))
    cloud_icon(c, w / 2 - 32, y0 + pad, 64)
    y = c.paragraph(w / 2, y0 + pad + 76, win_w - 32, dialog.title, 13, 17, ink, bold=True)
    c.paragraph(w / 2, y + 6, win_w - 32, dialog.body, 11, 14, ink)
    by = y0 + win_h - 16 - 24 * v.buttons
    c.draw.rounded_rectangle(c.box(x0 + 16, by, win_w - 32, 20), c.px(5), fill=BLUE[v.dark])
    c.text(w / 2, by + 10, words.ok, 13, (255, 255, 255), anchor="mm")
    if v.buttons == 2:
        grey: RGB = (90, 90, 92) if v.dark else (255, 255, 255)
        c.draw.rounded_rectangle(c.box(x0 + 16, by + 24, win_w - 32, 20), c.px(5), fill=grey)
        c.text(w / 2, by + 34, words.cancel, 13, ink, anchor="mm")
    return c.image, window, c


def render_windows(
    dialog: Dialog, v: Variant, rng: random.Random
) -> tuple[Image.Image, Box, Canvas]:
    """Draw a Windows desktop with its taskbar and an iCloud for Windows message box."""
    w, h = SCREENS[Style.WINDOWS]
    c = Canvas(wallpaper((round(w * v.scale), round(h * v.scale)), rng, v.dark), v.scale)
    words = WORDS[dialog.lang]
    shade(c.image, c.box(0, h - 48, w, 48), (32, 32, 32) if v.dark else (238, 238, 238), 0.9)
    ink: RGB = (255, 255, 255) if v.dark else (0, 0, 0)
    c.text(w - 24, h - 24, "12:34", 12, ink, anchor="rm")

    win_w = 440.0
    text_w = win_w - 24 - 40 - 24
    title_h = c.lines_height(dialog.title, text_w, 15, 22, False)
    body_h = c.lines_height(dialog.body, text_w, 12, 17, False)
    content_h = max(24 + title_h + (8 + body_h if body_h else 0) + 24, 96)
    win_h = 32 + content_h + 50
    x0, y0 = (w - win_w) / 2, (h - win_h) / 2 - 40
    window = c.box(x0, y0, win_w, win_h)
    drop_shadow(c.image, window, c.px(8), c.px(14))
    c.draw = ImageDraw.Draw(c.image)
    body_bg: RGB = (43, 43, 43) if v.dark else (255, 255, 255)
    footer_bg: RGB = (32, 32, 32) if v.dark else (240, 240, 240)
    c.draw.rounded_rectangle(window, c.px(8), fill=footer_bg)
    c.draw.rectangle(c.box(x0, y0 + 32, win_w, content_h), fill=body_bg)
    cloud_icon(c, x0 + 10, y0 + 6, 20)
    c.text(x0 + 38, y0 + 16, "iCloud", 12, ink, anchor="lm")
    cx, cy, r = x0 + win_w - 23, y0 + 16, 5
    c.draw.line([c.box(cx - r, cy - r, 0, 0)[:2], c.box(cx + r, cy + r, 0, 0)[:2]], ink, c.px(1))
    c.draw.line([c.box(cx - r, cy + r, 0, 0)[:2], c.box(cx + r, cy - r, 0, 0)[:2]], ink, c.px(1))
    icon_y = y0 + 32 + 24
    c.draw.ellipse(c.box(x0 + 24, icon_y, 32, 32), fill=(0, 120, 212))
    c.text(x0 + 40, icon_y + 16, "i", 20, (255, 255, 255), bold=True, anchor="mm")
    heading: RGB = (153, 204, 255) if v.dark else (0, 51, 153)
    tx = x0 + 24 + 40
    y = c.paragraph(tx, icon_y, text_w, dialog.title, 15, 22, heading, centered=False)
    c.paragraph(tx, y + 8, text_w, dialog.body, 12, 17, ink, centered=False)
    fy = y0 + 32 + content_h + 12
    labels = [words.ok] if v.buttons == 1 else [words.ok, words.cancel]
    bx = x0 + win_w - 12 - 88 * len(labels) - 8 * (len(labels) - 1)
    for i, label in enumerate(labels):
        face: RGB = (60, 60, 60) if v.dark else (225, 225, 225)
        border: RGB = BLUE[v.dark] if i == 0 else (173, 173, 173)
        c.draw.rounded_rectangle(c.box(bx, fy, 88, 26), c.px(4), fill=face, outline=border)
        c.text(bx + 44, fy + 13, label, 12, ink, anchor="mm")
        bx += 96
    return c.image, window, c


RENDERERS = {Style.IOS: render_ios, Style.MAC: render_mac, Style.WINDOWS: render_windows}


def frame(image: Image.Image, dialog_box: Box, v: Variant, rng: random.Random) -> Image.Image:
    """Keep the whole screen, or crop around the dialog the way people crop screenshots."""
    if v.full_screen:
        return image
    x0, y0, x1, y1 = dialog_box
    margin = [round(rng.uniform(4, 60) * v.scale) for _ in range(4)]
    box = (
        max(x0 - margin[0], 0),
        max(y0 - margin[1], 0),
        min(x1 + margin[2], image.width),
        min(y1 + margin[3], image.height),
    )
    return image.crop(box)


def degrade(image: Image.Image, v: Variant, seed: int) -> Image.Image:
    """Add sensor-like grain, as in a re-shared or photographed screenshot."""
    if v.noise <= 0:
        return image
    pixels = np.asarray(image, dtype=np.float32)
    grain = np.random.default_rng(seed).standard_normal(pixels.shape[:2], dtype=np.float32)
    pixels += v.noise * grain[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, quality: int | None) -> bytes:
    """Encode as JPEG at a quality, or as PNG."""
    out = io.BytesIO()
    if quality is None:
        image.save(out, "PNG", compress_level=1)
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def pick_variant(style: Style, dark: bool, rng: random.Random) -> Variant:
    """Draw the capture conditions of one screenshot."""
    scale = rng.choice(SCALES[style])
    full_screen = rng.random() < 0.35
    quality = None if rng.random() < 0.3 else rng.choice((45, 60, 75, 85, 95))
    noise = rng.choice((0.0, 0.0, 2.0, 4.0, 6.0))
    # A PNG is the screenshot as saved; grain comes with re-encoding or photographing a screen.
    return Variant(
        style=style,
        dark=dark,
        scale=scale,
        full_screen=full_screen,
        quality=quality,
        noise=noise if quality is not None else 0.0,
        buttons=rng.choice((1, 1, 2)),
    )


def render(dialog: Dialog, variant: Variant, seed: int) -> Screenshot:
    """Draw, frame, degrade and encode one screenshot."""
    rng = random.Random(seed)
    image, box, canvas = RENDERERS[variant.style](dialog, variant, rng)
    image = degrade(frame(image, box, variant, rng), variant, seed)
    name = f"{variant.label()}-{dialog.lang}-{dialog.entry}-{seed}"
    return Screenshot(name, encode(image, variant.quality), dialog.entry, "\n".join(canvas.texts))


def screenshots(seed: int = 0, *, variants: int = 1) -> list[Screenshot]:
    """Return every dialog in every style, `variants` times, half of them in dark mode."""
    rng = random.Random(seed)
    shots: list[Screenshot] = []
    for round_ in range(variants):
        for d, dialog in enumerate(DIALOGS):
            for s, style in enumerate(Style):
                # DIALOGS alternate ja/en per entry: every style gets both themes in both
                # languages, and every entry both themes in every style.
                dark = (d // 2 + d % 2 + s + round_ + seed) % 2 == 1
                variant = pick_variant(style, dark, rng)
                shots.append(render(dialog, variant, rng.randrange(2**31)))
    return shots


def generate(seed: int = 0) -> list[tuple[str, bytes, str]]:
    """Return (name, encoded image, expected entry id) for 30 screenshots."""
    return [(s.name, s.data, s.entry) for s in screenshots(seed)]


def main(argv: Sequence[str]) -> None:
    """Write one set of screenshots into a folder, to look at them."""
    out = Path(argv[0] if argv else "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    for shot in screenshots(int(argv[1]) if len(argv) > 1 else 0):
        suffix = ".png" if shot.data.startswith(b"\x89PNG") else ".jpg"
        (out / f"{shot.name}{suffix}").write_bytes(shot.data)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
