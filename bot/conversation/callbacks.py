"""Encode and validate the callback data carried by inline buttons (at most 64 bytes).

A button carries everything needed to act on it without server-side memory, so buttons on old
messages keep working after a restart: `action|entry|device|fix`. Anything that does not parse
or names something the knowledge base does not know is rejected as forged or stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique

from bot.content.knowledge import Device, Knowledge
from bot.content.languages import LANGUAGES

MAX_BYTES = 64
_SEP = "|"
_DEVICE_CODES = {Device.IPHONE: "i", Device.MAC: "m", Device.WINDOWS: "w"}
_CODE_DEVICES = {code: device for device, code in _DEVICE_CODES.items()}


@unique  # two actions sharing a value would silently alias each other
class Action(StrEnum):
    """What a button does; the one-letter values keep the data short."""

    NEXT = "n"  # entry, device, fix: the fix did not help, show the next one
    BACK = "b"  # entry, device, fix: show the fix before this one
    SOLVED = "s"  # entry, device, fix: this fix solved it
    SHOW = "f"  # entry, device, fix: show this fix again (back from the end of a walk)
    DEVICE = "d"  # entry, device: the device for this entry, start walking
    ENTRY = "e"  # entry: the user picked an entry (did-you-mean, common errors)
    WALK = "w"  # entry: walk the fixes of an entry (after a FAQ answer)
    NONE = "x"  # none of the suggestions fit
    RESTART = "r"  # start over
    LANG = "l"  # lang: switch language
    SET_DEVICE = "v"  # device: remember the device (/device)
    NOTIFY = "sn"  # entry, device: message me when Apple's outage is over (live status)
    HANDOVER = "ho"  # entry, device: talk to a person about this entry (support group)
    FORGET = "fg"  # confirmed /forget: delete everything stored about the user
    KEEP = "fk"  # cancelled /forget: delete nothing
    CHANGE_DEVICE = "cd"  # ask which device (as /device does); a walk in progress is redrawn


_SHAPES: dict[Action, tuple[str, ...]] = {
    Action.NEXT: ("entry", "device", "fix"),
    Action.BACK: ("entry", "device", "fix"),
    Action.SOLVED: ("entry", "device", "fix"),
    Action.SHOW: ("entry", "device", "fix"),
    Action.DEVICE: ("entry", "device"),
    Action.ENTRY: ("entry",),
    Action.WALK: ("entry",),
    Action.NONE: (),
    Action.RESTART: (),
    Action.LANG: ("lang",),
    Action.SET_DEVICE: ("device",),
    Action.NOTIFY: ("entry", "device"),
    Action.HANDOVER: ("entry", "device"),
    Action.FORGET: (),
    Action.KEEP: (),
    Action.CHANGE_DEVICE: (),
}


@dataclass(frozen=True, slots=True)
class Callback:
    """A decoded, validated button press."""

    action: Action
    entry: str | None = None
    device: Device | None = None
    fix: str | None = None
    lang: str | None = None

    def encode(self) -> str:
        """Return the callback_data string; raise ValueError if it would exceed 64 bytes."""
        parts = [self.action.value]
        for name in _SHAPES[self.action]:
            value = getattr(self, name)
            if value is None:
                raise ValueError(f"{self.action.name} needs {name}")
            parts.append(_DEVICE_CODES[value] if name == "device" else str(value))
        data = _SEP.join(parts)
        if len(data.encode("utf-8")) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data


def parse(data: str | None) -> Callback | None:
    """Parse callback data without checking it against the knowledge base (None: malformed).

    The engine uses it to recognise a button of the walk in progress whose entry or fix was
    removed by a reload since the button was shown.
    """
    if not data or len(data.encode("utf-8", "replace")) > MAX_BYTES:
        return None
    head, *rest = data.split(_SEP)
    try:
        action = Action(head)
    except ValueError:
        return None
    shape = _SHAPES[action]
    if len(rest) != len(shape) or any(not value for value in rest):
        return None
    values = dict(zip(shape, rest, strict=True))
    device = None
    if "device" in values:
        device = _CODE_DEVICES.get(values["device"])
        if device is None:
            return None
    lang = values.get("lang")
    if lang is not None and lang not in LANGUAGES:
        return None
    return Callback(action, values.get("entry"), device, values.get("fix"), lang)


def decode(data: str | None, knowledge: Knowledge) -> Callback | None:
    """Parse and validate callback data; return None for anything forged, stale or malformed."""
    cb = parse(data)
    if cb is None:
        return None
    if cb.entry is not None and cb.entry not in knowledge.entries:
        return None
    if cb.fix is not None:
        if cb.fix not in knowledge.fixes or cb.entry is None or cb.device is None:
            return None
        if cb.fix not in knowledge.path_for(cb.entry, cb.device):
            return None
    return cb
