"""Decoding Stripe's form encoding: ``metadata[k]=v``, ``lines[0][price]=...``, ``expand[]=...``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from sandboxes.payments.errors import StripeError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 8


def _malformed(detail: str) -> StripeError:
    return StripeError(400, f"Invalid request: {detail}. Please check the format of your request parameters.")


def decode(raw: bytes | str) -> dict[str, Any]:
    """Decode a query string or form body into nested dicts and lists.

    Args:
        raw: The urlencoded bytes or text.

    Returns:
        Nested parameters; dicts whose keys are all integers (``[0]``, ``[1]``) and ``[]`` appends become lists.

    Raises:
        StripeError: 400 when the body is not valid UTF-8 or a key is inconsistent (``a=1&a[b]=2``).
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("the request body is not valid UTF-8") from None
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise _malformed("the request body could not be decoded") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise _malformed(f"malformed parameter name {key!r}")
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        if len(path) > MAX_DEPTH:
            raise _malformed(f"parameter {key!r} is nested too deeply")
        _assign(root, path, value, key)
    return _listify(root)


_APPEND = object()


def _assign(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    node: Any = root
    for depth, segment in enumerate(path):
        last = depth == len(path) - 1
        if segment == "":
            # ``expand[]=a&expand[]=b``: give each occurrence its own slot keyed by position.
            segment = f"{len(node)}" if isinstance(node, dict) else segment
            if isinstance(node, dict) and any(not k.isdigit() for k in node):
                raise _malformed(f"parameter {key!r} mixes a list and a hash")
        if not isinstance(node, dict):
            raise _malformed(f"parameter {key!r} conflicts with a value given earlier")
        if last:
            if isinstance(node.get(segment), dict):
                raise _malformed(f"parameter {key!r} conflicts with a hash given earlier")
            node[segment] = value
        else:
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                raise _malformed(f"parameter {key!r} conflicts with a value given earlier")
            node = child


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted
