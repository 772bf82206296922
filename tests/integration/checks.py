"""Assertions on the filter's answers."""
from __future__ import annotations

import re
import time

from tests.integration.harness import Envoy, Reply

REALM_RE = re.compile(r'^Bearer realm="([^"]*)"(.*)$')


def realm_for(proxy: Envoy, path: str) -> str:
    return f"http://127.0.0.1:{proxy.port}{path.split('?', 1)[0]}"


def assert_missing(reply: Reply, proxy: Envoy, path: str) -> None:
    """401, body `Jwt is missing`, WWW-Authenticate: Bearer realm="http://host/path" (no error)."""
    assert reply.status == 401, reply
    assert reply.text == "Jwt is missing", reply
    assert reply.www_authenticate == f'Bearer realm="{realm_for(proxy, path)}"', reply


def assert_invalid(reply: Reply, proxy: Envoy, path: str, body: str) -> None:
    """401 for a presented-but-bad token: error="invalid_token" with a description."""
    assert reply.status == 401, reply
    assert reply.text == body, reply
    www = reply.www_authenticate
    assert www is not None, reply
    m = REALM_RE.match(www)
    assert m, f"unexpected WWW-Authenticate {www!r}"
    assert m.group(1) == realm_for(proxy, path), www
    rest = m.group(2)
    assert ', error="invalid_token"' in rest, www
    assert re.search(r', error_description="[^"]+"', rest), www


def assert_passed(reply: Reply) -> dict:
    """200 from the echo upstream; returns the echoed request."""
    assert reply.status == 200, reply
    return reply.upstream


def eventually(fn, timeout: float = 8.0, interval: float = 0.1):
    """Calls fn every `interval` seconds until it returns a true value or `timeout` seconds
    have passed; returns its last value (for the caller's assert)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
