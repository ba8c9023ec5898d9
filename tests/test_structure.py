"""The shape of the code: family boundaries and sizes that keep it readable.

- nothing in bot.conversation imports, directly or through other bot modules, an I/O library;
- python-telegram-bot is imported only inside bot/channels/telegram/;
- no module over 600 lines, no class over 300, no function over 80.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.support.paths import ROOT

BOT = ROOT / "bot"
IO_LIBRARIES = frozenset(
    {"telegram", "aiosqlite", "httpx", "aiohttp", "PIL", "subprocess", "sqlite3", "asyncpg"}
)
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(BOT.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (lazy imports included)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def closure(start: str, table: dict[str, Path]) -> dict[str, str]:
    """Every module reachable from `start` by imports, with the module that first imported it."""
    seen: dict[str, str] = {start: ""}
    todo = [start]
    while todo:
        name = todo.pop()
        for imported in imports_of(table[name]):
            target = imported if imported in table else None
            if target is None and not imported.startswith("bot"):
                seen.setdefault(imported, name)
                continue
            if target is not None and target not in seen:
                seen[target] = name
                todo.append(target)
    return seen


def top(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_conversation_does_no_io() -> None:
    table = modules()
    offenders = []
    for name in (n for n in table if n.startswith("bot.conversation")):
        for reached, via in closure(name, table).items():
            if top(reached) in IO_LIBRARIES:
                offenders.append(f"{name} reaches {reached} (imported by {via})")
    assert offenders == []


def test_only_the_telegram_channel_imports_telegram() -> None:
    table = modules()
    offenders = [
        f"{name} imports {imported}"
        for name, path in table.items()
        if not name.startswith("bot.channels.telegram")
        for imported in imports_of(path)
        if top(imported) == "telegram"
    ]
    assert offenders == []


def _sizes() -> list[str]:
    too_big = []
    for name, path in modules().items():
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            too_big.append(f"module {name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if isinstance(node, ast.ClassDef) and length > MAX_CLASS_LINES:
                too_big.append(f"class {name}.{node.name}: {length} lines")
            if not isinstance(node, ast.ClassDef) and length > MAX_FUNCTION_LINES:
                too_big.append(f"function {name}.{node.name}: {length} lines")
    return too_big


def test_modules_classes_and_functions_stay_small() -> None:
    assert _sizes() == []


if __name__ == "__main__":  # python -m tests.test_structure: what is too big now
    print("\n".join(_sizes()) or "all within limits")
    sys.exit(0)
