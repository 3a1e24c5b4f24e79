"""Runs one sandbox system under uvicorn, with TLS when the system needs it."""

from __future__ import annotations

import logging

import uvicorn

from sandboxes.common.app import build_app, initial_faults
from sandboxes.common.config import SandboxConfig
from sandboxes.common.tls import ensure_tls_files
from sandboxes.registry import SYSTEMS

logger = logging.getLogger(__name__)


def make_app(config: SandboxConfig):  # type: ignore[no-untyped-def]
    """Build the ASGI app of ``config.system`` (creating and seeding its store on first start)."""
    spec = SYSTEMS[config.system]
    config.system_dir.mkdir(parents=True, exist_ok=True)
    faults = initial_faults(config)
    backend = spec.load().create_backend(config, faults)
    return build_app(config, backend, faults)


def serve(config: SandboxConfig) -> None:
    """Serve ``config.system`` until interrupted."""
    ssl_kwargs = {}
    if config.tls:
        files = ensure_tls_files(config.tls_dir)
        ssl_kwargs = {"ssl_certfile": str(files.cert_file), "ssl_keyfile": str(files.key_file)}
    app = make_app(config)
    logger.info("%s sandbox listening on %s", config.system, config.base_url)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        http=SYSTEMS[config.system].http_impl,
        timeout_keep_alive=30,
        # kept-alive client connections must not hold a stop for long
        timeout_graceful_shutdown=2,
        **ssl_kwargs,
    )
