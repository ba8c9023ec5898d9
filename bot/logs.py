"""Logging set-up: one format, quiet HTTP clients, and the bot token never written out.

Everything the process writes about an error goes through the redacting handler: log records
(their tracebacks too), uncaught exceptions (sys.excepthook, threads), warnings, and asyncio's
"exception was never retrieved" reports (they are log records of the `asyncio` logger).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from types import TracebackType

# Bot API URLs carry the token ("/bot123:ABC/getUpdates"); scrub anything shaped like one.
_TOKEN_SHAPE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,}")
PLACEHOLDER = "<token>"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Replace the secrets, and anything shaped like a bot token, with a placeholder."""
    cleaned = _TOKEN_SHAPE.sub(PLACEHOLDER, text)
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, PLACEHOLDER)
            # The part after the colon identifies the bot on its own.
            _, _, key = secret.partition(":")
            if len(key) >= 20:
                cleaned = cleaned.replace(key, PLACEHOLDER)
    return cleaned


class RedactTokens(logging.Filter):
    """Replace bot tokens in a record's final message and traceback with a placeholder."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            scrubbed = redact(text, self._secrets)
            if scrubbed != text:
                record.exc_text, record.exc_info = None, None
                record.msg = f"{record.msg}\n{scrubbed}"
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    """Report an exception nobody caught through the (redacting) log, not bare stderr."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:
        return
    logging.getLogger("bot").critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def setup_logging(level: str = "INFO", secrets: tuple[str, ...] = ()) -> None:
    """Configure the root logger once for the whole process."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings too go through the redacting handler
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    # httpx logs every request URL, token included, at INFO.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # APScheduler (the JobQueue) logs two lines per job run at INFO: the status poller runs
    # every minute. Its warnings (a run skipped or missed) still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
