"""How long the three sandboxes take to seed a book, started together as ``revloop sandbox up`` does.

Run: ``python -m bench.sandbox_seed [--scale large] [--rounds 1]``. Goal for ``large`` (>= 1,000,000 records
across the three systems): under 10 minutes from start to all three answering.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import console, median, save, table
from sandboxes import control


def seed_once(scale: str, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="revloop-seed-") as tmp:
        configs = control.configs(
            Path(tmp), ports={name: control.free_port() for name in ("salesforce", "erp", "payments")},
            scale=scale, seed=seed,
        )
        started = time.perf_counter()
        processes = [control.start(config, detach=False) for config in configs]
        ready: dict[str, float] = {}
        records: dict[str, int] = {}
        try:
            deadline = started + 1800
            while len(ready) < len(processes):
                for proc in processes:
                    name = proc.config.system
                    if name in ready:
                        continue
                    if not proc.alive():
                        log = proc.log_file.read_text(errors="replace")[-3000:]
                        raise RuntimeError(f"{name} exited while seeding:\n{log}")
                    if control.alive(proc.config):
                        ready[name] = time.perf_counter() - started
                if time.perf_counter() > deadline:
                    raise TimeoutError("sandboxes not ready after 30 minutes")
                time.sleep(0.2)
            for proc in processes:
                doc = control.health(proc.config, timeout=600) or {"records": {}}
                records[proc.config.system] = sum(int(v) for v in doc["records"].values())
        finally:
            control.stop(processes)
        return {"seconds_by_system": ready, "records_by_system": records, "total_seconds": max(ready.values()),
                "total_records": sum(records.values())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["demo", "large"], default="large")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    runs = [seed_once(args.scale, args.seed) for _ in range(args.rounds)]
    systems = list(runs[0]["seconds_by_system"])
    rows: list[list[Any]] = [
        [name, runs[0]["records_by_system"][name], median([r["seconds_by_system"][name] for r in runs])]
        for name in systems
    ]
    total_s = median([r["total_seconds"] for r in runs])
    rows.append(["all three (wall)", runs[0]["total_records"], total_s])
    console.print(table(f"Sandbox seeding, {args.scale} book (median of {args.rounds})",
                        ["system", "records", "seconds"], rows))
    console.print(f"{runs[0]['total_records'] / total_s:,.0f} records/s overall; "
                  f"this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    console.print(f"saved {save('sandbox-seed', {'scale': args.scale, 'runs': runs})}")


if __name__ == "__main__":
    main()
