"""Where the project's folders are, for tests at any depth of the tree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
KNOWLEDGE = ROOT / "knowledge"
LOCALES = ROOT / "locales"
