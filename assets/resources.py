"""Dagster resources: Revloop's settings and the warehouse, resolved from the environment at run time."""

from __future__ import annotations

import dagster as dg

from revloop import warehouse
from revloop.settings import Settings


class RevloopResource(dg.ConfigurableResource):  # type: ignore[misc]
    """Gives assets the settings and the warehouse URL (read when a run starts, never at import)."""

    def settings(self) -> Settings:
        return Settings()

    def database_url(self) -> str:
        return warehouse.database_url(self.settings())
