"""What the bot remembers about one user: values only, serialisable, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.content.knowledge import Device
from bot.content.languages import LANGUAGES

WRITTEN = "written"  # UserState.extra key: the language of the user's last message


class Outcome(StrEnum):
    """What happened at one fix of a walk (stored as readable text)."""

    STARTED = "started"  # a walk began (fix = the first fix)
    NEXT = "next"  # the user tried the fix and it did not help
    BACK = "back"  # the user went back from this fix
    SOLVED = "solved"  # this fix solved it
    EXHAUSTED = "exhausted"  # every fix was tried, none helped
    ABANDONED = "abandoned"  # the user started over or asked something else mid-walk


@dataclass(frozen=True, slots=True)
class Walk:
    """A walk through an entry's fixes for one device."""

    entry: str
    device: Device
    path: tuple[str, ...]
    position: int = 0
    message_id: int | None = None  # the message that carries this walk's buttons
    started_at: float = 0.0

    @property
    def fix(self) -> str | None:
        """Return the fix shown now, or None past the end."""
        return self.path[self.position] if 0 <= self.position < len(self.path) else None

    @property
    def done(self) -> bool:
        return self.position >= len(self.path)


@dataclass(frozen=True, slots=True)
class UserState:
    """Everything remembered about one user between two updates."""

    user_id: int
    lang: str | None = None  # chosen with /lang; None: follow Telegram's language_code
    device: Device | None = None  # remembered device; /device changes it
    walk: Walk | None = None
    pending_entry: str | None = None  # recognised entry waiting for the device answer
    extra: dict[str, Any] = field(default_factory=dict)  # room for later features

    def with_(self, **changes: Any) -> UserState:
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self) -> str:
        """Serialise everything but user_id, lang and device (stored as columns)."""
        walk = None
        if self.walk is not None:  # a dict literal: dataclasses.asdict deep-copies every field
            w = self.walk
            walk = {
                "entry": w.entry,
                "device": w.device,
                "path": list(w.path),
                "position": w.position,
                "message_id": w.message_id,
                "started_at": w.started_at,
            }
        data = {"walk": walk, "pending_entry": self.pending_entry, "extra": self.extra}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_row(cls, user_id: int, lang: str | None, device: str | None, blob: str) -> UserState:
        """Rebuild a state from its stored columns; unreadable parts are dropped, not fatal."""
        try:
            data = json.loads(blob) if blob else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        walk = None
        raw = data.get("walk")
        if isinstance(raw, dict):
            try:
                walk = Walk(
                    entry=str(raw["entry"]),
                    device=Device(raw["device"]),
                    path=tuple(str(f) for f in raw["path"]),
                    position=int(raw["position"]),
                    message_id=None if raw.get("message_id") is None else int(raw["message_id"]),
                    started_at=float(raw.get("started_at", 0.0)),
                )
            except (KeyError, TypeError, ValueError):
                walk = None
        try:
            dev = Device(device) if device else None
        except ValueError:
            dev = None
        pending = data.get("pending_entry")
        extra = data.get("extra")
        return cls(
            user_id=user_id,
            lang=lang if lang in LANGUAGES else None,
            device=dev,
            walk=walk,
            pending_entry=pending if isinstance(pending, str) else None,
            extra=extra if isinstance(extra, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One line of a user's history: at this fix of this entry, this happened."""

    user_id: int
    entry: str
    device: Device
    fix: str | None
    outcome: Outcome
    at: float
