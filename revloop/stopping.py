"""The process-wide "stopping" flag of a long-running command (``revloop sync``).

Set from a signal handler; waits that could hold a stop up (retry backoffs, a lock held by another build)
watch it and end at once, so the loop records its stop within seconds.
"""

from __future__ import annotations

import threading

process_stopping = threading.Event()
