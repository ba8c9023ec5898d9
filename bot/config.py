"""Settings, read once from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.content.languages import LANGUAGES
from bot.errors import ConfigError

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_API_FILE_URL = "https://api.telegram.org/file/bot"
DEFAULT_DB_PATH = "data/bot.sqlite3"
# Apple's System Status feed; {locale} becomes en_US or ja_JP (bot/status.py).
DEFAULT_STATUS_URL = "https://www.apple.com/support/systemstatus/data/system_status_{locale}.js"
STATUS_OFF = "off"  # APPLE_STATUS_URL=off: no live status, the step shows its static text
MIN_STATUS_POLL_SECONDS = 60.0  # Apple's servers are polled at most once a minute
DEFAULT_HISTORY_DAYS = 90  # history lines older than this are deleted (BOT_HISTORY_DAYS)
# Files derived from installed packages, made once per machine (the encoder's unpacked table).
CACHE_FOLDER = "icloud-support-bot"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Telegram tokens look like "123456789:AA…" (bot id, colon, 30+ url-safe characters).
_TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,}$")
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")  # BOT_DATABASE_URL: PostgreSQL only
DEFAULT_HOST = "127.0.0.1"  # BOT_HOST: `serve` listens here (behind a proxy or balancer)
DEFAULT_PORT = 8080  # BOT_PORT
# Telegram's rule for setWebhook's secret_token: 1-256 of A-Z, a-z, 0-9, _ and -.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def redact_url(url: str) -> str:
    """Return the URL with its password, in the user part or the query, replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    # Replaced in place, not rebuilt: urlunsplit would drop the // of postgresql:///db.
    redacted = url.replace(parts.netloc, netloc, 1) if netloc != parts.netloc else url
    return redacted.replace(f"?{parts.query}", f"?{query}", 1) if query != parts.query else redacted


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where files derived from installed packages are kept: BOT_CACHE_DIR, else the user's
    cache folder ($XDG_CACHE_HOME, else ~/.cache) / icloud-support-bot."""
    env = os.environ if environ is None else environ
    chosen = env.get("BOT_CACHE_DIR", "").strip()
    if chosen:
        return Path(chosen)
    base = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / CACHE_FOLDER


class SecretUrl(str):
    """A database URL whose repr hides its password (it still connects as str)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact_url(self))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, validated; the token is redacted from repr."""

    token: str = field(repr=False, default="")
    api_base_url: str = DEFAULT_API_BASE_URL
    api_file_url: str = DEFAULT_API_FILE_URL
    db_path: Path = Path(DEFAULT_DB_PATH)
    admin_ids: frozenset[int] = frozenset()
    log_level: str = "INFO"
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    locales_dir: Path = PROJECT_ROOT / "locales"
    learning: bool = True  # BOT_LEARNING: order fixes within a stage by observed solve rate
    status_url: str | None = DEFAULT_STATUS_URL  # None: live status off
    status_poll_seconds: float = MIN_STATUS_POLL_SECONDS
    support_chat_id: int | None = None  # the operators' group; None: no handover to a person
    history_days: int = DEFAULT_HISTORY_DAYS
    # SUPPORT_OPERATOR_IDS: who in the support group is relayed as Support; None: any member
    support_operator_ids: frozenset[int] | None = None
    lang: str = LANGUAGES.default  # LANG: the language of `bot chat` and `bot stats`
    database_url: SecretUrl | None = None  # BOT_DATABASE_URL: PostgreSQL instead of BOT_DB_PATH
    webhook: WebhookSettings = field(default_factory=lambda: WebhookSettings())
    # BOT_LOOP_LAG_SECONDS: log the event loop's lag every so many seconds; None: off
    loop_lag_seconds: float | None = None
    # MALLOC_ARENA_MAX, glibc's own: when set, the bot leaves the C heap's arenas to it
    # (otherwise one arena for every thread: bot/heap.py)
    own_malloc_arenas: bool = False

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, need_token: bool = True
    ) -> Settings:
        """Read and validate the settings; raise ConfigError naming the variable at fault."""
        env = os.environ if environ is None else environ
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
        if need_token:
            if not token:
                raise ConfigError(
                    "TELEGRAM_BOT_TOKEN is not set: "
                    "create a bot with @BotFather and export its token"
                )
            if not _TOKEN_RE.match(token):
                raise ConfigError(
                    "TELEGRAM_BOT_TOKEN is malformed: expected '<digits>:<letters>' from @BotFather"
                )
        base_url = env.get("TELEGRAM_API_BASE_URL", "").strip() or DEFAULT_API_BASE_URL
        file_url = env.get("TELEGRAM_API_FILE_URL", "").strip() or _file_url_for(base_url)
        for name, url in (("TELEGRAM_API_BASE_URL", base_url), ("TELEGRAM_API_FILE_URL", file_url)):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must start with http:// or https:// (got {url!r})")
        admins = _user_ids(env, "BOT_ADMIN_IDS")
        operators = _user_ids(env, "SUPPORT_OPERATOR_IDS")
        level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in _LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)} (got {level!r})")
        db_path = Path(env.get("BOT_DB_PATH", "").strip() or DEFAULT_DB_PATH)
        learning = _switch(env, "BOT_LEARNING", default=True)
        status_url, status_poll_seconds = _status_settings(env)
        support_chat_id, history_days = _operator_settings(env)
        return cls(
            token=token,
            api_base_url=base_url,
            api_file_url=file_url,
            db_path=db_path,
            admin_ids=admins,
            log_level=level,
            knowledge_dir=Path(env.get("BOT_KNOWLEDGE_DIR", "") or PROJECT_ROOT / "knowledge"),
            locales_dir=Path(env.get("BOT_LOCALES_DIR", "") or PROJECT_ROOT / "locales"),
            learning=learning,
            status_url=status_url,
            status_poll_seconds=status_poll_seconds,
            support_chat_id=support_chat_id,
            history_days=history_days,
            support_operator_ids=operators or None,
            lang=LANGUAGES.pick(None, env.get("LANG")),
            database_url=_database_url(env),
            webhook=_webhook_settings(env),
            loop_lag_seconds=_loop_lag_seconds(env),
            own_malloc_arenas=bool(env.get("MALLOC_ARENA_MAX", "").strip()),
        )


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """`python -m bot serve`: where it listens, the secret Telegram sends, the URL it sets."""

    secret: str = field(repr=False, default="")  # TELEGRAM_WEBHOOK_SECRET (required by serve)
    url: str | None = None  # TELEGRAM_WEBHOOK_URL: registered with setWebhook at start-up
    host: str = DEFAULT_HOST  # BOT_HOST
    port: int = DEFAULT_PORT  # BOT_PORT

    def require_secret(self) -> None:
        """Raise ConfigError unless a secret is set (serve refuses to start without one)."""
        if not self.secret:
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET is not set: serve accepts only updates that carry it"
                " (1-256 characters: A-Z, a-z, 0-9, _ and -)"
            )


def _webhook_settings(env: Mapping[str, str]) -> WebhookSettings:
    """Read TELEGRAM_WEBHOOK_SECRET, TELEGRAM_WEBHOOK_URL, BOT_HOST and BOT_PORT."""
    secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip()
    if secret and not _SECRET_RE.match(secret):
        # Never echo it: it is a credential.
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
        )
    url = env.get("TELEGRAM_WEBHOOK_URL", "").strip() or None
    if url is not None and not url.startswith(("https://", "http://")):
        raise ConfigError(f"TELEGRAM_WEBHOOK_URL must start with https:// (got {url!r})")
    host = env.get("BOT_HOST", "").strip() or DEFAULT_HOST
    raw_port = env.get("BOT_PORT", "").strip() or str(DEFAULT_PORT)
    if not raw_port.isdigit() or not 0 <= int(raw_port) <= 65535:
        raise ConfigError(f"BOT_PORT must be a port number, 0-65535 (got {raw_port!r})")
    return WebhookSettings(secret, url, host, int(raw_port))


def _user_ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    """Read a comma-separated list of Telegram user ids."""
    ids: set[int] = set()
    for part in env.get(name, "").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.lstrip("-").isdigit():
            raise ConfigError(f"{name} must be comma-separated user ids (got {part!r})")
        ids.add(int(part))
    return frozenset(ids)


_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """Read an on/off variable (also true/false, yes/no, 1/0); empty means the default."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise ConfigError(f"{name} must be on or off (got {env.get(name)!r})")


def _file_url_for(base_url: str) -> str:
    """Derive the file download URL from the API URL (…/bot → …/file/bot)."""
    if base_url.endswith("/bot"):
        return base_url[: -len("bot")] + "file/bot"
    return DEFAULT_API_FILE_URL


def _status_settings(env: Mapping[str, str]) -> tuple[str | None, float]:
    """Read APPLE_STATUS_URL and APPLE_STATUS_POLL_SECONDS.

    The poll interval may go below 60 s only when the URL is not Apple's (a test server or a
    mirror), so tests can run the poller quickly while Apple is never asked more than once a
    minute.
    """
    url: str | None = env.get("APPLE_STATUS_URL", "").strip() or DEFAULT_STATUS_URL
    if url is not None and url.lower() == STATUS_OFF:
        url = None
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"APPLE_STATUS_URL must start with http:// or https://, or be 'off' (got {url!r})"
        )
    raw = env.get("APPLE_STATUS_POLL_SECONDS", "").strip()
    try:
        seconds = float(raw) if raw else MIN_STATUS_POLL_SECONDS
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):  # also rejects nan
        raise ConfigError(f"APPLE_STATUS_POLL_SECONDS must be a number of seconds (got {raw!r})")
    host = (urlsplit(url).hostname or "") if url is not None else ""
    is_apple = host == "apple.com" or host.endswith(".apple.com")
    if is_apple and seconds < MIN_STATUS_POLL_SECONDS:
        raise ConfigError(
            f"APPLE_STATUS_POLL_SECONDS must be at least {MIN_STATUS_POLL_SECONDS:.0f} for "
            f"Apple's feed (got {raw!r}); shorter intervals are for test servers and mirrors"
        )
    return url, seconds


def _operator_settings(env: Mapping[str, str]) -> tuple[int | None, int]:
    """Read SUPPORT_CHAT_ID and BOT_HISTORY_DAYS."""
    raw = env.get("SUPPORT_CHAT_ID", "").strip()
    support: int | None = None
    if raw:
        if not re.fullmatch(r"-?[0-9]{1,20}", raw) or int(raw) == 0:
            raise ConfigError(
                "SUPPORT_CHAT_ID must be the numeric id of the operators' group, "
                f"e.g. -1001234567890 (got {raw!r})"
            )
        support = int(raw)
    raw = env.get("BOT_HISTORY_DAYS", "").strip()
    if not raw:
        return support, DEFAULT_HISTORY_DAYS
    if not re.fullmatch(r"[0-9]{1,5}", raw) or int(raw) < 1:
        raise ConfigError(
            f"BOT_HISTORY_DAYS must be a whole number of days, 1 or more (got {raw!r})"
        )
    return support, int(raw)


def _loop_lag_seconds(env: Mapping[str, str]) -> float | None:
    """Read BOT_LOOP_LAG_SECONDS: unset or empty is off, else a period of 0.1 s or more."""
    raw = env.get("BOT_LOOP_LAG_SECONDS", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 86400:
        raise ConfigError(
            f"BOT_LOOP_LAG_SECONDS must be a number of seconds from 0.1 to 86400 (got {raw!r})"
        )
    return seconds


def _database_url(env: Mapping[str, str]) -> SecretUrl | None:
    """Read BOT_DATABASE_URL: unset or empty keeps SQLite at BOT_DB_PATH."""
    raw = env.get("BOT_DATABASE_URL", "").strip()
    if not raw:
        return None
    if not raw.startswith(DATABASE_URL_SCHEMES):
        # The value may carry a password: name the variable, never echo it.
        raise ConfigError(
            "BOT_DATABASE_URL must start with postgresql:// "
            "(e.g. postgresql://bot:PASSWORD@db.example:5432/bot), or be unset for SQLite"
        )
    return SecretUrl(raw)
