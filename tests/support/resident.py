"""The resident memory of this process's file mappings, read from /proc (Linux)."""

from __future__ import annotations

import re
from pathlib import Path

SMAPS = Path("/proc/self/smaps")


def resident_mb(name: str) -> float:
    """The resident size of this process's mappings whose path contains `name`, in MB."""
    kb, inside = 0, False
    for line in SMAPS.read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            inside = name in line
        elif inside and line.startswith("Rss:"):
            kb += int(line.split()[1])
    return kb / 1024
