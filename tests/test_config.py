"""Settings from the environment: defaults, validation, the token kept out of repr."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.config import DEFAULT_API_BASE_URL, Settings, cache_dir
from bot.errors import ConfigError
from tests.support.paths import ROOT

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_defaults() -> None:
    s = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert s.api_base_url == DEFAULT_API_BASE_URL
    assert s.api_file_url == "https://api.telegram.org/file/bot"
    assert s.db_path == Path("data/bot.sqlite3")
    assert s.admin_ids == frozenset()
    assert s.log_level == "INFO"


def test_token_never_in_repr() -> None:
    s = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert TOKEN not in repr(s)
    assert "AAHdq" not in str(s)


def test_everything_set() -> None:
    s = Settings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
            "BOT_DB_PATH": "/tmp/x.sqlite3",
            "BOT_ADMIN_IDS": "1, 22 ,333",
            "LOG_LEVEL": "debug",
        }
    )
    assert s.api_base_url == "http://127.0.0.1:8081/bot"
    assert s.api_file_url == "http://127.0.0.1:8081/file/bot"
    assert s.db_path == Path("/tmp/x.sqlite3")
    assert s.admin_ids == {1, 22, 333}
    assert s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is not set"),
        ({"TELEGRAM_BOT_TOKEN": "nonsense"}, "TELEGRAM_BOT_TOKEN is malformed"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "BOT_ADMIN_IDS": "1,x"}, "BOT_ADMIN_IDS"),
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": "ftp://x"},
            "TELEGRAM_API_BASE_URL",
        ),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_token_optional_for_terminal_use() -> None:
    assert Settings.from_env({}, need_token=False).token == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", True), ("on", True), ("ON", True), ("1", True), ("off", False), (" no ", False)],
)
def test_learning_switch(value: str, expected: bool) -> None:
    env = {"BOT_LEARNING": value} if value else {}
    assert Settings.from_env(env, need_token=False).learning is expected


def test_learning_switch_names_itself_when_wrong() -> None:
    with pytest.raises(ConfigError, match="BOT_LEARNING must be on or off"):
        Settings.from_env({"BOT_LEARNING": "sometimes"}, need_token=False)


def test_support_group_and_history_days() -> None:
    defaults = Settings.from_env({}, need_token=False)
    assert defaults.support_chat_id is None and defaults.history_days == 90
    settings = Settings.from_env(
        {"SUPPORT_CHAT_ID": " -1001234567890 ", "BOT_HISTORY_DAYS": "30"}, need_token=False
    )
    assert settings.support_chat_id == -1001234567890 and settings.history_days == 30


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SUPPORT_CHAT_ID": "@operators"}, "SUPPORT_CHAT_ID must be the numeric id"),
        ({"SUPPORT_CHAT_ID": "0"}, "SUPPORT_CHAT_ID"),
        ({"SUPPORT_CHAT_ID": "-1.5"}, "SUPPORT_CHAT_ID"),
        ({"BOT_HISTORY_DAYS": "0"}, "BOT_HISTORY_DAYS must be a whole number of days"),
        ({"BOT_HISTORY_DAYS": "-3"}, "BOT_HISTORY_DAYS"),
        ({"BOT_HISTORY_DAYS": "2.5"}, "BOT_HISTORY_DAYS"),
        ({"BOT_HISTORY_DAYS": "٣"}, "BOT_HISTORY_DAYS"),
    ],
)
def test_operator_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, need_token=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "en"), ("ja_JP.UTF-8", "ja"), ("ja", "ja"), ("en_US.UTF-8", "en"), ("C.UTF-8", "en")],
)
def test_language_of_the_terminal_from_lang(value: str, expected: str) -> None:
    env = {"LANG": value} if value else {}
    assert Settings.from_env(env, need_token=False).lang == expected


# Reading os.environ to hand a child process its environment is not configuration.
_FORWARDS_THE_ENVIRONMENT = {"bot/ocr.py"}


def test_settings_is_the_only_reader_of_the_environment() -> None:
    """Nothing but bot/config.py reads the environment, and nothing writes it."""
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("getenv", "putenv", "environ"):
                if name == "bot/config.py" and node.attr == "environ":
                    continue
                if name in _FORWARDS_THE_ENVIRONMENT and node.attr == "environ":
                    continue
                offenders.append(f"{name}:{node.lineno}: os.{node.attr}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "setdefault",
                "update",
                "pop",
                "__setitem__",
            ):
                target = node.func.value  # type: ignore[attr-defined]
                if isinstance(target, ast.Attribute) and target.attr == "environ":
                    offenders.append(f"{name}:{node.lineno}: writes os.environ")
    assert offenders == []


def test_an_operators_malloc_arena_max_is_left_to_glibc() -> None:
    # Unset, `python -m bot` gives every thread one arena (bot/heap.py); set, glibc's own.
    assert not Settings.from_env({}, need_token=False).own_malloc_arenas
    assert Settings.from_env({"MALLOC_ARENA_MAX": "4"}, need_token=False).own_malloc_arenas


def test_webhook_settings_defaults_and_values() -> None:
    default = Settings.from_env({}, need_token=False).webhook
    assert (default.secret, default.url, default.host, default.port) == (
        "",
        None,
        "127.0.0.1",
        8080,
    )
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET is not set"):
        default.require_secret()
    hook = Settings.from_env(
        {
            "TELEGRAM_WEBHOOK_SECRET": "s3cret_-X",
            "TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram",
            "BOT_HOST": "0.0.0.0",
            "BOT_PORT": "8443",
        },
        need_token=False,
    ).webhook
    hook.require_secret()
    assert (hook.url, hook.host, hook.port) == ("https://bot.example/telegram", "0.0.0.0", 8443)
    assert "s3cret" not in repr(hook)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TELEGRAM_WEBHOOK_SECRET": "has space"}, "TELEGRAM_WEBHOOK_SECRET must be"),
        ({"TELEGRAM_WEBHOOK_SECRET": "x" * 257}, "TELEGRAM_WEBHOOK_SECRET must be"),
        ({"TELEGRAM_WEBHOOK_URL": "bot.example/telegram"}, "TELEGRAM_WEBHOOK_URL must start"),
        ({"BOT_PORT": "80a"}, "BOT_PORT must be a port number"),
        ({"BOT_PORT": "70000"}, "BOT_PORT must be a port number"),
    ],
)
def test_webhook_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env, need_token=False)
    assert "has space" not in str(caught.value)  # a secret is never echoed


def test_support_operators() -> None:
    assert Settings.from_env({}, need_token=False).support_operator_ids is None
    settings = Settings.from_env({"SUPPORT_OPERATOR_IDS": " 7, 42 ,"}, need_token=False)
    assert settings.support_operator_ids == {7, 42}
    with pytest.raises(ConfigError, match="SUPPORT_OPERATOR_IDS must be comma-separated"):
        Settings.from_env({"SUPPORT_OPERATOR_IDS": "7,@bob"}, need_token=False)


def test_the_cache_folder() -> None:
    assert cache_dir({"BOT_CACHE_DIR": "/srv/cache"}) == Path("/srv/cache")
    assert cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/icloud-support-bot")
    assert cache_dir({}) == Path.home() / ".cache" / "icloud-support-bot"
