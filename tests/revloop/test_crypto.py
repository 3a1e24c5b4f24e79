"""Field-level encryption and matching hashes."""

from __future__ import annotations

import json

import pytest

from revloop.crypto import (
    DecryptionError,
    FieldCipher,
    Keyring,
    KeyringError,
    MatchHasher,
    new_keyring_json,
    rotated_keyring_json,
)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_json(new_keyring_json("k1"))


def test_value_round_trips_when_encrypted_and_decrypted(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    token = cipher.encrypt("ana.lim@example.sg", "contact.email")
    assert token is not None and "ana" not in token and token.startswith("enc:v1:k1:")
    assert FieldCipher(keyring).decrypt(token, "contact.email") == "ana.lim@example.sg"


def test_same_value_gives_different_tokens_when_encrypted_twice(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    assert cipher.encrypt("x", "f") != cipher.encrypt("x", "f")


def test_none_stays_none_when_encrypted(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    assert cipher.encrypt(None, "f") is None and cipher.decrypt(None, "f") is None


def test_token_is_refused_when_moved_to_another_field(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    token = cipher.encrypt("+6591234567", "contact.phone")
    with pytest.raises(DecryptionError, match="another field"):
        cipher.decrypt(token, "contact.email")


def test_token_is_refused_when_tampered(keyring: Keyring) -> None:
    cipher = FieldCipher(keyring)
    token = cipher.encrypt("secret", "f")
    assert token is not None
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, "f")


@pytest.mark.parametrize("token", ["plain text", "enc:v1:k1:onlytwo", "enc:v1:zz:a:b"])
def test_malformed_token_is_refused_with_reason_when_decrypted(keyring: Keyring, token: str) -> None:
    with pytest.raises(DecryptionError):
        FieldCipher(keyring).decrypt(token, "f")


def test_old_tokens_still_open_when_key_is_rotated(keyring: Keyring) -> None:
    first = new_keyring_json("k1")
    old_token = FieldCipher(Keyring.from_json(first)).encrypt("kept", "f")
    rotated = Keyring.from_json(rotated_keyring_json(first, "k2"))
    new_token = FieldCipher(rotated).encrypt("new", "f")
    assert rotated.active_key_id == "k2" and new_token is not None and new_token.startswith("enc:v1:k2:")
    assert FieldCipher(rotated).decrypt(old_token, "f") == "kept"


def test_matching_hash_survives_key_rotation_when_hash_key_is_kept() -> None:
    first = new_keyring_json("k1")
    rotated = rotated_keyring_json(first, "k2")
    assert MatchHasher(Keyring.from_json(first)).hash("A@B.co", "email") == MatchHasher(
        Keyring.from_json(rotated)
    ).hash("a@b.co", "email")


@pytest.mark.parametrize(
    ("kind", "left", "right"),
    [
        ("email", " Ana.Lim@Example.SG ", "ana.lim@example.sg"),
        ("email_domain", "ana@Example.sg", "finance@example.SG"),
        ("phone", "+65 9123-4567", "+6591234567"),
        ("tax_id", "201912345-k", "201912345K"),
        ("name", "ＡＣＭＥ  Holdings", "acme holdings"),
        ("company_name", "ACME PTE. LTD.", "Acme Pte Ltd"),
        ("company_name", "株式会社 サクラ", "株式会社 サクラ"),
    ],
)
def test_hashes_agree_when_values_differ_only_in_format(keyring: Keyring, kind: str, left: str, right: str) -> None:
    hasher = MatchHasher(keyring)
    assert hasher.hash(left, kind) == hasher.hash(right, kind)


@pytest.mark.parametrize(
    ("kind", "left", "right"),
    [("email", "a@b.co", "a@b.com"), ("phone", "+6591234567", "+6591234568"), ("company_name", "Acme", "Apex")],
)
def test_hashes_differ_when_values_differ(keyring: Keyring, kind: str, left: str, right: str) -> None:
    hasher = MatchHasher(keyring)
    assert hasher.hash(left, kind) != hasher.hash(right, kind)


def test_hash_depends_on_the_key_when_keyrings_differ() -> None:
    one, two = (MatchHasher(Keyring.from_json(new_keyring_json())) for _ in range(2))
    assert one.hash("a@b.co", "email") != two.hash("a@b.co", "email")


def test_keyring_is_refused_with_reason_when_malformed() -> None:
    doc = json.loads(new_keyring_json("k1"))
    with pytest.raises(KeyringError, match="active key id"):
        Keyring.from_json(json.dumps({**doc, "active": "k9"}))
    with pytest.raises(KeyringError, match="32 bytes"):
        Keyring.from_json(json.dumps({**doc, "keys": {"k1": "c2hvcnQ"}}))
    with pytest.raises(KeyringError, match="malformed"):
        Keyring.from_json("{not json")


def test_keyring_repr_hides_key_material_when_printed(keyring: Keyring) -> None:
    text = repr(keyring)
    assert "k1" in text and all(str(v) not in text for v in keyring.keys.values())


def test_keyring_is_read_from_file_when_environment_names_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keyring.json"
    path.write_text(new_keyring_json("prod-2026"))
    assert Keyring.from_environment({"REVLOOP_KEYRING_FILE": str(path)}).active_key_id == "prod-2026"
    with pytest.raises(KeyringError, match="no keyring configured"):
        Keyring.from_environment({})


def test_one_dev_keyring_is_made_when_processes_race_to_create_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ProcessPoolExecutor

    from revloop.crypto import load_keyring

    monkeypatch.delenv("REVLOOP_KEYRING", raising=False)
    monkeypatch.delenv("REVLOOP_KEYRING_FILE", raising=False)
    with ProcessPoolExecutor(max_workers=4) as pool:
        keyrings = list(pool.map(load_keyring, ["dev"] * 8, [tmp_path] * 8))
    assert len({repr(dict(k.keys)) for k in keyrings}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]
