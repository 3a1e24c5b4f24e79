"""Giving freed memory back to the system during a load, so a backfill's peak is what it holds, not what it held.

A load allocates page bodies of hundreds of kilobytes to megabytes (JSON and CSV pages, their text and
bytes copies) and frees them a moment later. glibc's allocator raises its mmap threshold each time such a
block is freed, so from then on these blocks are carved out of the heap, which fragments and is not
returned: measured on a large ERP backfill, 159 MiB of heap held 54 MiB of live data at the process's
peak. A fixed threshold keeps blocks of 256 KiB and more in their own mappings, unmapped when freed
(mallopt(3), ``M_MMAP_THRESHOLD``); the peak fell from 515 to 455 MiB at the same speed.

The cyclic garbage collector is also made to run less often during a load (:func:`fewer_collections`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import sys
import threading
from collections.abc import Iterator

logger = logging.getLogger(__name__)

MMAP_THRESHOLD_BYTES = 256 * 1024
"""Blocks of this size and more get their own mapping, returned to the system when freed."""

_M_MMAP_THRESHOLD = -3  # mallopt(3) parameter number in glibc's malloc.h

YOUNG_COLLECTION_THRESHOLD = 100_000
"""Container objects allocated (net) between two young-generation collections during a load (Python's
default is 700). A parsed page of 100 invoices makes ~5,000 dicts and lists that refcounting frees a moment
later, yet each 700 allocations triggered a collection that also traversed the batches still held: on a
large payments backfill, 6,000 collections took 2.3 s of its 18 s of CPU. With this threshold: 0-30
collections and the same peak memory (what a load frees, refcounting frees; few cycles are left)."""

_applied = False
_collections_lock = threading.Lock()
_loads_running = 0
_saved_threshold: tuple[int, int, int] | None = None


def return_large_blocks_when_freed() -> None:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` for this process (once; elsewhere a no-op).

    Other C libraries (musl, macOS) do not grow their threshold this way, so nothing is needed there.
    """
    global _applied
    if _applied or not sys.platform.startswith("linux"):
        return
    _applied = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if not mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES):
        logger.debug("mallopt(M_MMAP_THRESHOLD) was refused; freed page memory may stay in the heap")


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the young generation's threshold to :data:`YOUNG_COLLECTION_THRESHOLD` while loads run.

    The threshold is the process's: loads running at the same time in threads share one raise, and the
    previous setting comes back when the last of them ends.
    """
    global _loads_running, _saved_threshold
    with _collections_lock:
        if _loads_running == 0:
            _saved_threshold = gc.get_threshold()
            gc.set_threshold(max(_saved_threshold[0], YOUNG_COLLECTION_THRESHOLD), *_saved_threshold[1:])
        _loads_running += 1
    try:
        yield
    finally:
        with _collections_lock:
            _loads_running -= 1
            if _loads_running == 0 and _saved_threshold is not None:
                gc.set_threshold(*_saved_threshold)
                _saved_threshold = None
