"""TLS trust: a client pinned to the sandbox CA works even when REQUESTS_CA_BUNDLE points elsewhere."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from revloop.http import PinnedCAAdapter, pinned_session
from sandboxes.common.tls import ensure_tls_files


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    files = ensure_tls_files(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_file, files.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", files.ca_file
    server.shutdown()


def test_plain_session_verify_is_overridden_when_requests_ca_bundle_is_set(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pitfall the pinned session exists for: requests prefers the environment's bundle."""
    url, ca_file = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    session = requests.Session()
    session.verify = str(ca_file)
    with pytest.raises(requests.exceptions.SSLError):
        session.get(url, timeout=5)


def test_pinned_session_trusts_the_ca_when_requests_ca_bundle_is_set(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    response = pinned_session(url, ca_file).get(url + "/anything", timeout=5)
    assert response.status_code == 200 and response.text == "ok"


def test_pinned_session_refuses_the_server_when_pinned_to_another_ca(
    tls_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = tls_server
    other_ca = ensure_tls_files(tmp_path / "other").ca_file
    with pytest.raises(requests.exceptions.SSLError):
        pinned_session(url, other_ca).get(url, timeout=5)


def test_adapter_is_refused_when_ca_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CA file not found"):
        PinnedCAAdapter(tmp_path / "missing.pem")
