"""One Salesforce load in a process of its own, configured from the environment (kill and concurrency tests).

``python -m tests.pipelines.salesforce.load_process <database_url> [bulk_threshold]``: prints ``LOADED <rows>``,
or ``BUSY <message>`` and exits with status 3 when the same load is already running.
"""

from __future__ import annotations

import logging
import sys

from pipelines.common.locking import PipelineBusy
from pipelines.common.runner import run_load
from pipelines.salesforce import salesforce_source
from pipelines.salesforce import settings as constants
from revloop.settings import Settings

BUSY_EXIT_STATUS = 3


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    database_url = sys.argv[1]
    bulk_threshold = int(sys.argv[2]) if len(sys.argv) > 2 else constants.BULK_THRESHOLD
    try:
        summary = run_load(
            "salesforce", lambda context: salesforce_source(context, bulk_threshold=bulk_threshold), Settings(),
            database_url,
        )
    except PipelineBusy as exc:
        print(f"BUSY {exc}", flush=True)
        return BUSY_EXIT_STATUS
    print(f"LOADED {summary.rows_loaded}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
