"""Tests of bot/heap.py: one arena for every thread, free pages given back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

# Four threads allocate and free at once, then glibc's malloc_stats lists the arenas.
THREADS = """
import ctypes, sys, threading
from bot.heap import give_back, share_one_arena
print(share_one_arena() if sys.argv[1] == "one" else False)
barrier = threading.Barrier(4)
def work():
    barrier.wait()
    for _ in range(200):
        blocks = [bytearray(20_000) for _ in range(50)]
        del blocks
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
give_back()
ctypes.CDLL(None).malloc_stats()
"""

glibc = pytest.mark.skipif(
    sys.platform != "linux" or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)


def arenas(mode: str, **env: str) -> tuple[str, int]:
    """Run THREADS in a fresh interpreter; return what share_one_arena said and the arenas."""
    done = subprocess.run(
        [sys.executable, "-c", THREADS, mode],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip(), done.stderr.count("Arena ")


@glibc
def test_every_thread_allocates_from_one_arena() -> None:
    assert arenas("one") == ("True", 1)
    assert arenas("default")[1] > 1  # what the threads have without it
