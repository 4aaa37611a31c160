"""A ClientApp process hands the heap memory a message freed back to the OS (glibc keeps it otherwise)."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from fedrouter.runtime.client_app import _libc_malloc_trim, release_free_memory


def _rss_mb() -> float:
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(_libc_malloc_trim() is None, reason="not glibc")
def test_freed_heap_memory_goes_back_to_the_os():
    # Prepare: 128 MB of heap blocks (64 KB each, below glibc's mmap threshold), touched, then all freed
    # but the last, which pins the heap's top so glibc cannot shrink it by itself
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(2048)]
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    for b in blocks[:-1]:
        libc.free(b)
    before = _rss_mb()
    # Execute
    release_free_memory()
    # Assert: most of the 128 MB left the process
    assert before - _rss_mb() > 64, (before, _rss_mb())
    libc.free(blocks[-1])
