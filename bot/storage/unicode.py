"""Text that can be stored and sent: invalid Unicode (lone surrogates) replaced, never fatal."""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def valid_unicode(text: str) -> str:
    """Return `text` with each lone surrogate replaced by U+FFFD (valid text comes back as is).

    JSON may carry "\\ud800" on its own, and a terminal reads undecodable bytes as surrogates;
    neither can be encoded as UTF-8, so SQLite (and Telegram) would refuse them.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 pairs up split surrogates first; only the lone ones are replaced.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
