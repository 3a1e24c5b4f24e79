"""Revloop's backfill of one system, as a process of its own so it is measured like the peers.

    .venv/bin/python -m bench.peers.revloop_load SPEC_FILE RESULT_FILE

``SPEC_FILE`` is JSON: ``system``, ``env`` (the sandbox's ``REVLOOP_<SYSTEM>_*`` client settings),
``database_url`` and ``home`` (a fresh directory: dlt's working files and the development keyring).
The load is Revloop's own (``pipelines.common.runner.run_load``); its summary is written to
``RESULT_FILE`` as JSON. The parent (:mod:`bench.peers.revloop_side`) times the process and samples its
memory exactly as it does for a peer's sync.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from pipelines.catalog import source_factory
from pipelines.common.runner import run_load
from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings, Settings

_SYSTEM_SETTINGS: dict[str, type[BaseSettings]] = {
    "salesforce": SalesforceSettings, "erp": ErpSettings, "payments": PaymentsSettings,
}


def settings_for(system: str, env: dict[str, str], home: Path) -> Settings:
    """``Settings`` for one system from its ``REVLOOP_<SYSTEM>_*`` values, as the pipeline tests build them."""
    prefix = f"REVLOOP_{system.upper()}_"
    values = {key.removeprefix(prefix).lower(): value for key, value in env.items() if key.startswith(prefix)}
    model: Any = _SYSTEM_SETTINGS[system]
    known = {k: v for k, v in values.items() if k in model.model_fields}
    return Settings(home=home, **{system: model(**known)})


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    spec_file, result_file = (argv if argv is not None else sys.argv[1:])[:2]
    spec: dict[str, Any] = json.loads(Path(spec_file).read_text())
    system = spec["system"]
    settings = settings_for(system, spec["env"], Path(spec["home"]))
    summary = run_load(system, source_factory(system), settings, spec["database_url"])
    Path(result_file).write_text(json.dumps({
        "seconds": summary.seconds,
        "rows_by_table": summary.rows_by_table,
        "quarantined_by_object": summary.quarantined_by_object,
        "notes": {k: v for k, v in summary.notes.items() if k != "matching"},
    }, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
