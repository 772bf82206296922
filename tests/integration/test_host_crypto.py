"""Signature verification offloaded to Envoy's `verify_signature` gives the same
verdict as the pure-Rust path on valid and hostile tokens, for every offloaded algorithm;
the start-up probe logs which path each algorithm takes; and the verified-token cache
hits on a repeated token but never lets an expired one through."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from tests.integration.configs import provider
from tests.integration.observability import series, values
from tests.support.tokens import MINTED, b64u, b64u_decode, default_claims, make_token, private_key

OFFLOADED = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
PURE = ["PS256", "PS384", "PS512", "EdDSA", "HS256", "HS384", "HS512"]
ORDERS = {
    "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ES384": int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16),
    "ES512": int("01" + "FF" * 32 + "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16),
}
CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
KIDS = {"ES256": "ec-256", "ES384": "ec-384", "ES512": "ec-521"}


def config(host_crypto: bool) -> dict:
    # Cache off: every request reaches the signature check.
    return {
        "host_crypto": host_crypto,
        "providers": {"p": provider(jwt_cache_config={"disabled": True})},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
    }


def with_sig(token: str, sig: bytes) -> str:
    head, body, _ = token.split(".")
    out = f"{head}.{body}.{b64u(sig)}"
    MINTED.append(out)
    return out


def sig_of(token: str) -> bytes:
    return b64u_decode(token.split(".")[2])


def hmac_signed(header: dict, secret: bytes) -> str:
    """HS256 by hand (PyJWT refuses PEM-looking HMAC keys)."""
    head = b64u(json.dumps(header).encode())
    body = b64u(json.dumps(default_claims()).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    token = f"{head}.{body}.{b64u(sig)}"
    MINTED.append(token)
    return token


def der_sig(raw: bytes) -> bytes:
    half = len(raw) // 2
    return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def cases(alg: str) -> dict[str, tuple[str, int]]:
    """name -> (token, expected status)."""
    good = make_token(alg)
    sig = sig_of(good)
    out: dict[str, tuple[str, int]] = {"valid": (good, 200)}
    flipped = bytearray(sig)
    flipped[-1] ^= 1
    out["wrong_sig"] = (with_sig(good, bytes(flipped)), 401)
    out["zero_sig"] = (with_sig(good, bytes(len(sig))), 401)
    out["truncated_sig"] = (with_sig(good, sig[:-1]), 401)
    out["extended_sig"] = (with_sig(good, sig + b"\x00"), 401)
    out["leading_zero_sig"] = (with_sig(good, b"\x00" + sig), 401)
    head, body, s = good.split(".")
    claims = json.loads(b64u_decode(body))
    claims["sub"] = "admin"
    tampered = f"{head}.{b64u(json.dumps(claims).encode())}.{s}"
    MINTED.append(tampered)
    out["tampered_payload"] = (tampered, 401)
    pem = private_key("rsa2048.pem").public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    out["alg_confusion_hs256"] = (hmac_signed({"alg": "HS256", "kid": "rsa-a"}, pem), 401)
    if alg.startswith("RS"):
        out["wrong_key"] = (make_token(alg, kid="rsa-a", key="rsa2048b.pem"), 401)
        out["rs_header_ec_kid"] = (make_token(alg, kid="ec-256", key="rsa2048.pem"), 401)
        n = private_key("rsa2048.pem").public_key().public_numbers().n
        out["sig_equals_modulus"] = (with_sig(good, n.to_bytes(256, "big")), 401)
        out["sig_above_modulus"] = (with_sig(good, (n + 1).to_bytes(256, "big")), 401)
        out["sig_all_ff"] = (with_sig(good, b"\xff" * 256), 401)
    else:
        size = len(sig) // 2
        order = ORDERS[alg]
        other = ec.generate_private_key(CURVES[alg])
        out["wrong_key"] = (make_token(alg, key=other), 401)
        out["der_sig"] = (with_sig(good, der_sig(sig)), 401)
        out["r_s_zero"] = (with_sig(good, bytes(2 * size)), 401)
        r, s_ = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
        out["r_zero"] = (with_sig(good, bytes(size) + sig[size:]), 401)
        out["s_zero"] = (with_sig(good, sig[:size] + bytes(size)), 401)
        out["r_is_order"] = (with_sig(good, order.to_bytes(size, "big") + sig[size:]), 401)
        out["r_plus_order"] = (with_sig(good, ((r + order) % (1 << (8 * size))).to_bytes(size, "big") + sig[size:]), 401)
        out["s_is_order"] = (with_sig(good, sig[:size] + order.to_bytes(size, "big")), 401)
        # ECDSA accepts the high-S twin (n - s) of a valid signature; both paths must agree.
        out["high_s_twin"] = (with_sig(good, sig[:size] + (order - s_).to_bytes(size, "big")), 200)
        out["ec_header_rsa_kid"] = (make_token(alg, kid="rsa-a", key=other), 401)
        other_curve = "ES384" if alg == "ES256" else "ES256"
        out["other_curve_kid"] = (make_token(other_curve, kid=KIDS[alg]), 401)
    return out


def verdict(reply) -> tuple:
    """Status, and for denials the body and the challenge without the realm (its port differs)."""
    if reply.status == 200:
        return (200,)
    www = (reply.www_authenticate or "").split('", ', 1)[-1]
    return reply.status, reply.text, www


@pytest.fixture(scope="module")
def both(shared_envoy):
    return shared_envoy(config(True)), shared_envoy(config(False))


@pytest.mark.parametrize("alg", OFFLOADED)
def test_same_verdicts_with_and_without_offload(both, alg):
    on, off = both
    mismatches = []
    for name, (token, want) in cases(alg).items():
        a = on.get("/api", token=token)
        b = off.get("/api", token=token)
        if verdict(a) != verdict(b):
            mismatches.append(f"{name}: host {a!r} vs wasm {b!r}")
        elif a.status != want:
            mismatches.append(f"{name}: both gave {a.status}, expected {want} ({a!r})")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("alg", PURE)
def test_pure_algorithms_still_work_with_offload_on(both, alg):
    on, off = both
    token = make_token(alg)
    assert on.get("/api", token=token).status == 200
    assert off.get("/api", token=token).status == 200


def test_log_and_gauges_say_which_path_each_algorithm_takes(both):
    on, off = both
    for proxy in (on, off):
        proxy.get("/api")  # anything, so the log is flushed past start-up
    want_on = "signature verification: host: " + " ".join(OFFLOADED) + "; wasm: " + " ".join(PURE)
    assert want_on in on.log_text(), on.log_tail()
    want_off = "signature verification: host: none; wasm: " + " ".join(OFFLOADED[:3] + PURE[:3] + OFFLOADED[3:] + PURE[3:])
    assert want_off in off.log_text(), off.log_tail()
    assert "host_crypto is false" in off.log_text()
    stats_on = values(on)
    stats_off = values(off)
    for alg in OFFLOADED:
        name = series("jwt_filter_host_crypto", alg=alg)
        assert stats_on.get(name) == 1, stats_on
        assert stats_off.get(name) == 0, stats_off
        # Turned off on purpose is no fallback; the host passed its probe here.
        fallback = series("jwt_filter_host_crypto_fallback", alg=alg)
        assert stats_on.get(fallback) == 0 and stats_off.get(fallback) == 0


def cache_config() -> dict:
    return {
        "providers": {"p": provider(clock_skew_seconds=0, jwt_cache_config={"jwt_cache_size": 10})},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
    }


def cache_counts(proxy) -> tuple[int, int]:
    stats = values(proxy)
    return (stats.get(series("jwt_filter_jwt_cache_lookups_total", result="hit"), 0),
            stats.get(series("jwt_filter_jwt_cache_lookups_total", result="miss"), 0))


def test_cache_hits_on_the_same_token(envoy):
    proxy = envoy(cache_config(), concurrency=1)  # one worker: one VM, one cache
    token = make_token("RS256")
    assert proxy.get("/api", token=token).status == 200
    hit0, miss0 = cache_counts(proxy)
    assert (hit0, miss0) == (0, 1)
    for _ in range(3):
        assert proxy.get("/api", token=token).status == 200
    assert cache_counts(proxy) == (3, 1)
    # A bad signature is never cached: it misses every time.
    bad = with_sig(token, bytes(256))
    assert proxy.get("/api", token=bad).status == 401
    assert proxy.get("/api", token=bad).status == 401
    assert cache_counts(proxy) == (3, 3)


def test_token_expiring_while_cached_is_rejected(envoy):
    proxy = envoy(cache_config(), concurrency=1)
    exp = int(time.time()) + 3
    token = make_token("ES256", claims={"exp": exp})
    assert proxy.get("/api", token=token).status == 200
    assert proxy.get("/api", token=token).status == 200
    assert cache_counts(proxy)[0] == 1
    time.sleep(max(0.0, exp + 1.2 - time.time()))
    reply = proxy.get("/api", token=token)
    assert reply.status == 401, reply
    assert reply.text == "Jwt is expired", reply
