"""Serve one sandbox system: ``python -m sandboxes serve <system> --port N --data-dir DIR``.

``revloop sandbox up`` starts one such process per system; this entry point stays free of the CLI's
heavier imports so a sandbox starts in well under a second.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sandboxes.common.config import SCALES, SandboxConfig
from sandboxes.common.faults import PROFILES
from sandboxes.registry import DEFAULT_DATA_DIR, SYSTEMS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandboxes")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="serve one sandbox system in the foreground")
    serve_parser.add_argument("system", choices=sorted(SYSTEMS))
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    serve_parser.add_argument("--seed", type=int, default=42)
    serve_parser.add_argument("--scale", choices=SCALES, default="demo")
    serve_parser.add_argument("--faults", choices=sorted(PROFILES), default="none")
    serve_parser.add_argument(
        "--tls", action=argparse.BooleanOptionalAction, default=None,
        help="serve over HTTPS with the local CA [default: as the real system: Salesforce yes, others no]",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spec = SYSTEMS[args.system]
    config = SandboxConfig(
        system=args.system,
        port=args.port or spec.default_port,
        host=args.host,
        data_dir=args.data_dir.resolve(),
        seed=args.seed,
        scale=args.scale,
        faults=args.faults,
        tls=spec.tls if args.tls is None else args.tls,
    )
    from sandboxes.common.server import serve

    serve(config)


if __name__ == "__main__":
    main()
