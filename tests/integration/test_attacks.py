"""Attack corpus in the real Envoy: known JWT attack classes (RFC 8725, the
CVE classes they come from) and hostile encodings. Each one must be refused with a 4xx
(never 2xx, never 5xx), and afterwards Envoy and the wasm VM must be healthy: a valid
token still passes, no VM was re-created or reloaded, and the log shows no VM failure.

A few inputs look hostile but are ACCEPTED BY DESIGN (and docs/security.md
says so): the same token sent twice, a percent-encoded token in a query parameter, blanks
around the token, a lower-case `bearer` scheme, fractional NumericDates. They are tested
here too, so that the policy is pinned.
"""
from __future__ import annotations

import base64
import json
import re
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from tests.integration.attack_tokens import (P256_N, P384_N, attacker_jwk, attacker_key, outcome, raw_signature,
                           refused, rsa_public_der, rsa_public_pem, sign, signing_input,
                           with_signature)
from tests.integration.harness import Reply
from tests.integration.configs import OTHER_AUDIENCE, OTHER_ISSUER, provider
from tests.support.tokens import (ISSUER, b64u, b64u_decode, default_claims, jwks_subset, make_token,
                    unsigned_token)

ATTACK_CONFIG = {
    "providers": {
        # Every test key (RSA, EC, Ed25519 and the HMAC key hs-1); default extraction
        # (Authorization: Bearer, then ?access_token=).
        "main": provider(),
        # Only rsa-a, token in x-a-token.
        "a_only": provider(local_jwks={"inline_string": jwks_subset("rsa-a")},
                           from_headers=[{"name": "x-a-token"}]),
        # Another issuer with only rsa-b, token in x-b-token.
        "b_only": provider(issuer=OTHER_ISSUER, audiences=[OTHER_AUDIENCE],
                           local_jwks={"inline_string": jwks_subset("rsa-b")},
                           from_headers=[{"name": "x-b-token"}]),
        "cookie": provider(from_cookies=["session"]),
        "query": provider(from_params=["jwt"]),
        "strict": provider(max_lifetime="3600s", require_expiration=True),
    },
    "rules": [
        {"match": {"prefix": "/only-a"}, "requires": {"provider_name": "a_only"}},
        {"match": {"prefix": "/only-b"}, "requires": {"provider_name": "b_only"}},
        {"match": {"prefix": "/cookie"}, "requires": {"provider_name": "cookie"}},
        {"match": {"prefix": "/query"}, "requires": {"provider_name": "query"}},
        {"match": {"prefix": "/strict"}, "requires": {"provider_name": "strict"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}},
    ],
}

#: Log lines that mean the wasm VM (or Envoy) failed while handling a request.
VM_FAILURE = re.compile(r"panicked|RuntimeError|Wasm VM failed|wasm trap|unreachable executed|"
                        r"Plugin .* failed|Function: proxy_on_\w+ failed", re.I)


def vm_counters(proxy) -> dict[str, int]:
    stats = proxy.stats("wasm")
    return {k: v for k, v in stats.items()
            if k in ("wasm.envoy.wasm.runtime.v8.created", "wasm.wasm_vm_count")
            or ".vm_reload" in k}


def assert_healthy(proxy, baseline: dict[str, int]) -> None:
    """Envoy is up, a valid token passes, and no VM was re-created / reloaded / failed."""
    assert proxy.running, proxy.log_tail()
    reply = proxy.get("/api", token=make_token())
    assert reply.status == 200, reply
    now = vm_counters(proxy)
    assert now == baseline, f"wasm VM counters changed: {baseline} -> {now}"
    bad = [line for line in proxy.log_text().splitlines() if VM_FAILURE.search(line)]
    assert not bad, "\n".join(bad[:5])


@pytest.fixture(scope="module")
def target(shared_envoy):
    proxy = shared_envoy(ATTACK_CONFIG)
    # Warm every worker's VM before taking the baseline.
    for _ in range(4):
        proxy.get("/api", token=make_token())
    return proxy, vm_counters(proxy)


@pytest.fixture
def proxy(target):
    """The attack Envoy; its health is checked after every test."""
    p, baseline = target
    yield p
    assert_healthy(p, baseline)


def send(proxy, token: str, path: str = "/api", header: str = "Authorization", prefix: str = "Bearer "):
    return proxy.get(path, headers={header: prefix + token})


def assert_401(reply, body: str | None = None, error: str = "invalid_token") -> None:
    assert reply.status == 401, reply
    if body is not None:
        assert reply.text == body, reply
    www = reply.www_authenticate or ""
    assert f'error="{error}"' in www, reply


def claims(**changes):
    c = default_claims()
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


# --- alg: none and other bad algs ---------------------------------------------------------------
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "none ", " none"])
@pytest.mark.parametrize("sig", ["", "trailing-dot", "garbage"])
def test_alg_none_variants(proxy, alg, sig):
    token = unsigned_token(header={"alg": alg, "typ": "JWT", "kid": "rsa-a"})  # ends with "."
    if sig == "garbage":
        token += b64u(b"\x00" * 32)
    if sig == "":
        token = token.rstrip(".")  # two segments, no trailing dot
    assert_401(send(proxy, token))


@pytest.mark.parametrize("header", [
    {"alg": "rs256", "kid": "rsa-a"}, {"alg": "RS256 ", "kid": "rsa-a"}, {"alg": "", "kid": "rsa-a"},
    {"alg": None, "kid": "rsa-a"}, {"alg": ["RS256"], "kid": "rsa-a"}, {"kid": "rsa-a"},
    {"alg": "ES521"}, {"alg": "HS1"}, {"alg": "RSA-OAEP"}, {"alg": "dir"},
])
def test_unknown_or_malformed_alg_with_a_real_signature(proxy, header):
    # The signature is a valid RS256 one: only the header's alg is wrong.
    assert_401(send(proxy, sign(header, alg="RS256")))


# --- HS/RS key confusion (the public key used as an HMAC secret) ------------------------------
@pytest.mark.parametrize("secret_name", ["spki_pem", "pkcs1_pem", "spki_der", "pem_no_newline"])
@pytest.mark.parametrize("kid", ["rsa-a", None])
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hs_rs_confusion_public_key_as_hmac_secret(proxy, secret_name, kid, alg):
    secret = {"spki_pem": rsa_public_pem(), "pkcs1_pem": rsa_public_pem(fmt="pkcs1"),
              "spki_der": rsa_public_der(), "pem_no_newline": rsa_public_pem().rstrip(b"\n")}[secret_name]
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    token = sign(header, key=secret)
    # Against the provider that also has an HMAC key (hs-1) and the RSA-only one.
    assert_401(send(proxy, token))
    assert_401(send(proxy, token, path="/only-a", header="x-a-token", prefix=""))


def test_hmac_with_the_jwks_text_as_secret(proxy):
    secret = jwks_subset("rsa-a").encode()
    assert_401(send(proxy, sign({"alg": "HS256", "kid": "rsa-a"}, key=secret), path="/only-a",
                    header="x-a-token", prefix=""))


# --- kid games ------------------------------------------------------------------------------------
def test_kid_pointing_to_another_providers_key(proxy):
    # Signed with rsa-b (the b_only provider's key), claims for provider a_only.
    token = make_token("RS256", kid="rsa-b", key="rsa2048b.pem")
    assert_401(send(proxy, token, path="/only-a", header="x-a-token", prefix=""),
               "Jwks doesn't have key to match kid or alg from Jwt")
    # Without a kid the a_only key is tried, and fails.
    token = make_token("RS256", kid=None, key="rsa2048b.pem")
    assert_401(send(proxy, token, path="/only-a", header="x-a-token", prefix=""), "Jwt verification fails")
    # The b_only provider's own token for its own issuer passes there (sanity), not at /a.
    own = make_token("RS256", kid="rsa-b", key="rsa2048b.pem",
                     claims={"iss": OTHER_ISSUER, "aud": OTHER_AUDIENCE})
    assert send(proxy, own, path="/only-b", header="x-b-token", prefix="").status == 200
    assert_401(send(proxy, own, path="/only-a", header="x-a-token", prefix=""))


@pytest.mark.parametrize("kid", [
    "../../../../../../etc/passwd", "/dev/null", "..\\..\\windows\\win.ini", "file:///etc/passwd",
    "' OR '1'='1", "rsa-a' --", "rsa-a\" OR 1=1; DROP TABLE keys; --", "rsa-a\u0000", "rsa-a ",
    "RSA-A", "*", "%", "rsa-%", "${jndi:ldap://127.0.0.1/a}", "{{7*7}}", "rsa-a\r\nx-injected: 1",
    "k" * 4000, "\u202erev", "",
])
def test_hostile_kid_with_valid_signature(proxy, kid):
    # A correct RS256 signature by rsa-a: only the kid is hostile, so nothing matches it.
    token = sign({"alg": "RS256", "kid": kid})
    assert_401(send(proxy, token))


@pytest.mark.parametrize("kid", [123, None, ["rsa-a"], {"kid": "rsa-a"}, True])
def test_non_string_kid(proxy, kid):
    # kid null is "no kid": the token is then tried against the keys that fit RS256 and
    # passes (jwt_authn behaves the same); any other non-string kid is malformed.
    reply = send(proxy, sign({"alg": "RS256", "kid": kid}))
    if kid is None:
        assert reply.status == 200, reply
    else:
        assert_401(reply, "Jwt is not in the form of Header.Payload.Signature")


# --- key injection through the header ---------------------------------------------------------
@pytest.mark.parametrize("injected", ["jwk", "jku", "x5u", "x5c", "all"])
@pytest.mark.parametrize("kid", ["attacker", "rsa-a", None])
def test_header_key_injection_is_ignored(proxy, injected, kid):
    header: dict = {"alg": "RS256"}
    if kid:
        header["kid"] = kid
    fake_cert = base64.b64encode(b"0\x82\x01\x00 not a real certificate").decode()
    extras = {"jwk": attacker_jwk(kid or "attacker"), "jku": "http://127.0.0.1:1/jwks.json",
              "x5u": "http://127.0.0.1:1/cert.pem", "x5c": [fake_cert]}
    if injected == "all":
        header.update(extras)
    else:
        header[injected] = extras[injected]
    token = sign(header, key=attacker_key())
    assert_401(send(proxy, token))


# --- crit -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", [
    {"alg": "RS256", "kid": "rsa-a", "crit": ["exp"], "exp": 1},
    {"alg": "RS256", "kid": "rsa-a", "crit": ["b64"], "b64": False},
    {"alg": "RS256", "kid": "rsa-a", "crit": ["http://example.invalid/unknown"]},
    {"alg": "RS256", "kid": "rsa-a", "crit": []},
    {"alg": "RS256", "kid": "rsa-a", "crit": "exp"},
    {"alg": "RS256", "kid": "rsa-a", "crit": None},
])
def test_crit_is_refused(proxy, header):
    # Any crit member, even null or [] (both invalid per RFC 7515 4.1.11), is refused.
    assert_401(send(proxy, sign(header)))


# --- ECDSA: r = s = 0, r or s >= n (CVE-2022-21449 class), DER signatures ---------------------
def _ecdsa_parts(alg: str):
    n, size = (P256_N, 32) if alg == "ES256" else (P384_N, 48)
    token = make_token(alg)
    sig = b64u_decode(token.split(".")[2])
    r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
    return token, n, size, r, s


@pytest.mark.parametrize("alg", ["ES256", "ES384"])
@pytest.mark.parametrize("case", ["r=s=0", "r=0", "s=0", "r=n", "s=n", "r=n+1", "s=n+1", "r=s=n",
                                  "r=n-1,s=n-1", "all-ff"])
def test_ecdsa_out_of_range_signatures(proxy, alg, case):
    token, n, size, r, s = _ecdsa_parts(alg)
    values = {"r=s=0": (0, 0), "r=0": (0, s), "s=0": (r, 0), "r=n": (n, s), "s=n": (r, n),
              "r=n+1": (n + 1, s), "s=n+1": (r, n + 1), "r=s=n": (n, n), "r=n-1,s=n-1": (n - 1, n - 1)}
    if case == "all-ff":
        sig = b"\xff" * (2 * size)
    else:
        rr, ss = values[case]
        sig = rr.to_bytes(size, "big") + ss.to_bytes(size, "big")
    assert_401(send(proxy, with_signature(token, sig)))


@pytest.mark.parametrize("alg,key,digest", [("ES256", "ec256.pem", hashes.SHA256()),
                                            ("ES384", "ec384.pem", hashes.SHA384())])
def test_ecdsa_der_signature_instead_of_raw(proxy, alg, key, digest):
    from tests.support.tokens import private_key

    token = make_token(alg)
    si = token.rsplit(".", 1)[0].encode()
    der = private_key(key).sign(si, ec.ECDSA(digest))  # a correct signature, DER-encoded
    assert_401(send(proxy, with_signature(token, der)))


# --- RSA signature encodings ------------------------------------------------------------------
def _rsa_token_with_leading_zero() -> str:
    # PKCS#1 v1.5 is deterministic: vary jti until the signature's first byte is 0x00.
    for i in range(5000):
        token = make_token("RS256", claims={"jti": f"lz-{i}"})
        if b64u_decode(token.split(".")[2])[0] == 0:
            return token
    pytest.skip("no RS256 signature with a leading zero byte found")


def test_rsa_signature_leading_zero_stripped(proxy):
    token = _rsa_token_with_leading_zero()
    assert send(proxy, token).status == 200  # the original verifies
    sig = b64u_decode(token.split(".")[2])
    assert_401(send(proxy, with_signature(token, sig[1:])), "Jwt verification fails")


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_rsa_signature_zero_padded(proxy, alg):
    token = make_token(alg)
    sig = b64u_decode(token.split(".")[2])
    assert_401(send(proxy, with_signature(token, b"\x00" + sig)), "Jwt verification fails")
    assert_401(send(proxy, with_signature(token, sig + b"\x00")), "Jwt verification fails")


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256", "ES384", "EdDSA", "HS256", "HS512"])
@pytest.mark.parametrize("change", ["truncated", "one-byte-short", "extended", "doubled", "single-byte"])
def test_signature_of_the_wrong_length(proxy, alg, change):
    token = make_token(alg)
    sig = b64u_decode(token.split(".")[2])
    bad = {"truncated": sig[: len(sig) // 2], "one-byte-short": sig[:-1], "extended": sig + b"\x01",
           "doubled": sig + sig, "single-byte": sig[:1]}[change]
    assert_401(send(proxy, with_signature(token, bad)))


def test_signature_segment_encodings(proxy):
    token = make_token("RS256")
    head, payload, sig = token.split(".")
    std = base64.b64encode(b64u_decode(sig)).decode()  # standard alphabet, padded
    for bad in [f"{head}.{payload}.{sig}=", f"{head}.{payload}.{sig}==", f"{head}.{payload}.{std}",
                f"{head}.{payload}.", f"{head}.{payload}.{sig}.", f"{head}.{payload}.{sig}.{sig}",
                f"{head}..{sig}", f".{payload}.{sig}", f"{head}.{payload}.{sig[:-1]}*",
                f"{head}={payload}={sig}", f"{head}.{payload}.{sig} x"]:
        assert_401(send(proxy, bad))


# --- duplicate JSON members ---------------------------------------------------------------------
def test_duplicate_header_members(proxy):
    for raw in ['{"alg":"RS256","alg":"none","kid":"rsa-a"}',
                '{"alg":"RS256","kid":"rsa-a","kid":"rsa-b"}',
                '{"alg":"RS256","kid":"rsa-a","crit":["x"],"crit":[]}']:
        assert_401(send(proxy, sign(raw, alg="RS256")))


def test_duplicate_payload_members(proxy):
    c = default_claims()
    body = json.dumps(c)[:-1]
    for dup in ['"sub":"admin"', f'"iss":"{ISSUER}"', '"exp":1', '"aud":"api"']:
        raw = body + "," + dup + "}"
        assert_401(send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, raw)),
                   "Jwt is not in the form of Header.Payload.Signature")


@pytest.mark.parametrize("nested", [
    '"org":{"role":"user","role":"admin"}',
    '"org":{"team":{"id":1,"id":2}}',
    '"groups":[{"name":"a"},{"name":"a","name":"b"}]',
])
def test_duplicate_nested_members_are_refused(proxy, nested):
    # Duplicates at any depth: a backend keeping the first `role` would see another one.
    raw = json.dumps(default_claims())[:-1] + "," + nested + "}"
    assert_401(send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, raw)),
               "Jwt is not in the form of Header.Payload.Signature")
    clean = json.dumps(default_claims())[:-1] + ',"org":{"role":"user","team":{"role":"x"}}}'
    assert send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, clean)).status == 200


@pytest.mark.parametrize("header", ['["RS256","rsa-a"]', '["RS256"]', '"RS256"', "null"])
def test_jose_header_must_be_an_object(proxy, header):
    assert_401(send(proxy, sign(header, alg="RS256")),
               "Jwt is not in the form of Header.Payload.Signature")


# --- NumericDate and aud types ------------------------------------------------------------------
NOW = int(time.time())


@pytest.mark.parametrize("name,value,path,expect", [
    ("exp", str(NOW + 600), "/api", 401),          # string
    ("exp", f"{NOW + 600}.0", "/api", 401),
    ("exp", None, "/strict", 401),                 # missing where required
    ("exp", [NOW + 600], "/api", 401),
    ("exp", {"v": NOW + 600}, "/api", 401),
    ("exp", True, "/api", 401),
    ("exp", NOW - 3600.5, "/api", 401),            # float, past
    ("exp", NOW + 600.5, "/api", 200),             # float, future: NumericDate may be fractional
    ("exp", -1, "/api", 401),                      # negative
    ("exp", -1e300, "/api", 401),
    ("exp", 1e300, "/strict", 401),                # huge: over max_lifetime
    ("exp", 10 ** 30, "/strict", 401),
    ("exp", 2 ** 64, "/strict", 401),
    ("exp", 1e300, "/api", 401),                   # huge: not a positive 64-bit integer (jwt_authn)
    ("exp", 2 ** 64 - 1, "/api", 401),             # 2^64 as a double: out of range too
    ("exp", 10 ** 19, "/api", 200),                # under 2^64: a far-future exp
    ("nbf", str(NOW - 10), "/api", 401),
    ("nbf", NOW + 3600.5, "/api", 401),            # float, future
    ("nbf", NOW - 10.25, "/api", 200),             # float, past
    ("nbf", 1e300, "/api", 401),
    ("nbf", 2 ** 64, "/api", 401),
    ("nbf", -1, "/api", 401),                      # negative: refused, as by jwt_authn
    ("iat", -1, "/api", 401),
    ("iat", 1e300, "/api", 401),
    ("iat", "now", "/api", 401),
    ("iat", NOW - 7200, "/strict", 401),           # exp - iat over max_lifetime
])
def test_numeric_dates(proxy, name, value, path, expect):
    payload = claims(**{name: value}) if value is not None else claims(exp=None)
    reply = send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, payload), path=path)
    if expect == 200:
        assert reply.status == 200, reply
    else:
        assert_401(reply)


def test_numbers_beyond_f64_are_malformed(proxy):
    raw = json.dumps(default_claims())[:-1] + ',"exp2":1e400}'
    assert_401(send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, raw)))
    raw = json.dumps(claims(exp=None))[:-1] + ',"exp":1e400}'
    assert_401(send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, raw)))


@pytest.mark.parametrize("aud", [123, 1.5, True, {"aud": "api"}, [123], [["api"]], [{"a": "api"}],
                                 [None], [], "", "API", "api ", " api", "api\u0000", "apix",
                                 # One matching string beside an ill-typed member is no pass.
                                 ["api", 123], ["api", None], ["api", ["api"]]])
def test_aud_not_a_matching_string(proxy, aud):
    assert_401(send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, claims(aud=aud))),
               "Audiences in Jwt are not allowed")


def test_aud_null_is_absent(proxy):
    assert_401(send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, claims(aud=None))),
               "Audiences in Jwt are not allowed")


@pytest.mark.parametrize("iss", [None, 1, ["https://issuer.test"], "https://issuer.test/",
                                 "https://ISSUER.test", "https://issuer.test\u0000"])
def test_iss_must_match_exactly(proxy, iss):
    payload = claims(iss=iss) if iss is not None else claims(iss=None)
    assert_401(send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, payload)), "Jwt issuer is not configured")


# --- structure and size -------------------------------------------------------------------------
def test_nested_json_10000_deep(proxy):
    # 10,000 levels do not fit in the 16 KiB token bound (or in Envoy's header limit).
    for deep in ['{"a":' * 10000 + "1" + "}" * 10000, "[" * 10000 + "]" * 10000]:
        raw = json.dumps(default_claims())[:-1] + ',"x":' + deep + "}"
        token = sign({"alg": "RS256", "kid": "rsa-a"}, raw)
        result = outcome(lambda: send(proxy, token))
        assert refused(result), result


@pytest.mark.parametrize("depth,expect", [(100, 200), (126, 200), (130, 401), (200, 401), (2000, 401)])
def test_nested_json_depth_within_the_size_bound(proxy, depth, expect):
    # serde_json's recursion limit (128 levels) applies below the size bound.
    raw = json.dumps(default_claims())[:-1] + ',"x":' + "[" * depth + "]" * depth + "}"
    reply = send(proxy, sign({"alg": "RS256", "kid": "rsa-a"}, raw))
    if expect == 200:
        assert reply.status == 200, reply
    else:
        assert_401(reply, "Jwt is not in the form of Header.Payload.Signature")


def test_header_deep_unknown_member(proxy):
    # 10,000 levels: over the size bound.
    raw = '{"alg":"RS256","kid":"rsa-a","x":' + "[" * 10000 + "]" * 10000 + "}"
    assert refused(outcome(lambda: send(proxy, sign(raw, alg="RS256"))))
    # Within the size bound: the header is read whole by the strict reader (duplicate
    # names refused at every depth), which stops at serde_json's 128 levels: malformed.
    raw = '{"alg":"RS256","kid":"rsa-a","x":' + "[" * 5000 + "]" * 5000 + "}"
    assert_401(send(proxy, sign(raw, alg="RS256")))
    # An unknown member nested within the bound is read and ignored: the token verifies.
    raw = '{"alg":"RS256","kid":"rsa-a","x":' + "[" * 100 + "]" * 100 + "}"
    assert send(proxy, sign(raw, alg="RS256")).status == 200
    # Deep nesting in a member the filter reads is malformed.
    raw = '{"alg":"RS256","kid":' + "[" * 200 + "]" * 200 + "}"
    assert_401(send(proxy, sign(raw, alg="RS256")))


def test_16k_token_over_the_bound(proxy):
    token = make_token(claims={"pad": "x" * 16 * 1024})
    assert_401(send(proxy, token), "Jwt is too large")


@pytest.mark.parametrize("where", ["header", "query", "cookie"])
def test_1mb_token(proxy, where):
    token = make_token(claims={"pad": "x" * (768 * 1024)})
    assert len(token) > 1_000_000
    if where == "header":
        result = outcome(lambda: send(proxy, token))
    elif where == "query":
        result = outcome(lambda: proxy.get(f"/query?jwt={token}"))
    else:
        result = outcome(lambda: proxy.get("/cookie", cookies={"session": token}))
    assert refused(result), result


def test_100_cookies(proxy):
    token = make_token()
    jar = {f"c{i}": f"v{i}" for i in range(100)}
    jar["session"] = token
    assert proxy.get("/cookie", cookies=jar).status == 200
    # 100 cookies named like the token cookie, all different: refused as ambiguous.
    many = "; ".join(f"session={make_token(claims={'jti': str(i)})}" for i in range(100))
    assert_401(proxy.get("/cookie", cookies=many), error="invalid_request")
    # 100 cookies, none of them the token: missing.
    reply = proxy.get("/cookie", cookies={f"c{i}": "x" * 50 for i in range(100)})
    assert reply.status == 401 and reply.text == "Jwt is missing", reply


def test_random_bytes_as_token(proxy):
    import os

    for n in (1, 3, 64, 1000, 8000):
        junk = base64.urlsafe_b64encode(os.urandom(n)).decode().rstrip("=")
        for token in (junk, f"{junk}.{junk}.{junk}", f"{junk}.{junk}"):
            assert_401(send(proxy, token))


def test_non_ascii_and_control_bytes(proxy):
    token = make_token()
    for bad in [token + "\u00e9", "\u00e9" + token, token.replace(".", "\u3002", 1)]:
        result = outcome(lambda: Reply(proxy.session.get(proxy.url + "/api", timeout=10, headers={
            "Authorization": ("Bearer " + bad).encode("utf-8")})))
        assert refused(result), result


# --- more than one token ------------------------------------------------------------------------
def test_two_different_tokens_in_two_locations_is_invalid_request(proxy):
    a, b = make_token(claims={"sub": "alice"}), make_token(claims={"sub": "bob"})
    reply = proxy.get(f"/api?access_token={b}", token=a)
    assert_401(reply, "Jwt is presented more than once", error="invalid_request")
    # Even when one of them is garbage (no "first one wins").
    reply = proxy.get("/api?access_token=garbage", token=a)
    assert_401(reply, error="invalid_request")


def test_two_different_tokens_in_the_same_header_twice(proxy):
    a, b = make_token(claims={"sub": "alice"}), make_token(claims={"sub": "bob"})
    # Two Authorization headers (Envoy keeps both) -> refused.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.putrequest("GET", "/api")
    conn.putheader("Authorization", f"Bearer {a}")
    conn.putheader("Authorization", f"Bearer {b}")
    conn.endheaders()
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 401


def test_same_token_twice_is_accepted(proxy):
    # ACCEPTED BY DESIGN: the same token in the header and the query is one token.
    token = make_token()
    assert proxy.get(f"/api?access_token={token}", token=token).status == 200


# --- accepted-by-design encodings ---------------------------------------------------------------
def test_url_encoded_token_in_query_param_is_decoded(proxy):
    token = make_token()
    encoded = "".join(f"%{ord(c):02X}" if c in ".-_" else c for c in token)
    assert proxy.get(f"/query?jwt={encoded}").status == 200
    # Decoding happens once: a doubly-encoded token is not a token.
    double = encoded.replace("%", "%25")
    assert_401(proxy.get(f"/query?jwt={double}"))


@pytest.mark.parametrize("value", ["Bearer  {t}", "Bearer {t}  ", "Bearer \t{t}\t", "bearer {t}",
                                   "BEARER {t}", "bEaReR {t}"])
def test_whitespace_and_scheme_case_are_accepted(proxy, value):
    # ACCEPTED BY DESIGN: blanks are trimmed; the scheme is case-insensitive (RFC 7235).
    token = make_token()
    assert proxy.get("/api", headers={"Authorization": value.format(t=token)}).status == 200


@pytest.mark.parametrize("value", ["Bearer{t}", "Bearer,{t}", "Bearer: {t}", "Token {t}", "{t}",
                                   "Bearer {t} {t}", "Bearer {t},Bearer {t}"])
def test_other_scheme_spellings_never_pass(proxy, value):
    token = make_token()
    reply = proxy.get("/api", headers={"Authorization": value.format(t=token)})
    assert reply.status == 401, reply


# --- tampering on a good token ------------------------------------------------------------------
def test_payload_swapped_between_tokens(proxy):
    mine = make_token(claims={"sub": "mallory"})
    admin = make_token(claims={"sub": "admin", "exp": NOW + 99999})
    h, _, s = mine.split(".")
    assert_401(send(proxy, f"{h}.{admin.split('.')[1]}.{s}"), "Jwt verification fails")


def test_header_swapped_alg_keeps_signature(proxy):
    token = make_token("RS256")
    _, p, s = token.split(".")
    for hdr in ({"alg": "PS256", "kid": "rsa-a"}, {"alg": "RS384", "kid": "rsa-a"},
                {"alg": "HS256", "kid": "hs-1"}):
        assert_401(send(proxy, f"{b64u(json.dumps(hdr).encode())}.{p}.{s}"))


def test_rsa_pss_signature_under_rs256_header(proxy):
    from tests.support.tokens import private_key

    si = signing_input({"alg": "RS256", "kid": "rsa-a"}, default_claims())
    pss = private_key("rsa2048.pem").sign(si.encode(), padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                                          hashes.SHA256())
    assert_401(send(proxy, si + "." + b64u(pss)), "Jwt verification fails")


def test_eddsa_signature_with_other_message(proxy):
    token = make_token("EdDSA")
    other = raw_signature("EdDSA", b"something else")
    assert_401(send(proxy, with_signature(token, other)), "Jwt verification fails")


def test_requests_after_the_corpus_still_pass(proxy):
    for alg in ("RS256", "PS512", "ES256", "ES384", "EdDSA", "HS384"):
        assert send(proxy, make_token(alg)).status == 200, alg
    with requests.Session() as s:
        assert s.get(proxy.url + "/api").status_code == 401
