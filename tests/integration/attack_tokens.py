"""Hand-made hostile tokens for the attack corpus (test_attacks.py, test_limits.py).

PyJWT refuses to mint most of these (duplicate members, HMAC with a public key, DER ECDSA
signatures...), so tokens are assembled here from raw header/payload bytes and signed with
`cryptography` using the TEST-ONLY keys in tests/fixtures/keys/ (support/tokens.py)."""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.tokens import MINTED, b64u, default_claims, hs_secret, private_key, public_jwk

#: Group orders (for ECDSA r/s >= n signatures).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_N = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
             "581A0DB248B0A77AECEC196ACCC52973", 16)


def _bytes(part: dict | str | bytes) -> bytes:
    if isinstance(part, bytes):
        return part
    if isinstance(part, str):
        return part.encode()
    return json.dumps(part, separators=(",", ":")).encode()


def signing_input(header: dict | str | bytes, payload: dict | str | bytes) -> str:
    return b64u(_bytes(header)) + "." + b64u(_bytes(payload))


def raw_signature(alg: str, data: bytes, key: Any = None) -> bytes:
    """Signs `data` the JWS way for `alg` (ECDSA as raw r||s). `key`: PEM file name, key
    object, or bytes (HMAC secret); defaults to the fixture key for the alg."""
    if alg.startswith("HS"):
        secret = hs_secret() if key is None else key
        return hmac.new(secret, data, getattr(hashlib, "sha" + alg[2:])).digest()
    if key is None:
        key = {"ES256": "ec256.pem", "ES384": "ec384.pem", "ES512": "ec521.pem",
               "EdDSA": "ed25519.pem"}.get(alg, "rsa2048.pem")
    if isinstance(key, str):
        key = private_key(key)
    if alg == "EdDSA":
        return key.sign(data)
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), digest)
    if alg.startswith("PS"):
        return key.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
    size = {"ES256": 32, "ES384": 48, "ES512": 66}[alg]
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sign(header: dict | str | bytes, payload: dict | str | bytes | None = None, alg: str | None = None,
         key: Any = None, signature: bytes | None = None) -> str:
    """A compact JWS from a raw header and payload (dicts, or exact JSON text). The signature
    is computed for `alg` (default: the header's alg) unless given."""
    if payload is None:
        payload = default_claims()
    if alg is None:
        alg = header["alg"] if isinstance(header, dict) else "RS256"
    si = signing_input(header, payload)
    sig = signature if signature is not None else raw_signature(alg, si.encode(), key)
    token = si + "." + b64u(sig)
    MINTED.append(token)
    return token


def with_signature(token: str, sig: bytes) -> str:
    head, payload, _ = token.split(".")
    out = f"{head}.{payload}.{b64u(sig)}"
    MINTED.append(out)
    return out


def rsa_public_pem(name: str = "rsa2048.pem", fmt: str = "spki") -> bytes:
    pub = private_key(name).public_key()
    if fmt == "pkcs1":
        return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def rsa_public_der(name: str = "rsa2048.pem") -> bytes:
    return private_key(name).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


_ATTACKER: rsa.RSAPrivateKey | None = None


def attacker_key() -> rsa.RSAPrivateKey:
    """A fresh RSA key the filter has never seen (the attacker's)."""
    global _ATTACKER
    if _ATTACKER is None:
        _ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _ATTACKER


def attacker_jwk(kid: str = "attacker") -> dict:
    return public_jwk(attacker_key(), kid, "RS256")


def outcome(send) -> int | str:
    """Runs `send()` (a request through Envoy); returns the status, or "reset" when Envoy
    closed the connection instead of answering (how it refuses some oversized requests)."""
    try:
        return send().status
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return "reset"


def refused(result: int | str) -> bool:
    """A 4xx or a closed connection: never 2xx, never 5xx."""
    return result == "reset" or (isinstance(result, int) and 400 <= result < 500)
