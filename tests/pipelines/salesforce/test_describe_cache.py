"""Describes are read once per process and then asked again with If-Modified-Since (304 Not Modified)."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceGeneralError

from pipelines.salesforce import client as salesforce_client
from pipelines.salesforce.client import SalesforceReader
from revloop.crypto import FieldCipher, Keyring, new_keyring_json
from tests.pipelines.salesforce.conftest import salesforce_settings
from tests.sandbox_harness import RunningSandbox


@pytest.fixture(scope="module")
def settled_org(sandbox: RunningSandbox) -> RunningSandbox:
    # The org's metadata dates from the server's start, in whole seconds, and a copy counts from a second
    # before it was read: a copy read in the server's first two seconds is (rightly) not trusted.
    time.sleep(2.1)
    return sandbox


@pytest.fixture
def reader(settled_org: RunningSandbox, fresh_database: str) -> Iterator[SalesforceReader]:
    sandbox = settled_org
    salesforce_client._DESCRIBES.clear()
    cipher = FieldCipher(Keyring.from_json(new_keyring_json()))
    reader = SalesforceReader(salesforce_settings(sandbox), fresh_database, cipher)
    yield reader
    salesforce_client._DESCRIBES.clear()


def test_a_second_describe_is_not_modified_and_reuses_the_copy(reader: SalesforceReader) -> None:
    first = reader.describe("Opportunity")
    again = reader.describe("Opportunity")
    assert again == first and {f["name"] for f in first["fields"]} >= {"Id", "StageName", "SystemModstamp"}
    assert (reader.calls, reader.describes_not_modified) == (2, 1)


def test_a_copy_older_than_the_max_age_is_read_in_full(reader: SalesforceReader) -> None:
    reader.describe("Account")
    key = next(iter(salesforce_client._DESCRIBES))
    read_at, copy = salesforce_client._DESCRIBES[key]
    salesforce_client._DESCRIBES[key] = (read_at - salesforce_client.DESCRIBE_MAX_AGE * 2, copy)
    assert reader.describe("Account") == copy
    assert reader.describes_not_modified == 0


def test_the_sandbox_answers_304_only_when_nothing_changed_since(reader: SalesforceReader) -> None:
    def describe_since(when: dt.datetime) -> dict | None:
        header = email.utils.format_datetime(when, usegmt=True)
        try:
            return reader.sf.Account.describe(headers={"If-Modified-Since": header})
        except SalesforceGeneralError as exc:
            assert exc.status == 304
            return None

    assert describe_since(dt.datetime.now(dt.UTC)) is None
    before_the_org = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert describe_since(before_the_org)["name"] == "Account"
    assert reader.sf.Account.describe(headers={"If-Modified-Since": "not a date"})["name"] == "Account"


def test_each_user_keeps_its_own_copy(sandbox: RunningSandbox, reader: SalesforceReader, fresh_database: str,
                                      tmp_path: Path) -> None:
    apps = sandbox.admin("GET", "salesforce/apps")["apps"]
    cipher = FieldCipher(Keyring.from_json(new_keyring_json()))
    support = SalesforceReader(salesforce_settings(sandbox, reader_client_id=apps["revloop-support"]["client_id"],
                                                   reader_client_secret=apps["revloop-support"]["client_secret"]),
                               fresh_database, cipher)
    fields = {f["name"] for f in reader.describe("Contact")["fields"]}
    hidden = {f["name"] for f in support.describe("Contact")["fields"]}
    assert {"Email", "Phone"} <= fields and not {"Email", "Phone"} & hidden
    assert support.describes_not_modified == 0
