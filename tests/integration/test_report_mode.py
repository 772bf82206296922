"""Report-only mode and the status header: nothing is rejected under a report
rule; the would-be denial is counted; the status header tells the backend the outcome and
cannot be spoofed."""
import pytest

from tests.integration.checks import assert_missing, assert_passed
from tests.integration.configs import provider
from tests.integration.observability import series, values
from tests.support.tokens import make_token, tamper_payload

REPORT = {
    "mode": "report",
    "status_header": "x-jwt-status",
    "providers": {"main": provider(claim_to_headers=[{"header_name": "x-jwt-sub", "claim_name": "sub"}])},
    "rules": [
        {"match": {"prefix": "/public"}},
        {"match": {"prefix": "/enforced"}, "requires": {"provider_name": "main"}, "mode": "enforce"},
        {"match": {"prefix": "/scoped"}, "requires": {"provider_name": "main"}, "required_scopes": ["admin"]},
        {"match": {"prefix": "/maybe"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "main"}, {"allow_missing_or_failed": {}}]}}, "mode": "enforce"},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}},
    ],
}


@pytest.fixture
def proxy(shared_envoy):
    return shared_envoy(REPORT)


def status_of(reply):
    return assert_passed(reply)["headers"].get("x-jwt-status")


def test_missing_token_passes_marked_missing(proxy):
    assert status_of(proxy.get("/api")) == "missing"


@pytest.mark.parametrize("make", [
    lambda: make_token(claims={"exp": 1000}),
    lambda: tamper_payload(make_token(), sub="admin"),
    lambda: make_token(claims={"iss": "https://evil.test"}),
    lambda: "not-a-jwt",
])
def test_bad_tokens_pass_marked_invalid(proxy, make):
    token = make()
    up = assert_passed(proxy.get("/api", token=token))
    assert up["headers"]["x-jwt-status"] == "invalid"
    # Nothing else changes: no claim headers, the token is left where it was.
    assert "x-jwt-sub" not in up["headers"]
    assert up["headers"]["authorization"] == f"Bearer {token}"


def test_valid_token_is_valid_with_annotations(proxy):
    up = assert_passed(proxy.get("/api", token=make_token()))
    assert up["headers"]["x-jwt-status"] == "valid"
    assert up["headers"]["x-jwt-sub"] == "user-1"
    assert "authorization" not in up["headers"]  # forward: false still applies


def test_insufficient_scope_is_unauthorized(proxy):
    assert status_of(proxy.get("/scoped", token=make_token())) == "unauthorized"
    assert status_of(proxy.get("/scoped", token=make_token(claims={"scope": "admin"}))) == "valid"


def test_rule_mode_overrides_top_level(proxy):
    assert_missing(proxy.get("/enforced"), proxy, "/enforced")
    assert status_of(proxy.get("/enforced", token=make_token())) == "valid"


def test_allow_missing_or_failed_statuses(proxy):
    assert status_of(proxy.get("/maybe")) == "missing"
    assert status_of(proxy.get("/maybe", token=make_token(claims={"exp": 1000}))) == "invalid"
    assert status_of(proxy.get("/maybe", token=make_token())) == "valid"


@pytest.mark.parametrize("spoof", ["valid", "unauthorized"])
def test_status_header_cannot_be_spoofed(proxy, spoof):
    assert status_of(proxy.get("/api", headers={"X-Jwt-Status": spoof})) == "missing"
    # No JWT needed: the client's copy is replaced by `not_required`.
    assert status_of(proxy.get("/public", headers={"x-jwt-status": spoof})) == "not_required"


def test_status_header_on_every_request_let_through(proxy):
    # Routes that need no token, with or without one, and CORS preflights.
    assert status_of(proxy.get("/public")) == "not_required"
    assert status_of(proxy.get("/public/x", token=make_token())) == "not_required"
    assert status_of(proxy.get("/public", token="not-a-jwt")) == "not_required"


def test_would_deny_counters_move_and_nothing_is_denied(envoy):
    proxy = envoy(REPORT)
    proxy.get("/api")                                         # missing
    proxy.get("/api", token=make_token(claims={"exp": 1000}))  # expired
    proxy.get("/api", token=make_token(claims={"exp": 1000}))  # expired
    proxy.get("/scoped", token=make_token())                  # insufficient_scope
    proxy.get("/api", token=make_token())                     # allowed
    proxy.get("/enforced")                                    # enforced: denied missing
    m = values(proxy)

    def dec(decision, reason, mode):
        return m[series("jwt_filter_decisions_total", decision=decision, reason=reason, mode=mode)]

    def total(decision):
        return sum(v for k, v in m.items()
                   if k.startswith("jwt_filter_decisions_total{") and f'decision="{decision}"' in k)
    assert total("would_deny") == 4
    assert dec("would_deny", "missing", "report") == 1
    assert dec("would_deny", "expired", "report") == 2
    assert dec("would_deny", "insufficient_scope", "report") == 1
    assert total("allow") == 1
    assert dec("allow", "none", "report") == 1
    assert total("deny") == 1
    assert dec("deny", "missing", "enforce") == 1
    assert dec("deny", "expired", "enforce") == 0
    assert m[series("jwt_filter_provider_decisions_total", provider="main", decision="deny")] == 1
