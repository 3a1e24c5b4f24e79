"""Field-level encryption of PII and keyed hashes for matching, with rotating keys.

Envelope encryption: each :class:`FieldCipher` draws a random data key, wraps it once with the active
key-encryption key (KEK, named by a key id), and encrypts values with AES-256-GCM under that data key.
A token is self-contained, ``enc:v1:<kid>:<wrapped data key>:<nonce+ciphertext>``, so rotating the KEK
only means adding a new active key: old tokens still name the key that opens them. The field's name is
bound in as associated data, so a token copied into another column does not decrypt.

Keyed hashes (HMAC-SHA256 over a normalized value) sit beside each encrypted value so records can be
matched across systems (same email, same tax id) without ever holding the plaintext.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOKEN_PREFIX = "enc:v1:"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class KeyringError(LookupError):
    """A key id is unknown, or the key material is malformed."""


class DecryptionError(ValueError):
    """A token is malformed, was tampered with, or belongs to another field."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keyring:
    """Key-encryption keys by id, the id of the active one, and the HMAC key for matching hashes."""

    keys: Mapping[str, bytes]
    active_key_id: str
    hash_key: bytes

    def __post_init__(self) -> None:
        if self.active_key_id not in self.keys:
            raise KeyringError(f"the active key id {self.active_key_id!r} is not among the keys {sorted(self.keys)}")
        for key_id, key in self.keys.items():
            if not _KEY_ID.match(key_id):
                raise KeyringError(f"invalid key id {key_id!r}: use 1-32 letters, digits, '-' or '_'")
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} must be 32 bytes (base64 of 32 random bytes)")
        if len(self.hash_key) < 32:
            raise KeyringError("the hash key must be at least 32 bytes")

    def __repr__(self) -> str:  # never show key material
        return f"Keyring(key_ids={sorted(self.keys)}, active_key_id={self.active_key_id!r})"

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse ``{"active": "k2", "keys": {"k1": "<b64>", "k2": "<b64>"}, "hash_key": "<b64>"}``."""
        try:
            doc = json.loads(text)
            return cls(
                keys={kid: _b64d(value) for kid, value in doc["keys"].items()},
                active_key_id=doc["active"],
                hash_key=_b64d(doc["hash_key"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyringError(f"malformed keyring: {type(exc).__name__} {exc}") from None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        """``REVLOOP_KEYRING`` (the JSON itself) or ``REVLOOP_KEYRING_FILE`` (a path to it)."""
        environ = os.environ if environ is None else environ
        if environ.get("REVLOOP_KEYRING"):
            return cls.from_json(environ["REVLOOP_KEYRING"])
        if environ.get("REVLOOP_KEYRING_FILE"):
            return cls.from_json(Path(environ["REVLOOP_KEYRING_FILE"]).read_text())
        raise KeyringError(
            "no keyring configured: set REVLOOP_KEYRING_FILE (or REVLOOP_KEYRING); see `revloop keys new`"
        )


def new_keyring_json(key_id: str = "k1") -> str:
    """A fresh keyring document with one active key and a hash key."""
    return json.dumps(
        {
            "active": key_id,
            "keys": {key_id: _b64e(secrets.token_bytes(32))},
            "hash_key": _b64e(secrets.token_bytes(32)),
        },
        indent=2,
    )


def rotated_keyring_json(current: str, new_key_id: str) -> str:
    """``current`` with a new active key added; old keys stay so existing tokens still decrypt."""
    doc = json.loads(current)
    if new_key_id in doc["keys"]:
        raise KeyringError(f"key id {new_key_id!r} already exists")
    doc["keys"][new_key_id] = _b64e(secrets.token_bytes(32))
    doc["active"] = new_key_id
    Keyring.from_json(json.dumps(doc))  # validate
    return json.dumps(doc, indent=2)


class FieldCipher:
    """Encrypts and decrypts field values under a keyring; one instance reuses one wrapped data key."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._data_key = AESGCM.generate_key(bit_length=256)
        self._data_aead = AESGCM(self._data_key)
        kek = AESGCM(keyring.keys[keyring.active_key_id])
        nonce = secrets.token_bytes(12)
        wrapped = nonce + kek.encrypt(nonce, self._data_key, keyring.active_key_id.encode())
        self._header = f"{TOKEN_PREFIX}{keyring.active_key_id}:{_b64e(wrapped)}:"
        self._unwrapped: dict[tuple[str, str], AESGCM] = {}

    def encrypt(self, value: str | None, field: str) -> str | None:
        """The token for ``value`` in ``field`` (None stays None)."""
        if value is None:
            return None
        nonce = secrets.token_bytes(12)
        sealed = self._data_aead.encrypt(nonce, value.encode(), field.encode())
        return self._header + _b64e(nonce + sealed)

    def decrypt(self, token: str | None, field: str) -> str | None:
        """The plaintext of ``token`` written for ``field``; raises :class:`DecryptionError` otherwise."""
        if token is None:
            return None
        if not token.startswith(TOKEN_PREFIX):
            raise DecryptionError("not an encrypted value")
        try:
            key_id, wrapped_text, sealed_text = token[len(TOKEN_PREFIX):].split(":")
            aead = self._data_aead_for(key_id, wrapped_text)
            sealed = _b64d(sealed_text)
            return aead.decrypt(sealed[:12], sealed[12:], field.encode()).decode()
        except InvalidTag:
            raise DecryptionError(f"token does not open for field {field!r} (tampered, or another field's)") from None
        except (ValueError, KeyError) as exc:
            raise DecryptionError(f"malformed token: {exc}") from None

    def _data_aead_for(self, key_id: str, wrapped_text: str) -> AESGCM:
        cached = self._unwrapped.get((key_id, wrapped_text))
        if cached is not None:
            return cached
        if key_id not in self.keyring.keys:
            raise DecryptionError(f"unknown key id {key_id!r}")
        wrapped = _b64d(wrapped_text)
        data_key = AESGCM(self.keyring.keys[key_id]).decrypt(wrapped[:12], wrapped[12:], key_id.encode())
        aead = AESGCM(data_key)
        if len(self._unwrapped) > 4096:
            self._unwrapped.clear()
        self._unwrapped[(key_id, wrapped_text)] = aead
        return aead


# ---- normalization for matching hashes -------------------------------------------------------------

def _nfkc_fold(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def normalize_email(value: str) -> str:
    return _nfkc_fold(value).replace(" ", "")


def normalize_email_domain(value: str) -> str:
    email = normalize_email(value)
    return email.rsplit("@", 1)[-1] if "@" in email else email


def normalize_phone(value: str) -> str:
    """Digits only, keeping a leading ``+``: formatting differences do not change the hash."""
    text = unicodedata.normalize("NFKC", value).strip()
    digits = re.sub(r"\D", "", text)
    return ("+" if text.startswith("+") else "") + digits


def normalize_tax_id(value: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", unicodedata.normalize("NFKC", value).upper())


_COMPANY_SUFFIXES = re.compile(
    r"\b(pte|ltd|limited|inc|incorporated|co|corp|corporation|company|llc|plc|pty|bhd|sdn|tbk|pt|jsc|kk)\b\.?"
)


def normalize_name(value: str) -> str:
    """Case, width, punctuation and spacing folded: ``ACME PTE. LTD.`` and ``Acme Pte Ltd`` agree."""
    folded = _nfkc_fold(value)
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


def normalize_company_name(value: str) -> str:
    """:func:`normalize_name` without legal-form suffixes (Pte Ltd, Inc, Co., ...)."""
    return " ".join(_COMPANY_SUFFIXES.sub(" ", normalize_name(value)).split())


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "email": normalize_email,
    "email_domain": normalize_email_domain,
    "phone": normalize_phone,
    "tax_id": normalize_tax_id,
    "name": normalize_name,
    "company_name": normalize_company_name,
    "address": normalize_name,
}


class MatchHasher:
    """Keyed hashes of normalized values: equal inputs up to formatting give equal hashes."""

    def __init__(self, keyring: Keyring) -> None:
        self._key = keyring.hash_key

    def hash(self, value: str | None, kind: str) -> str | None:
        if value is None:
            return None
        try:
            normalized = NORMALIZERS[kind](value)
        except KeyError:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(NORMALIZERS)}") from None
        if not normalized:
            return None
        return _cached_hmac(self._key, kind, normalized)


@lru_cache(maxsize=65536)
def _cached_hmac(key: bytes, kind: str, normalized: str) -> str:
    return hmac.new(key, f"{kind}\x1f{normalized}".encode(), sha256).hexdigest()


def load_keyring(environment: str, home: Path) -> Keyring:
    """The configured keyring; in ``dev`` only, one is created under ``home`` when none is configured.

    Staging and production must name theirs (REVLOOP_KEYRING_FILE), so data encrypted there can never
    depend on a key nobody backed up.
    """
    try:
        return Keyring.from_environment()
    except KeyringError:
        if environment != "dev":
            raise
    path = home / "keyring.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write aside, then link into place: of processes racing to create it, exactly one wins and the
        # others read the winner's complete file (never an empty or a second, different keyring).
        candidate = path.with_name(f".keyring-{os.getpid()}-{secrets.token_hex(4)}.json")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_keyring_json("dev-1"))
        try:
            os.link(candidate, path)
            logging.getLogger(__name__).warning("created a development keyring at %s", path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return Keyring.from_json(path.read_text())
