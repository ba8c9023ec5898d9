"""Logging set-up: one format, quiet HTTP clients, and the bot token never written out."""

from __future__ import annotations

import logging
import re

# Bot API URLs carry the token ("/bot123:ABC/getUpdates"); scrub anything shaped like one.
_TOKEN_SHAPE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,}")


class RedactTokens(logging.Filter):
    """Replace bot tokens in a record's final message with a placeholder."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _TOKEN_SHAPE.sub("<token>", message)
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "<token>")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            scrubbed = _TOKEN_SHAPE.sub("<token>", text)
            for secret in self._secrets:
                scrubbed = scrubbed.replace(secret, "<token>")
            if scrubbed != text:
                record.exc_text, record.exc_info = scrubbed, None
                record.msg = f"{record.msg}\n{scrubbed}"
        return True


def setup_logging(level: str = "INFO", secrets: tuple[str, ...] = ()) -> None:
    """Configure the root logger once for the whole process."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, token included, at INFO.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # APScheduler (the JobQueue) logs two lines per job run at INFO: the status poller runs
    # every minute. Its warnings (a run skipped or missed) still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
