"""Bytes the SDK's string accessors cannot take: header values that are not UTF-8
(HTTP allows obs-text). proxy-wasm-rust-sdk 0.2.5 panics on them, which would abort
the VM; the filter reads headers as bytes instead. Sent over a raw socket because
HTTP client libraries refuse such headers."""
from __future__ import annotations

import socket

import pytest

from tests.integration.configs import provider
from tests.support.tokens import make_token

CONFIG = {
    "providers": {"p": provider(from_cookies=["session"],
                                from_headers=[{"name": "authorization", "value_prefix": "Bearer "}],
                                claim_to_headers=[{"header_name": "x-sub", "claim_name": "sub"}])},
    "rules": [{"match": {"prefix": "/public"}}, {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
}


def raw_request(port: int, path: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"GET " + path.encode() + b" HTTP/1.1", b"Host: test"]
    lines += [k + b": " + v for k, v in headers]
    data = b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def proxy(shared_envoy):
    return shared_envoy(CONFIG)


@pytest.mark.parametrize("headers,path,want", [
    ([(b"x-junk", b"\xff\xfe\x80 latin-1 \xe9")], "/public/x", 200),
    ([(b"x-junk", b"\xff\xfe\x80")], "/x", 401),
    ([(b"authorization", b"Bearer \xff\xfe.\x80.\x81")], "/x", 401),
    ([(b"cookie", b"a=\xff; session=\xfe\xfd")], "/x", 401),
    ([(b"authorization", b"\xc3\x28 Bearer x")], "/x", 401),
])
def test_non_utf8_header_values_never_crash_the_vm(proxy, headers, path, want):
    resp = raw_request(proxy.port, path, headers)
    assert status_of(resp) == want, resp[:200]
    # The VM is alive and still verifies tokens.
    good = make_token("RS256")
    reply = proxy.get("/x", headers={"authorization": f"Bearer {good}", "x-sub": "spoofed"})
    assert reply.status == 200
    assert reply.up_headers["x-sub"] == "user-1"


def test_valid_token_beside_non_utf8_headers(proxy):
    good = make_token("RS256")
    resp = raw_request(proxy.port, "/x", [(b"x-junk", b"\xff"), (b"authorization", b"Bearer " + good.encode())])
    assert status_of(resp) == 200
