"""The C heap under Python's objects and numpy's arrays: one arena, freed pages given back.

glibc gives every thread that allocates while another holds the heap an arena of its own (up
to 8 per core), and keeps what a thread frees in its arena for its next allocation. The bot's
threads (two matching threads, the database's, the OCR pool's) each grew one: ~12 MB of RSS
after a burst of pastes that nothing would use again. One arena for the whole process, and
the freed pages handed back after each matching batch, keep the heap at what is in use
(bench_footprint: RSS after serving 100,000 users 249 -> 237 MB). The threads' allocations
are small next to their work and mostly under the GIL, so sharing one arena costs no measurable
time (bench_bot). Elsewhere than glibc, both are no-ops.
"""

from __future__ import annotations

import ctypes
import sys

_M_ARENA_MAX = -8  # mallopt's parameter, glibc's malloc.h


def _glibc() -> ctypes.CDLL | None:
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def share_one_arena() -> bool:
    """Let every thread allocate from one arena (call before starting threads); True if set.

    Not called when the operator set MALLOC_ARENA_MAX (Settings.own_malloc_arenas)."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, 1))


def give_back() -> None:
    """Return the heap's free pages to the system (malloc_trim: 0.03-0.05 ms after a batch)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
