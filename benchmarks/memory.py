"""A process's memory from /proc: RSS, PSS, USS, and where it goes, mapping by mapping.

* RSS (VmRSS): every page mapped into the process, its own or shared, file-backed or not.
* PSS: the same, each shared page divided by the processes that map it.
* USS: only the pages no other process maps (Private_Clean + Private_Dirty): what ending the
  process would give back.
* anonymous: Python's objects, numpy arrays, malloc's arenas, thread stacks; file-backed:
  code, and files mapped read-only (the Sudachi dictionary). File-backed clean pages are in
  the RSS, but the kernel can drop them under pressure and read them again when touched.

smaps_rollup sums the process in one read (cheap: a few ms); smaps, read for the breakdown,
walks every mapping (tens of ms): a benchmark reads it once, at the end of a phase.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

# Where a mapping's pages are counted in the breakdown, by the mapped file's name.
GROUPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Sudachi dictionary (file, mmap)", re.compile(r"sudachidict_\w+/resources/.*\.dic$")),
    ("encoder embedding table (file, mmap)", re.compile(r"usem3[-\w.]*\.table$")),
    ("shared libraries and extensions (file)", re.compile(r"\.so(\.[\d.]+)?$")),
)
ANONYMOUS = "anonymous: Python objects, arrays, malloc arenas, stacks"
OTHER_FILES = "other files"
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def rollup(pid: int | str = "self") -> dict[str, float]:
    """Return rss, pss, uss, anon and file (resident, file-backed) in MB, and the peak RSS."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        kb[key] = int(rest.split()[0])
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1])
    mb = {
        "rss_mb": kb["Rss"],
        "pss_mb": kb["Pss"],
        "uss_mb": kb["Private_Clean"] + kb["Private_Dirty"],
        "anon_mb": kb["Anonymous"],
        "file_mb": kb["Rss"] - kb["Anonymous"] - kb.get("Shmem", 0),
        "peak_rss_mb": peak,
    }
    return {key: round(value / 1024, 1) for key, value in mb.items()}


def group_of(name: str) -> str:
    """Return the breakdown group of a mapping, from what it maps ("" or [heap]: anonymous)."""
    if not name or name.startswith("["):
        return ANONYMOUS
    for group, pattern in GROUPS:
        if pattern.search(name):
            return group
    return OTHER_FILES


def breakdown(pid: int | str = "self") -> dict[str, dict[str, float]]:
    """Return RSS, PSS and USS in MB per group of mappings (see GROUPS), largest RSS first."""
    totals: dict[str, Counter[str]] = {}
    counts: Counter[str] = Counter()
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if _MAPPING.match(line):
            parts = line.split(None, 5)
            counts = totals.setdefault(group_of(parts[5] if len(parts) > 5 else ""), Counter())
            continue
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            counts[key] += int(rest.split()[0])
    rows = {
        group: {
            "rss_mb": round(c["Rss"] / 1024, 1),
            "pss_mb": round(c["Pss"] / 1024, 1),
            "uss_mb": round((c["Private_Clean"] + c["Private_Dirty"]) / 1024, 1),
        }
        for group, c in totals.items()
    }
    return dict(sorted(rows.items(), key=lambda item: -item[1]["rss_mb"]))
