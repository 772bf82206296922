"""Parity with Envoy's native jwt_authn, side by side in real Envoys, and the
security checks (bounds, forward: false, duplicate names, JOSE header shape)."""
from __future__ import annotations

import base64
import json

import pytest

from tests.support.tokens import AUDIENCE, ISSUER, jwks_text, make_token

JWT_AUTHN = "envoy.filters.http.jwt_authn"


def native_provider(**extra) -> dict:
    p = {"issuer": ISSUER, "audiences": [AUDIENCE],
         "local_jwks": {"inline_string": jwks_text()}}
    p.update(extra)
    return p


def jwt_authn_filter(providers: dict, rules: list) -> dict:
    return {"name": JWT_AUTHN, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": providers, "rules": rules}}


def side_by_side(envoy, providers: dict, rules: list):
    """(native jwt_authn Envoy, this filter's Envoy) for the same providers and rules."""
    native = envoy(None, with_filter=False, extra_filters=[jwt_authn_filter(providers, rules)])
    plugin = envoy({"providers": providers, "rules": rules})
    return native, plugin


# --- claim_to_headers for every JSON type ---------------------------------------------------
CLAIM_VALUES = {
    "str": "hello",
    "empty_str": "",
    "unicode": "h\u00e9llo <&> \"q\"",
    "int": 42,
    "zero": 0,
    "neg": -7,
    "frac": 1.5,
    "long_frac": 0.1234567891,
    "big": 1e20,
    "huge_int": 1541815603606036481,
    "tiny": 1e-7,
    "true": True,
    "false": False,
    "null": None,
    "list": ["str1", "str2"],
    "mixed_list": [1, "a", True, None, 2.5],
    "empty_list": [],
    "obj": {"b": "x", "a": 1, "c": [True]},
    "empty_obj": {},
    "nested": {"inner": {"k": "v"}},
    "u63": 9223372036854775807,
    "e19": 1e19,
    "u64max": 18446744073709551615,
    "neg_zero": -0.0,
    "e300": 1e300,
    "num_list": [1e20, 1541815603606036481, 0.1, -0.0, 1e-7, 100.0, -3, 1e300, 123456789012.5],
    "str_list": ["h\u00e9llo <&> \"q\" \\ /", "\u2028\u00ff\U0001F600", "\t"],
    "one_obj": {"k": [1, {"z": None}]},
}


def _json_of(header: str | None):
    try:
        return json.loads(base64.b64decode(header, validate=True))
    except (TypeError, ValueError):
        return None


def test_claim_to_headers_match_jwt_authn(envoy):
    """Every JSON type, byte for byte as jwt_authn writes it; an object of several
    members only as the same JSON (jwt_authn's member order is its hash map's, and
    changes from one Envoy process to the next)."""
    headers = [{"header_name": f"x-c-{name.replace('_', '-')}", "claim_name": f"c_{name}"}
               for name in CLAIM_VALUES]
    headers.append({"header_name": "x-c-path", "claim_name": "c_nested.inner.k"})
    providers = {"p": native_provider(claim_to_headers=headers)}
    rules = [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
    native, plugin = side_by_side(envoy, providers, rules)
    claims = {f"c_{k}": v for k, v in CLAIM_VALUES.items()}
    token = make_token(claims=claims)
    a, b = native.get("/", token=token), plugin.get("/", token=token)
    assert a.status == b.status == 200, (a, b)
    diffs = []
    for h in [h["header_name"] for h in headers]:
        na, nb = a.up_headers.get(h), b.up_headers.get(h)
        if na == nb:
            continue
        if h == "x-c-obj" and _json_of(na) == _json_of(nb) == CLAIM_VALUES["obj"]:
            continue
        diffs.append(f"{h}: native {na!r}, plugin {nb!r}")
    assert not diffs, "\n".join(diffs)
    # The comparison saw every kind of outcome.
    assert b.up_headers["x-c-list"] == base64.b64encode(b'["str1","str2"]').decode()
    assert b.up_headers["x-c-frac"] == "1.500000"
    assert "x-c-null" not in b.up_headers and "x-c-empty-str" not in b.up_headers


# --- NumericDate range ------------------------------------------------------------------------
def numeric_date_cases() -> dict:
    import time
    now = int(time.time())
    cases = {}
    for claim in ("exp", "nbf", "iat"):
        for name, value in {"neg": -1, "neg_big": -1e300, "zero": 0, "small_frac": 1.5,
                            "e300": 1e300, "i63": 9223372036854775807, "u63": 9223372036854775808,
                            "e19": 1e19, "u64max": 18446744073709551615, "u64": 18446744073709551616,
                            "e20": 1e20, "now_frac": now + 0.5, "future_frac": now + 600.5,
                            "past": now - 3600, "future": now + 3600, "neg_zero": -0.0}.items():
            cases[f"{claim}_{name}"] = {claim: value}
    return cases


#: Kept strict on purpose (docs/jwt_authn-deviations.md): jwt_authn reads `exp: 0` as "no
#: expiry"; here it is a date in 1970, so the token is expired.
NUMERIC_DATE_DEVIATIONS = {("exp_zero", 200, 401), ("exp_neg_zero", 200, 401)}


def test_numeric_dates_match_jwt_authn(envoy):
    providers = {"p": native_provider()}
    rules = [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
    native, plugin = side_by_side(envoy, providers, rules)
    diffs, seen = [], {}
    for case, claims in numeric_date_cases().items():
        token = make_token(claims=claims)
        a, b = native.get("/", token=token), plugin.get("/", token=token)
        seen[case] = (a.status, b.status)
        if a.status != b.status and (case, a.status, b.status) not in NUMERIC_DATE_DEVIATIONS:
            diffs.append(f"{case}: native {a.status} {a.text!r}, plugin {b.status} {b.text!r}")
    assert not diffs, "\n".join(diffs)
    for case in ("exp_neg", "exp_e300", "exp_u64max", "nbf_neg", "iat_neg", "iat_e300", "iat_e20"):
        assert seen[case] == (401, 401), case
    for case in ("exp_e19", "exp_future_frac", "iat_u63", "nbf_small_frac"):
        assert seen[case] == (200, 200), case


# --- status_header on every request let through --------------------------------------------
def test_status_header_set_on_cors_preflight_and_public_routes(shared_envoy):
    from tests.integration import configs
    proxy = shared_envoy(configs.main_config(status_header="x-jwt-status"))
    preflight = proxy.request("OPTIONS", "/api", headers={
        "Origin": "https://app.test", "Access-Control-Request-Method": "POST",
        "x-jwt-status": "valid"})
    assert preflight.up_headers["x-jwt-status"] == "not_required"
    assert proxy.get("/public", headers={"x-jwt-status": "valid"}).up_headers["x-jwt-status"] == "not_required"
    assert proxy.get("/api", token=make_token()).up_headers["x-jwt-status"] == "valid"
    assert proxy.get("/allow-missing").up_headers["x-jwt-status"] == "missing"


# --- every query parameter and cookie looked at -------------------------------------------------
@pytest.fixture
def main_proxy(shared_envoy):
    from tests.integration import configs
    return shared_envoy(configs.MAIN)


def test_second_token_after_many_query_parameters_is_seen(main_proxy):
    valid = make_token()
    other = make_token(claims={"sub": "someone-else"})
    filler = "&".join(f"p{i}=v" for i in range(1000))
    # A different token past the 1000th parameter: two tokens, refused.
    reply = main_proxy.get(f"/api?{filler}&access_token={other}", token=valid)
    assert reply.status == 401 and reply.text == "Jwt is presented more than once", reply
    # An invalid token there on an allow_missing route is judged like one at parameter 1.
    bad = "x.y.z"
    first = main_proxy.get(f"/allow-missing?access_token={bad}&{filler}")
    later = main_proxy.get(f"/allow-missing?{filler}&access_token={bad}")
    assert first.status == later.status == 401, (first, later)
    # The same token there: accepted, and stripped from the query (forward: false).
    up = main_proxy.get(f"/api?{filler}&access_token={valid}", token=valid)
    assert valid not in up.up_path and "access_token" not in up.up_path
    assert up.up_path.endswith("p999=v")


def test_second_cookie_after_many_cookies_is_seen(main_proxy):
    valid = make_token()
    other = make_token(claims={"sub": "someone-else"})
    filler = "; ".join(f"c{i}=v" for i in range(1000))
    reply = main_proxy.get("/cookie", cookies=f"session={valid}; {filler}; session={other}")
    assert reply.status == 401 and reply.text == "Jwt is presented more than once", reply
    up = main_proxy.get("/cookie", cookies=f"{filler}; session={valid}")
    assert up.status == 200
    assert "session=" not in up.up_headers.get("cookie", "")


# --- forward: false removes every copy ---------------------------------------------------------
def test_forward_false_strips_the_token_from_every_location(main_proxy):
    token = make_token()
    up = main_proxy.get(f"/api?keep=1&access_token={token}", token=token).upstream
    assert "authorization" not in up["headers"]
    assert up["path"] == "/api?keep=1"
    assert token not in json.dumps(up)


# --- numeric required_claims compared exactly -------------------------------------------------
EXACT_CLAIMS = {
    "providers": {"p": native_provider()},
    "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"},
               "required_claims": [{"name": "tenant_id", "values": [1541815603606036480]}]}],
}


def test_numeric_required_claims_are_exact(shared_envoy):
    proxy = shared_envoy(EXACT_CLAIMS)
    assert proxy.get("/", token=make_token(claims={"tenant_id": 1541815603606036480})).status == 200
    for other in (1541815603606036481, 1541815603606036479, 1.541815603606036481e18):
        reply = proxy.get("/", token=make_token(claims={"tenant_id": other}))
        assert reply.status == 403, (other, reply)


@pytest.mark.parametrize("value", [4.5, 1e30, 0.1])
def test_inexact_required_claim_values_refuse_the_config(envoy_expect_fail, value):
    cfg = json.loads(json.dumps(EXACT_CLAIMS))
    cfg["rules"][0]["required_claims"][0]["values"] = [value]
    log = envoy_expect_fail(cfg)
    assert "rules[0].required_claims[0].values[0]" in log and "not an exact integer" in log, log[-2000:]


# --- ES512 ------------------------------------------------------------------------------------
def test_es512_verified_like_jwt_authn(envoy):
    """A P-521 JWK loads and ES512 tokens verify, on the host path and the pure one."""
    providers = {"p": native_provider()}
    rules = [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
    native, plugin = side_by_side(envoy, providers, rules)
    pure = envoy({"providers": providers, "rules": rules, "host_crypto": False})
    good = make_token("ES512")
    head, body, sig = good.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    cases = {"valid": (good, 200), "bad_sig": (f"{head}.{body}.{flipped}", 401),
             "wrong_curve_kid": (make_token("ES512", kid="ec-384"), 401),
             "es384_on_p521": (make_token("ES384", kid="ec-521"), 401)}
    for name, (token, want) in cases.items():
        got = [p.get("/", token=token).status for p in (native, plugin, pure)]
        assert got == [want] * 3, (name, got)


# --- Google's x509 key map as a JWKS ---------------------------------------------------------
def python_made_certificate():
    """(private key, PEM certificate) made with Python `cryptography`."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_x509_key_map_inline_and_remote_like_jwt_authn(envoy):
    """Inline and remote, with openssl-made certificates (fixtures) and one made by Python
    `cryptography`; verdicts side by side with native jwt_authn."""
    from tests.integration import harness
    from tests.support.jwks_server import JwksServer
    from tests.support.tokens import KEYS_DIR

    py_key, py_cert = python_made_certificate()
    key_map = json.loads((KEYS_DIR / "x509_map.json").read_text())
    rsa_only = {"rsa-a": key_map["rsa-a"], "py-rsa": py_cert}
    server = JwksServer(json.dumps(rsa_only))
    try:
        remote = {"http_uri": {"uri": "http://idp.test/x509", "cluster": "jwks", "timeout": "1s"},
                  "cache_duration": "600s"}
        providers = {
            "inline": {"issuer": ISSUER, "audiences": [AUDIENCE],
                       "local_jwks": {"inline_string": json.dumps(rsa_only)}},
            "remote": {"issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": remote},
        }
        rules = [{"match": {"prefix": "/inline"}, "requires": {"provider_name": "inline"}},
                 {"match": {"prefix": "/remote"}, "requires": {"provider_name": "remote"}}]
        clusters = [harness.static_cluster("jwks", server.port)]
        native = envoy(None, with_filter=False, extra_filters=[jwt_authn_filter(providers, rules)],
                       extra_clusters=clusters)
        plugin = envoy({"providers": providers, "rules": rules}, extra_clusters=clusters)
        cases = {
            "openssl_cert": (make_token("RS256", kid="rsa-a"), 200),
            "python_cert": (make_token("RS256", kid="py-rsa", key=py_key), 200),
            "no_kid": (make_token("RS256", kid=None, key=py_key), 200),
            "kid_of_other_cert": (make_token("RS256", kid="rsa-a", key=py_key), 401),
            "unknown_kid": (make_token("RS256", kid="nope"), 401),
            "not_in_map": (make_token("RS256", kid="rsa-b", key="rsa2048b.pem"), 401),
        }
        for path in ("/inline", "/remote"):
            for name, (token, want) in cases.items():
                got = (native.get(path, token=token).status, plugin.get(path, token=token).status)
                assert got == (want, want), (path, name, got)
    finally:
        server.close()


def test_x509_key_map_with_ec_certificates(envoy):
    """EC certificates (P-256, P-521, made by openssl) in the map work here too."""
    from tests.support.tokens import KEYS_DIR

    key_map = (KEYS_DIR / "x509_map.json").read_text()
    proxy = envoy({"providers": {"p": {"issuer": ISSUER, "audiences": [AUDIENCE],
                                       "local_jwks": {"inline_string": key_map}}},
                   "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]})
    for alg in ("ES256", "ES512", "RS256"):
        assert proxy.get("/", token=make_token(alg)).status == 200, alg
    assert proxy.get("/", token=make_token("ES384")).status == 401


# --- unsafe setups said at configure time ---------------------------------------------------
def _oct(kid: str, secret: bytes) -> dict:
    from tests.support.tokens import b64u
    return {"kty": "oct", "kid": kid, "k": b64u(secret)}


@pytest.mark.filterwarnings("ignore:The HMAC key is 1 bytes long")
def test_unsafe_setups_logged_one_line_each(envoy):
    import time

    from tests.integration import harness
    jwks = json.loads(jwks_text())
    jwks["keys"] += [_oct("short-hs", b"s" * 20),
                     dict(json.loads(jwks_text())["keys"][0], kid="sign-only", key_ops=["sign"]),
                     _oct("one-byte", b"x")]
    clean = {"issuer": ISSUER, "audiences": [AUDIENCE], "require_expiration": True,
             "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}]}
    cfg = {"providers": {
        "local": dict(clean, local_jwks={"inline_string": json.dumps(jwks)}),
        "plain": dict(clean, remote_jwks={
            "http_uri": {"uri": "http://idp.test/jwks", "cluster": "jwks", "timeout": "1s"}})},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "local"}}]}
    proxy = envoy(cfg, concurrency=1, extra_clusters=[harness.static_cluster("jwks", 9)])
    proxy.get("/")
    deadline = time.monotonic() + 5
    while "configured" not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [l for l in proxy.log_text().splitlines() if "jwt_filter: " in l]
    # Every VM (the main thread's and each worker's) configures and says it once.
    vms = len([l for l in lines if "jwt_filter: configured " in l])
    assert vms >= 2, lines
    warned = [l for l in lines if "jwt_filter: warning: " in l]
    assert len([l for l in warned if "providers.plain.remote_jwks.http_uri.uri: " in l
                and "plain HTTP" in l and l.endswith(" [plain_http_jwks]")]) == vms, warned
    assert len([l for l in warned if "providers.local.local_jwks.inline_string: " in l
                and '"short-hs"' in l and "20-byte" in l
                and l.endswith(" [short_hmac_secret]")]) == vms, warned
    skipped = [l for l in warned if l.endswith(" [skipped_key]")]
    assert any('"sign-only"' in l and "key_ops" in l for l in skipped), skipped
    assert any('"one-byte"' in l and "too short" in l for l in skipped), skipped
    # Nothing else is wrong with this config: 2 skipped keys + 2 unsafe setups per VM.
    assert len(warned) == 4 * vms, warned
    # The refused keys verify nothing; the others still work.
    assert proxy.get("/", token=make_token("RS256", kid="sign-only")).status == 401
    assert proxy.get("/", token=make_token("RS256")).status == 200
    assert proxy.get("/", token=make_token("HS256", kid="one-byte", key=b"x")).status == 401
    # No secret in the log.
    assert "c3Nzc3Nz" not in proxy.log_text()


@pytest.mark.parametrize("jwks,reason", [
    ('{"keys":[{"kty":"oct","kid":"a","k":"eA"}]}', "too short"),
    ('{"keys":[{"kty":"oct","kid":"a","k":"' + "A" * 43 + '","k":"' + "B" * 43 + '"}]}',
     "duplicate member"),
])
def test_keys_that_cannot_be_used_safely_refuse_the_config(envoy_expect_fail, jwks, reason):
    cfg = {"providers": {"p": {"issuer": ISSUER, "local_jwks": {"inline_string": jwks}}},
           "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]}
    log = envoy_expect_fail(cfg)
    assert reason in log, log[-3000:]
    assert "A" * 43 not in log and "B" * 43 not in log


# --- rule header matchers on a repeated header ------------------------------------------------
def _raw_get(proxy, headers: list[tuple[str, str]]) -> int:
    """GET / with `headers` sent as they are, a name repeated when it is listed twice."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.putrequest("GET", "/")
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


HEADER_MATCHERS = {
    "exact": {"exact_match": "public"},
    "exact_inverted": {"exact_match": "internal", "invert_match": True},
    "prefix": {"prefix_match": "pub"},
    "suffix": {"suffix_match": "lic"},
    "contains": {"contains_match": "public"},
    "regex": {"safe_regex_match": {"regex": "public"}},
    "string_match": {"string_match": {"exact": "public"}},
    "present": {"present_match": True},
    "present_inverted": {"present_match": True, "invert_match": True},
}
HEADER_VALUES = [(), ("public",), ("internal",), ("internal", "public"), ("public", "internal"),
                 ("public", "public"), ("internal", "internal"), ("", "public"),
                 ("internal,public",), ("public,internal",)]


@pytest.mark.parametrize("kind", HEADER_MATCHERS)
def test_rule_header_matchers_on_repeated_headers_match_jwt_authn(envoy, kind):
    """A rule exempting requests by a header: the same verdict as jwt_authn whatever the
    number and order of that header's values."""
    providers = {"p": native_provider()}
    rules = [{"match": {"prefix": "/", "headers": [dict(name="x-env", **HEADER_MATCHERS[kind])]}},
             {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
    native, plugin = side_by_side(envoy, providers, rules)
    seen = {}
    for values in HEADER_VALUES:
        headers = [("x-env", v) for v in values]
        want, got = _raw_get(native, headers), _raw_get(plugin, headers)
        seen[values] = (want, got)
    assert all(w == g for w, g in seen.values()), seen
    assert {w for w, _ in seen.values()} == {200, 401}, seen
