"""Every size the filter accepts from outside is bounded ("Limits and config
safety"); reaching a bound is a clean 4xx or a refused configuration. One test per bound,
at the bound (accepted) and just past it (refused). The bounds are the constants in src/:

    token                 16 KiB          token.rs MAX_TOKEN_BYTES           -> 401 Jwt is too large
    token-carrying header 64 KiB          extract.rs MAX_HEADER_VALUE_BYTES  -> 401 Jwt is too large
      (also the Cookie header and the path when a query parameter may carry the token;
       within it every parameter and cookie is looked at)
    claim JSON depth      128 levels      serde_json recursion limit         -> 401 malformed (test_attacks)
    keys tried w/o kid    8               token.rs MAX_KEY_TRIES             -> 401 verification fails
    claim header value    8 KiB           policy.rs MAX_CLAIM_HEADER_BYTES   -> header not written
    keys per JWKS         256             jwks.rs MAX_KEYS                   -> config refused / fetch failed
    RSA modulus           2048..8192 bits jwks.rs MIN/MAX_RSA_BITS           -> key skipped
    remote JWKS body      256 KiB         keys/store.rs MAX_JWKS_BYTES       -> fetch failed, 401
    providers / rules     64 / 1024       config.rs MAX_PROVIDERS/MAX_RULES  -> config refused
    requirement nesting   8               config.rs MAX_REQUIREMENT_DEPTH    -> config refused
    regex length          1024 bytes      matcher/build.rs MAX_REGEX_LEN     -> config refused
    claim path segments   16              token.rs MAX_CLAIM_PATH_SEGMENTS   -> config refused
    scopes/claims/values  64/32/256       authz.rs MAX_REQUIRED_*            -> config refused
    jwt_cache_size        100,000         token_cache.rs MAX_ENTRIES         -> config refused

Envoy's own limit comes first for whole requests: request headers over
`max_request_headers_kb` (60 KiB by default) get 431 before the filter runs. The tests of
the filter's 64 KiB header bound therefore raise that Envoy limit to 128 KiB.
"""
from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.integration import harness
from tests.integration.attack_tokens import outcome, refused, sign
from tests.integration.configs import provider
from tests.integration.harness import Envoy, EnvoyStartError
from tests.support.jwks_server import JwksServer
from tests.support.tokens import b64u, default_claims, jwks_subset, make_token

MAX_TOKEN_BYTES = 16 * 1024
MAX_HEADER_VALUE_BYTES = 64 * 1024
MAX_KEYS = 256
MAX_KEY_TRIES = 8
MAX_CLAIM_HEADER_BYTES = 8 * 1024
MAX_JWKS_BYTES = 256 * 1024
MAX_REGEX_LEN = 1024

RSA_A = json.loads(jwks_subset("rsa-a"))["keys"][0]
RSA_B = json.loads(jwks_subset("rsa-b"))["keys"][0]


def no_kid(jwk: dict) -> dict:
    return {k: v for k, v in jwk.items() if k != "kid"}


LIMITS_CONFIG = {
    "providers": {
        "main": provider(claim_to_headers=[{"header_name": "x-jwt-big", "claim_name": "big"}]),
        "cookie": provider(from_cookies=["session"]),
        "query": provider(from_params=["jwt"]),
        # Without a kid, at most MAX_KEY_TRIES keys are tried: the right key is 8th / 9th.
        "tries8": provider(local_jwks={"inline_string": json.dumps(
            {"keys": [no_kid(RSA_B)] * (MAX_KEY_TRIES - 1) + [no_kid(RSA_A)]})}),
        "tries9": provider(local_jwks={"inline_string": json.dumps(
            {"keys": [no_kid(RSA_B)] * MAX_KEY_TRIES + [no_kid(RSA_A)]})}),
        # Exactly MAX_KEYS keys in one JWKS is fine.
        "many_keys": provider(local_jwks={"inline_string": json.dumps(
            {"keys": [dict(RSA_A, kid=f"k{i}") for i in range(MAX_KEYS)]})}),
    },
    "rules": [
        {"match": {"prefix": "/cookie"}, "requires": {"provider_name": "cookie"}},
        {"match": {"prefix": "/query"}, "requires": {"provider_name": "query"}},
        {"match": {"prefix": "/tries8"}, "requires": {"provider_name": "tries8"}},
        {"match": {"prefix": "/tries9"}, "requires": {"provider_name": "tries9"}},
        {"match": {"prefix": "/many-keys"}, "requires": {"provider_name": "many_keys"}},
        {"match": {"safe_regex": {"regex": "^/re/" + "a?" * ((MAX_REGEX_LEN - 6) // 2) + "$"}},
         "requires": {"provider_name": "main"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}},
    ],
}


def raise_header_limit(proxy: Envoy, kb: int = 128) -> None:
    """Rewrites the instance's bootstrap (before start) with a larger max_request_headers_kb."""
    cfg = yaml.safe_load(proxy.config_path.read_text())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["max_request_headers_kb"] = kb
    proxy.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="module")
def big(echo_port):
    """Envoy with LIMITS_CONFIG and a 128 KiB request-header limit."""
    proxy = Envoy(echo_port, LIMITS_CONFIG, concurrency=2)
    raise_header_limit(proxy)
    try:
        proxy.start()
    except EnvoyStartError as err:
        pytest.fail(str(err), pytrace=False)
    yield proxy
    proxy.stop()


def token_of_length(n: int, alg: str = "RS256") -> str:
    """A valid token exactly n characters long (pads a claim and, if needed, the header)."""
    base = len(make_token(alg, claims={"pad": ""}))
    for extra_header in range(0, 4):
        header = {"alg": alg, "kid": "rsa-a", **({"x": "h" * extra_header} if extra_header else {})}
        for pad in range(max(0, (n - base) * 3 // 4 - 8), (n - base) * 3 // 4 + 8):
            c = dict(default_claims(), pad="p" * pad)
            si_len = len(b64u(json.dumps(header, separators=(",", ":")).encode())) + 1 + \
                len(b64u(json.dumps(c, separators=(",", ":")).encode()))
            if si_len + 1 + 342 == n:  # RS256 with a 2048-bit key: 256-byte sig -> 342 chars
                token = sign(header, c, alg="RS256")
                assert len(token) == n
                return token
    raise AssertionError(f"cannot make a token of exactly {n} chars")


# --- token size ---------------------------------------------------------------------------------
def test_token_at_the_bound_passes_and_one_byte_more_is_too_large(big):
    at = token_of_length(MAX_TOKEN_BYTES)
    assert big.get("/api", token=at).status == 200
    over = token_of_length(MAX_TOKEN_BYTES + 1)
    reply = big.get("/api", token=over)
    assert reply.status == 401 and reply.text == "Jwt is too large", reply
    assert 'error="invalid_token"' in reply.www_authenticate


def test_token_size_bound_applies_in_query_and_cookie(big):
    over = token_of_length(MAX_TOKEN_BYTES + 1)
    for reply in (big.get(f"/query?jwt={over}"), big.get("/cookie", cookies={"session": over})):
        assert reply.status == 401 and reply.text == "Jwt is too large", reply


# --- header value size ----------------------------------------------------------------------------
def test_header_value_over_64k_is_too_large(big):
    value = "Bearer " + "a" * (MAX_HEADER_VALUE_BYTES + 1)
    reply = big.get("/api", headers={"Authorization": value})
    assert reply.status == 401 and reply.text == "Jwt is too large", reply
    cookie = "session=x; pad=" + "c" * MAX_HEADER_VALUE_BYTES
    reply = big.get("/cookie", headers={"Cookie": cookie})
    assert reply.status == 401 and reply.text == "Jwt is too large", reply


def test_header_value_just_under_64k_is_not_a_size_error_of_the_header(big):
    # Under the header bound the token bound decides (the value is one 60 KiB "token").
    value = "Bearer " + "a" * (MAX_HEADER_VALUE_BYTES - 100)
    reply = big.get("/api", headers={"Authorization": value})
    assert reply.status == 401 and reply.text == "Jwt is too large", reply
    # A big unrelated cookie next to a good cookie token is fine.
    cookie = f"pad={'c' * (MAX_HEADER_VALUE_BYTES - 20000)}; session={make_token()}"
    assert big.get("/cookie", headers={"Cookie": cookie}).status == 200


def test_envoy_default_header_limit_answers_431_before_the_filter(shared_envoy):
    from tests.integration import configs

    proxy = shared_envoy(configs.MAIN)
    result = outcome(lambda: proxy.get("/api", headers={"Authorization": "Bearer " + "a" * (70 * 1024)}))
    assert refused(result), result
    assert proxy.get("/api", token=make_token()).status == 200


# --- params and cookies scanned ------------------------------------------------------------------
def test_query_param_and_cookie_past_the_256th_are_seen(big):
    token = make_token()
    filler = "&".join(f"p{i}=v" for i in range(2000))
    assert big.get(f"/query?{filler}&jwt={token}").status == 200
    filler = "; ".join(f"c{i}=v" for i in range(2000))
    assert big.get("/cookie", cookies=f"{filler}; session={token}").status == 200


def test_path_over_64k_is_refused_where_a_parameter_may_carry_the_token(big):
    # Past the bound the filter cannot look at every parameter: it refuses, never cuts.
    filler = "p=v&" * (MAX_HEADER_VALUE_BYTES // 4 + 16)
    reply = big.get(f"/query?{filler}jwt={make_token()}")
    assert reply.status == 401 and reply.text == "Jwt is too large", reply
    filler = "; ".join(["c=v"] * (MAX_HEADER_VALUE_BYTES // 5 + 16))
    reply = big.get("/cookie", cookies=f"{filler}; session={make_token()}")
    assert reply.status == 401 and reply.text == "Jwt is too large", reply


# --- keys tried without a kid -------------------------------------------------------------------
def test_at_most_8_keys_are_tried_for_a_token_without_kid(big):
    token = make_token("RS256", kid=None)
    assert big.get("/tries8", token=token).status == 200
    reply = big.get("/tries9", token=token)
    assert reply.status == 401 and reply.text == "Jwt verification fails", reply
    # With its kid... the kid-less keys are all candidates again; still at most 8 tries.
    assert big.get("/tries9", token=make_token("RS256", kid="rsa-a")).status == 401


# --- claim header value -------------------------------------------------------------------------
def test_claim_header_over_8k_is_not_written(big):
    ok = make_token(claims={"big": "b" * MAX_CLAIM_HEADER_BYTES})
    reply = big.get("/api", token=ok)
    assert reply.up_headers.get("x-jwt-big") == "b" * MAX_CLAIM_HEADER_BYTES
    over = make_token(claims={"big": "b" * (MAX_CLAIM_HEADER_BYTES + 1)})
    reply = big.get("/api", token=over)
    assert "x-jwt-big" not in reply.up_headers
    # ...and a client cannot send its own copy either.
    reply = big.get("/api", token=over, headers={"x-jwt-big": "spoofed"})
    assert "x-jwt-big" not in reply.up_headers


# --- keys per JWKS, RSA size, regex length: config bounds ---------------------------------------
def test_256_keys_is_accepted(big):
    assert big.get("/many-keys", token=make_token(kid="k255")).status == 200


def _cfg(prov: dict, rules: list | None = None) -> dict:
    return {"providers": {"p": prov},
            "rules": rules or [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]}


def _rsa_jwk_with_bits(bits: int) -> dict:
    n = (1 << (bits - 1)) | 1 | (0x5A5A << (bits // 2))
    return {"kty": "RSA", "kid": f"rsa{bits}", "e": "AQAB",
            "n": b64u(n.to_bytes((bits + 7) // 8, "big"))}


CONFIG_BOUNDS = {
    "jwks_257_keys": (_cfg(provider(local_jwks={"inline_string": json.dumps(
        {"keys": [dict(RSA_A, kid=f"k{i}") for i in range(MAX_KEYS + 1)]})})), "256"),
    "rsa_over_8192_bits_only_key": (_cfg(provider(local_jwks={"inline_string": json.dumps(
        {"keys": [_rsa_jwk_with_bits(8200)]})})), "jwks"),
    "regex_over_1024": (_cfg(provider(), [{"match": {"safe_regex": {"regex": "^/" + "a" * MAX_REGEX_LEN}},
                                           "requires": {"provider_name": "p"}}]), "regex"),
    "providers_over_64": ({"providers": {f"p{i}": provider() for i in range(65)},
                           "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p0"}}]},
                          "providers"),
    "rules_over_1024": (_cfg(provider(), [{"match": {"prefix": f"/r{i}"}, "requires": {"provider_name": "p"}}
                                          for i in range(1025)]), "rules"),
    "requirements_nested_over_8": (_cfg(provider(), [{"match": {"prefix": "/"}, "requires": (
        lambda r: [r := {"requires_any": {"requirements": [r, {"allow_missing": {}}]}} for _ in range(9)][-1])(
        {"provider_name": "p"})}]), "nested"),
    "claim_path_over_16_segments": (_cfg(provider(claim_to_headers=[
        {"header_name": "x-deep", "claim_name": ".".join(["a"] * 17)}])), "claim"),
    "required_scopes_over_64": (_cfg(provider(), [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"},
                                                   "required_scopes": [f"s{i}" for i in range(65)]}]), "64"),
    "required_claims_over_32": (_cfg(provider(), [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"},
                                                   "required_claims": [{"name": f"c{i}", "values": ["v"]}
                                                                       for i in range(33)]}]), "32"),
    "claim_values_over_256": (_cfg(provider(), [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"},
                                                 "required_claims": [{"name": "c", "values": [
                                                     f"v{i}" for i in range(257)]}]}]), "256"),
    "jwt_cache_size_over_100000": (_cfg(provider(jwt_cache_config={"jwt_cache_size": 100_001})), "cache"),
}


@pytest.mark.parametrize("name", list(CONFIG_BOUNDS))
def test_config_over_a_bound_is_refused(envoy_expect_fail, name):
    config, needle = CONFIG_BOUNDS[name]
    log = envoy_expect_fail(config)
    assert needle.lower() in log.lower(), log[-2000:]


def test_config_at_the_bounds_starts(shared_envoy):
    cfg = {"providers": {f"p{i}": provider() for i in range(64)},
           "rules": [{"match": {"prefix": f"/r{i}"}, "requires": {"provider_name": "p0"}} for i in range(1023)]
           + [{"match": {"safe_regex": {"regex": "^/" + "a" * (MAX_REGEX_LEN - 2)}},
               "requires": {"provider_name": "p1"}}]}
    proxy = shared_envoy(cfg, concurrency=1)
    assert proxy.get("/r5", token=make_token()).status == 200
    assert proxy.get("/r5").status == 401


# --- remote JWKS body size and key count --------------------------------------------------------
def _remote_provider() -> dict:
    p = provider()
    p.pop("local_jwks")
    p["remote_jwks"] = {"http_uri": {"uri": "http://jwks.local/jwks", "cluster": "jwks", "timeout": "1s"},
                        "cache_duration": "600s"}
    return p


def _padded_jwks(size: int) -> str:
    doc = json.loads(jwks_subset("rsa-a"))
    text = json.dumps(doc)
    doc["pad"] = "x" * (size - len(text) - len(', "pad": ""'))
    out = json.dumps(doc)
    assert len(out) == size, (len(out), size)
    return out


@pytest.mark.parametrize("size,expect", [(MAX_JWKS_BYTES, 200), (MAX_JWKS_BYTES + 1, 401),
                                         (4 * MAX_JWKS_BYTES, 401)])
def test_remote_jwks_body_bound(echo_port, size, expect):
    server = JwksServer(_padded_jwks(size))
    proxy = Envoy(echo_port, _cfg(_remote_provider()), concurrency=2,
                  extra_clusters=[harness.static_cluster("jwks", server.port)])
    try:
        proxy.start()
        deadline = time.monotonic() + 8
        reply = proxy.get("/api", token=make_token())
        while reply.status != expect and time.monotonic() < deadline:
            time.sleep(0.2)
            reply = proxy.get("/api", token=make_token())
        assert reply.status == expect, reply
        if expect == 401:
            assert reply.text == "Jwks remote fetch is failed", reply
        assert server.count >= 1
    finally:
        proxy.stop()
        server.close()


def test_remote_jwks_with_too_many_keys_is_a_failed_fetch(echo_port):
    server = JwksServer(json.dumps({"keys": [dict(RSA_A, kid=f"k{i}") for i in range(MAX_KEYS + 1)]}))
    proxy = Envoy(echo_port, _cfg(_remote_provider()), concurrency=2,
                  extra_clusters=[harness.static_cluster("jwks", server.port)])
    try:
        proxy.start()
        time.sleep(1.0)
        reply = proxy.get("/api", token=make_token(kid="k1"))
        assert reply.status == 401 and reply.text == "Jwks remote fetch is failed", reply
    finally:
        proxy.stop()
        server.close()
