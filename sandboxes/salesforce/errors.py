"""Salesforce's error bodies: the REST error array, the OAuth error object, and injected faults."""

from __future__ import annotations

import random

from starlette.responses import Response

from sandboxes.common.app import json_response


class SalesforceError(Exception):
    """A failure answered as Salesforce's ``[{"message", "errorCode", "fields"}]`` array."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, object]:
        entry: dict[str, object] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            entry["fields"] = self.fields
        return entry

    def record_error(self) -> dict[str, object]:
        """The per-record form used by sObject Collections (``statusCode`` instead of ``errorCode``)."""
        return {"statusCode": self.error_code, "message": self.message, "fields": self.fields or []}

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return json_response([self.body()], status_code=self.status, headers=headers)


class OAuthError(Exception):
    """A token endpoint failure, answered as ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        return json_response({"error": self.error, "error_description": self.description}, status_code=self.status)


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def malformed_query(message: str) -> SalesforceError:
    return SalesforceError(400, "MALFORMED_QUERY", message)


def invalid_type(name: str) -> SalesforceError:
    return SalesforceError(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    )


def insufficient_access() -> SalesforceError:
    return SalesforceError(
        400,
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "You do not have the level of access necessary to perform the operation you requested. Please contact "
        "the owner of the record or your administrator if access is necessary.",
        [],
    )


def limit_exceeded() -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


class SalesforceFaultRenderer:
    """Words injected failures as Salesforce does."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = rng or random.Random()

    def server_error(self) -> Response:
        # Real orgs answer both: 503 during instance maintenance or overload, 500 for an internal error.
        if self._random.random() < 0.5:
            return json_response(
                [
                    {
                        "message": "Server temporarily unavailable. Please try again later.",
                        "errorCode": "SERVER_UNAVAILABLE",
                    }
                ],
                status_code=503,
            )
        error_id = (
            f"{self._random.randrange(10**9)}-{self._random.randrange(10**5)} ({self._random.randrange(-(10**9), 0)})"
        )
        return json_response(
            [
                {
                    "message": "An unexpected error occurred. Please include this ErrorId if you contact "
                    f"support: {error_id}",
                    "errorCode": "UNKNOWN_EXCEPTION",
                }
            ],
            status_code=500,
        )

    def rate_limited(self, retry_after_seconds: int) -> Response:
        return limit_exceeded().response(headers={"Retry-After": str(retry_after_seconds)})

    def lock_conflict(self) -> Response | None:
        record_id = "001" + "".join(self._random.choice("0123456789ABCDEFGHIJ") for _ in range(15))
        return SalesforceError(
            400,
            "UNABLE_TO_LOCK_ROW",
            f"unable to obtain exclusive access to this record or 1 records: {record_id}",
            [],
        ).response()
