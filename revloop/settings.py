"""Revloop's configuration: one settings object per system, read from the environment, `.env`, or a secrets dir.

Every name is ``REVLOOP_<SYSTEM>_<FIELD>``, the same names ``revloop sandbox env`` prints, so pointing
Revloop at the sandboxes or at the real services is only a matter of environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "staging", "prod"]


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=(".env", os.environ.get("REVLOOP_ENV_FILE", ".env.local")),
        extra="ignore",
        secrets_dir=os.environ.get("REVLOOP_SECRETS_DIR") or None,
    )


class SalesforceSettings(BaseSettings):
    """How to reach Salesforce: OAuth2 connected app, instance and the CA to trust."""

    model_config = _config("REVLOOP_SALESFORCE_")

    instance_url: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    reader_client_id: str | None = None
    reader_client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    ca_file: Path | None = None
    api_version: str = "62.0"

    @property
    def configured(self) -> bool:
        return bool(self.instance_url and self.client_id and self.client_secret)


class ErpSettings(BaseSettings):
    """How to reach the ERP (Odoo's external API)."""

    model_config = _config("REVLOOP_ERP_")

    url: str | None = None
    database: str | None = None
    login: str | None = None
    api_key: SecretStr | None = None
    reader_api_key: SecretStr | None = None

    @property
    def configured(self) -> bool:
        return bool(self.url and self.database and self.api_key)


class PaymentsSettings(BaseSettings):
    """How to reach the payments platform (Stripe's API)."""

    model_config = _config("REVLOOP_PAYMENTS_")

    api_base: str = "https://api.stripe.com"
    secret_key: SecretStr | None = None
    reader_key: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    account_id: str | None = None

    @property
    def configured(self) -> bool:
        return self.secret_key is not None


class Settings(BaseSettings):
    """Everything Revloop reads from its environment."""

    model_config = _config("REVLOOP_")

    environment: Environment = "dev"
    home: Path = Path(".revloop")
    """Where local state lives: the embedded warehouse, sandbox data, logs."""
    database_url: SecretStr | None = None
    """The warehouse. Unset: an embedded PostgreSQL under ``home/pgdata``."""

    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    erp: ErpSettings = Field(default_factory=ErpSettings)
    payments: PaymentsSettings = Field(default_factory=PaymentsSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests build their own ``Settings``)."""
    return Settings()
