"""Handing memory a large read has freed back to the system.

Decoding Parquet (a checkpoint, a scanned file, a run of footers) allocates and frees tens of megabytes; both
allocators involved keep what was freed for reuse instead of returning it: Arrow's memory pool (mimalloc) and,
for what Parquet's footer parser and Python allocate outside it, the C library's `malloc` (glibc's heap only
shrinks from its top). A long-lived process (a notebook, the MLflow server) would then sit at its highest
footprint. `release_freed()` asks both to return what they hold unused; it costs about a millisecond, so it is
called after reads of several megabytes, never per call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pyarrow as pa


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_freed() -> None:
    """Return the memory Arrow's pool and the C heap hold freed but unused to the system."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
