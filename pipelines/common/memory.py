"""Giving freed memory back to the system during a load, so a backfill's peak is what it holds, not what it held.

A load allocates page bodies of hundreds of kilobytes to megabytes (JSON and CSV pages, their text and
bytes copies) and frees them a moment later. glibc's allocator raises its mmap threshold each time such a
block is freed, so from then on these blocks are carved out of the heap, which fragments and is not
returned: measured on a large ERP backfill, 159 MiB of heap held 54 MiB of live data at the process's
peak. A fixed threshold keeps blocks of 256 KiB and more in their own mappings, unmapped when freed
(mallopt(3), ``M_MMAP_THRESHOLD``); the peak fell from 515 to 455 MiB at the same speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

MMAP_THRESHOLD_BYTES = 256 * 1024
"""Blocks of this size and more get their own mapping, returned to the system when freed."""

_M_MMAP_THRESHOLD = -3  # mallopt(3) parameter number in glibc's malloc.h

_applied = False


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
