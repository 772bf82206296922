"""Missing and bad tokens: 401, WWW-Authenticate and stable bodies."""
import time

import pytest

from tests.integration.checks import assert_invalid, assert_missing, assert_passed
from tests.support.tokens import make_token, tamper_payload, unsigned_token


def test_missing_token(main_envoy):
    assert_missing(main_envoy.get("/api/items?x=1"), main_envoy, "/api/items?x=1")


def test_empty_bearer_is_missing_or_invalid(main_envoy):
    reply = main_envoy.get("/api", headers={"Authorization": "Bearer "})
    assert reply.status == 401, reply


def test_other_auth_scheme_is_missing(main_envoy):
    reply = main_envoy.get("/api", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_missing(reply, main_envoy, "/api")


def test_expired(main_envoy):
    now = int(time.time())
    token = make_token(claims={"iat": now - 7200, "exp": now - 3600})
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Jwt is expired")


def test_not_yet_valid(main_envoy):
    now = int(time.time())
    token = make_token(claims={"nbf": now + 3600, "exp": now + 7200})
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Jwt not yet valid")


def test_expired_within_default_clock_skew_passes(main_envoy):
    now = int(time.time())
    token = make_token(claims={"iat": now - 600, "exp": now - 30})
    assert_passed(main_envoy.get("/api", token=token))


def test_nbf_within_default_clock_skew_passes(main_envoy):
    now = int(time.time())
    token = make_token(claims={"nbf": now + 30})
    assert_passed(main_envoy.get("/api", token=token))


def test_expired_beyond_default_clock_skew(main_envoy):
    now = int(time.time())
    token = make_token(claims={"iat": now - 600, "exp": now - 120})
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Jwt is expired")


def test_wrong_issuer(main_envoy):
    token = make_token(claims={"iss": "https://evil.test"})
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Jwt issuer is not configured")


def test_wrong_audience_is_401_not_403(main_envoy):
    token = make_token(claims={"aud": "someone-else"})
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Audiences in Jwt are not allowed")


def test_audience_list_intersecting(main_envoy):
    token = make_token(claims={"aud": ["someone-else", "api"]})
    assert_passed(main_envoy.get("/api", token=token))


def test_tampered_payload(main_envoy):
    token = tamper_payload(make_token(), sub="admin")
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Jwt verification fails")


def test_tampered_signature(main_envoy):
    token = make_token()
    head, body, sig = token.split(".")
    flipped = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    assert_invalid(main_envoy.get("/api", token=f"{head}.{body}.{flipped}"), main_envoy, "/api",
                   "Jwt verification fails")


def test_unknown_kid(main_envoy):
    token = make_token(kid="no-such-key")
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api",
                   "Jwks doesn't have key to match kid or alg from Jwt")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_rejected(main_envoy, alg):
    token = unsigned_token(header={"alg": alg, "typ": "JWT"})
    reply = main_envoy.get("/api", token=token)
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in (reply.www_authenticate or ""), reply


def test_alg_none_with_kid_rejected(main_envoy):
    token = unsigned_token(header={"alg": "none", "kid": "rsa-a"})
    reply = main_envoy.get("/api", token=token)
    assert reply.status == 401, reply


@pytest.mark.parametrize("token", ["abc", "abc.def", "a.b.c.d", "....", "eyJ.eyJ.sig"])
def test_malformed(main_envoy, token):
    reply = main_envoy.get("/api", token=token)
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in (reply.www_authenticate or ""), reply


def test_malformed_two_segments_body(main_envoy):
    assert_invalid(main_envoy.get("/api", token="abc.def"), main_envoy, "/api",
                   "Jwt is not in the form of Header.Payload.Signature")


@pytest.mark.parametrize("token", [
    "!!!.@@@.###",
    "eyJhbGciOiJSUzI1NiJ9.W10.c2ln",  # payload is a JSON array
    "bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln",  # header is not JSON
    "eyJhbGciOiJSUzI1NiJ9==.eyJzdWIiOiJ4In0=.c2ln",  # padded base64
])
def test_hostile_tokens_never_pass_and_never_5xx(main_envoy, token):
    reply = main_envoy.get("/api", token=token)
    assert reply.status == 401, reply


def test_huge_token_is_rejected_without_5xx(main_envoy):
    token = make_token(claims={"blob": "x" * 30000})
    reply = main_envoy.get("/api", token=token)
    assert reply.status in (401, 431), reply


def test_crit_header_rejected(main_envoy):
    token = make_token(headers={"crit": ["exp-unknown"], "exp-unknown": 1})
    reply = main_envoy.get("/api", token=token)
    assert reply.status == 401, reply


def test_jku_header_is_ignored_not_fetched(main_envoy):
    # Signed by rsa-b but claims kid rsa-a and points at a remote key set: must not verify.
    token = make_token(kid="rsa-a", key="rsa2048b.pem", headers={"jku": "http://127.0.0.1:1/jwks"})
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Jwt verification fails")


def test_never_5xx_for_many_requests(main_envoy):
    for i in range(20):
        assert main_envoy.get(f"/api/{i}", token=make_token("ES256")).status == 200
        assert main_envoy.get(f"/api/{i}", token="garbage").status == 401
