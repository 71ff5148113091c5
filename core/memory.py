"""Handing memory a finished pipeline stage freed back to the operating system.

The headless runner (`pipelines.runner.run_range`) runs every stage in one process, while
Airflow gives each task its own. Freed Python and Arrow memory is not returned to the OS by
itself: glibc keeps freed heap pages in its arenas and Arrow's allocator keeps its pools, so gate
1's pandas frames would stay resident under the load's DuckDB buffers and add up to one large
peak. Releasing between stages keeps each stage's peak its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys


def release_freed_memory() -> None:
    """Collect garbage, empty Arrow's pool of unused blocks, and trim glibc's heap."""
    gc.collect()
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        trim = getattr(libc, "malloc_trim", None)  # glibc only (not musl)
        if trim is not None:
            trim(0)
