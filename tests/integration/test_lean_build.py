"""The lean module (dist/jwt_filter-lean.wasm, built without the `revocation` Cargo
feature) in the real Envoy: it decides as the default module does, and refuses a
configuration that asks for revocation feeds, naming the field, instead of ignoring it.

`./build.sh test` also runs the verdict suites (LEAN_TESTS in build.sh) with this module.
"""
from __future__ import annotations

import pathlib

import pytest

from tests.integration.configs import provider
from tests.integration.harness import Envoy
from tests.support import ROOT
from tests.support.envoy import READY_TIMEOUT
from tests.support.tokens import make_token

LEAN = ROOT / "dist" / "jwt_filter-lean.wasm"
RULES = [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]


@pytest.fixture(scope="module")
def lean() -> pathlib.Path:
    if not LEAN.exists():
        pytest.fail(f"{LEAN} missing: ./build.sh build makes it", pytrace=False)
    return LEAN


def test_lean_module_decides_as_the_default(echo_port, lean):
    proxy = Envoy(echo_port, {"providers": {"p": provider()}, "rules": RULES}, concurrency=1,
                  wasm=lean).start()
    try:
        assert proxy.get("/x", headers={"Authorization": f"Bearer {make_token()}"}).status == 200
        assert proxy.get("/x").status == 401
        expired = make_token(claims={"exp": 1_000_000, "iat": 999_000})
        assert proxy.get("/x", headers={"Authorization": f"Bearer {expired}"}).status == 401
        tampered = make_token()[:-4] + "AAAA"
        assert proxy.get("/x", headers={"Authorization": f"Bearer {tampered}"}).status == 401
        assert proxy.get("/x", headers={"Authorization": f"Bearer {make_token('ES256')}"}).status == 200
    finally:
        proxy.stop()


def test_lean_module_refuses_revocation_naming_the_field(echo_port, lean):
    revocation = {"deny_list": {"http_uri": {"uri": "http://lists.test/deny.json", "cluster": "lists",
                                             "timeout": "5s"}}}
    proxy = Envoy(echo_port, {"providers": {"p": provider(revocation=revocation)}, "rules": RULES},
                  concurrency=1, wasm=lean)
    try:
        proxy.launch()
        code = proxy.wait_exit(READY_TIMEOUT)
        assert code is not None and code != 0, f"Envoy started with the refused config\n{proxy.log_tail()}"
        lines = [line for line in proxy.log_text().splitlines() if "wasm log" in line]
        assert any("providers.p.revocation" in line and "`revocation` feature" in line for line in lines), \
            "\n".join(lines[-10:])
    finally:
        proxy.stop()
