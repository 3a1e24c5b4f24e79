"""OAuth tokens kept encrypted in PostgreSQL, so a restart or a second process continues a rotating chain.

Salesforce connected apps can rotate refresh tokens: each refresh returns a new refresh token and
re-using an old one revokes the whole chain. Two processes refreshing at once would therefore lock each
other out. Here the refresh happens inside a transaction holding the token row ``FOR UPDATE``: the second
process waits, then finds a fresh access token (or the rotated refresh token) and never replays a spent one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Callable

import psycopg

from revloop.crypto import FieldCipher

logger = logging.getLogger(__name__)

SCHEMA = "revloop_state"

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.oauth_tokens (
    system            text not null,
    client_id         text not null,
    refresh_token_enc text,
    access_token_enc  text,
    instance_url      text,
    expires_at        timestamptz,
    rotations         bigint not null default 0,
    updated_at        timestamptz not null default now(),
    primary key (system, client_id)
);
alter table {SCHEMA}.oauth_tokens add column if not exists seeded_from_sha256 text;
comment on table {SCHEMA}.oauth_tokens is
    'OAuth tokens per system and client, encrypted (revloop.crypto); never plaintext';
"""


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    """What a token endpoint answered."""

    access_token: str
    instance_url: str
    expires_in_seconds: float
    refresh_token: str | None = None


class TokenChainRevoked(RuntimeError):
    """The stored refresh token was refused: someone must authorize the connected app again."""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the token table if missing.

    ``create ... if not exists`` is not safe against a concurrent twin (both see nothing, one fails on
    the catalog's unique index), so processes starting together take turns on an advisory lock.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtextextended('revloop.token_store.schema', 0))")
        conn.execute(DDL)


class TokenStore:
    """Encrypted token rows for one system and client id."""

    def __init__(self, database_url: str, cipher: FieldCipher, system: str, client_id: str) -> None:
        self.database_url = database_url
        self.cipher = cipher
        self.system = system
        self.client_id = client_id
        self._field = f"{SCHEMA}.oauth_tokens.{system}"

    def seed_refresh_token(self, refresh_token: str) -> None:
        """Store an initial refresh token (from an authorization) unless the chain already started from it.

        The chain continues from the newest stored token; only a *different* configured token (someone
        authorized the app again, e.g. after the chain was revoked) replaces it. Comparing digests means
        the configured token itself is never stored in plain text.
        """
        digest = hashlib.sha256(refresh_token.encode()).hexdigest()
        with psycopg.connect(self.database_url) as conn:
            ensure_schema(conn)
            conn.execute(
                f"""insert into {SCHEMA}.oauth_tokens (system, client_id, refresh_token_enc, seeded_from_sha256)
                    values (%s, %s, %s, %s)
                    on conflict (system, client_id) do update
                    set refresh_token_enc = excluded.refresh_token_enc, access_token_enc = null,
                        expires_at = null, seeded_from_sha256 = excluded.seeded_from_sha256, updated_at = now()
                    where {SCHEMA}.oauth_tokens.seeded_from_sha256 is distinct from excluded.seeded_from_sha256""",
                (
                    self.system, self.client_id,
                    self.cipher.encrypt(refresh_token, self._field + ".refresh"), digest,
                ),
            )

    def access_token(
        self,
        issue: Callable[[str | None], IssuedToken],
        *,
        force_refresh: bool = False,
        rejected_access_token: str | None = None,
        margin_seconds: float = 60.0,
    ) -> IssuedToken:
        """A valid access token: the stored one while fresh, else one from ``issue(current_refresh_token)``.

        ``issue`` is called with the refresh token in force (None for grants without one, such as client
        credentials) while the row is locked; what it returns is stored before the lock is released.
        ``force_refresh`` is for a 401 on a token we thought valid. ``rejected_access_token`` is the finer
        form of it for several processes sharing a token: a refresh happens only if the stored access token
        is still the rejected one; if another process already replaced it, its token is returned instead.
        """
        with psycopg.connect(self.database_url) as conn:
            ensure_schema(conn)
            conn.commit()
            with conn.transaction():
                conn.execute(
                    f"""insert into {SCHEMA}.oauth_tokens (system, client_id) values (%s, %s)
                        on conflict (system, client_id) do nothing""",
                    (self.system, self.client_id),
                )
                row = conn.execute(
                    f"""select refresh_token_enc, access_token_enc, instance_url, expires_at
                        from {SCHEMA}.oauth_tokens where system = %s and client_id = %s for update""",
                    (self.system, self.client_id),
                ).fetchone()
                assert row is not None
                refresh_enc, access_enc, instance_url, expires_at = row
                now = dt.datetime.now(dt.UTC)
                stored_access = self.cipher.decrypt(access_enc, self._field + ".access") if access_enc else None
                if rejected_access_token is not None and stored_access != rejected_access_token:
                    force_refresh = False
                elif rejected_access_token is not None:
                    force_refresh = True
                if (
                    not force_refresh
                    and access_enc is not None
                    and expires_at is not None
                    and expires_at - dt.timedelta(seconds=margin_seconds) > now
                ):
                    return IssuedToken(
                        access_token=stored_access or "",
                        instance_url=instance_url or "",
                        expires_in_seconds=(expires_at - now).total_seconds(),
                    )
                refresh_token = self.cipher.decrypt(refresh_enc, self._field + ".refresh")
                issued = issue(refresh_token)
                new_refresh = issued.refresh_token or refresh_token
                conn.execute(
                    f"""update {SCHEMA}.oauth_tokens
                        set refresh_token_enc = %s, access_token_enc = %s, instance_url = %s,
                            expires_at = %s, rotations = rotations + %s, updated_at = now()
                        where system = %s and client_id = %s""",
                    (
                        self.cipher.encrypt(new_refresh, self._field + ".refresh"),
                        self.cipher.encrypt(issued.access_token, self._field + ".access"),
                        issued.instance_url,
                        now + dt.timedelta(seconds=issued.expires_in_seconds),
                        1 if issued.refresh_token and issued.refresh_token != refresh_token else 0,
                        self.system,
                        self.client_id,
                    ),
                )
                logger.info("%s: new access token for client %s", self.system, self.client_id)
                return issued
