"""One ERP load in a process of its own, so tests can kill it or race it: ``python -m ... '<json>'``.

The JSON names the warehouse URL, Revloop's home, dlt's working directory and the ``REVLOOP_ERP_*``
settings; the summary is printed as JSON on success.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from pipelines.common.runner import run_load
from pipelines.erp import erp_source
from revloop.settings import ErpSettings, Settings


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = json.loads(argv[0])
    settings = Settings(home=Path(args["home"]), erp=ErpSettings(**args["erp"]))
    summary = run_load("erp", erp_source, settings, args["database_url"], pipelines_dir=Path(args["pipelines_dir"]))
    print(json.dumps({"rows_by_table": summary.rows_by_table, "notes": summary.notes}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
