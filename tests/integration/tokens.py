"""Token helpers for the integration tests.

Keys are the TEST-ONLY keys in tests/fixtures/keys/ (see gen.sh there); never use them
anywhere else. Every token minted here is remembered in MINTED so that a test can check
that none of them ever shows up in an Envoy log.
"""
from __future__ import annotations

import base64
import json
import pathlib
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

KEYS_DIR = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keys"

ISSUER = "https://issuer.test"
AUDIENCE = "api"
SUBJECT = "user-1"

#: Every token string handed out by this module (for the "never logged" test).
MINTED: list[str] = []

_PEM_CACHE: dict[str, Any] = {}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key(name: str):
    """Loads tests/fixtures/keys/<name> (PEM private key), cached."""
    if name not in _PEM_CACHE:
        _PEM_CACHE[name] = serialization.load_pem_private_key((KEYS_DIR / name).read_bytes(), None)
    return _PEM_CACHE[name]


def hs_secret() -> bytes:
    """The raw HMAC secret whose base64url form is the `k` of JWK hs-1."""
    return b64u_decode((KEYS_DIR / "hs.secret").read_text().strip())


def jwks_text(name: str = "jwks.json") -> str:
    return (KEYS_DIR / name).read_text()


def jwks_subset(*kids: str) -> str:
    """JWKS JSON text with only the given kids from jwks.json."""
    keys = json.loads(jwks_text())["keys"]
    return json.dumps({"keys": [k for k in keys if k.get("kid") in kids]})


# alg -> (default kid, default key file or "hs")
DEFAULT_KEYS = {
    "RS256": ("rsa-a", "rsa2048.pem"),
    "RS384": ("rsa-a", "rsa2048.pem"),
    "RS512": ("rsa-a", "rsa2048.pem"),
    "PS256": ("rsa-a", "rsa2048.pem"),
    "PS384": ("rsa-a", "rsa2048.pem"),
    "PS512": ("rsa-a", "rsa2048.pem"),
    "ES256": ("ec-256", "ec256.pem"),
    "ES384": ("ec-384", "ec384.pem"),
    "ES512": ("ec-521", "ec521.pem"),
    "EdDSA": ("ed-1", "ed25519.pem"),
    "HS256": ("hs-1", "hs"),
    "HS384": ("hs-1", "hs"),
    "HS512": ("hs-1", "hs"),
}

_UNSET = object()


def default_claims(now: int | None = None) -> dict[str, Any]:
    now = int(time.time()) if now is None else now
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 600}


def make_token(alg: str = "RS256", kid: Any = _UNSET, claims: dict[str, Any] | None = None,
               key: Any = None, headers: dict[str, Any] | None = None) -> str:
    """Mints a signed compact JWT.

    alg     JWS algorithm; picks the default key and kid (DEFAULT_KEYS) unless given.
    kid     header kid; None leaves kid out of the header.
    claims  overrides of the default claims (iss https://issuer.test, aud api, sub user-1,
            iat now, exp now+600); a value of None removes that claim.
    key     a key file name in tests/fixtures/keys, a loaded key object, or bytes (HMAC).
    headers extra JOSE header fields.
    """
    default_kid, default_key = DEFAULT_KEYS[alg]
    if kid is _UNSET:
        kid = default_kid
    payload = default_claims()
    for name, value in (claims or {}).items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    if key is None:
        key = default_key
    if key == "hs":
        key = hs_secret()
    elif isinstance(key, str):
        key = private_key(key)
    hdr = dict(headers or {})
    if kid is not None:
        hdr["kid"] = kid
    token = jwt.encode(payload, key, algorithm=alg, headers=hdr or None)
    MINTED.append(token)
    return token


def unsigned_token(claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None,
                   signature: str = "") -> str:
    """`alg: none` style token (or any hand-made header) with the given signature segment."""
    hdr = header if header is not None else {"alg": "none", "typ": "JWT"}
    payload = default_claims()
    payload.update(claims or {})
    token = ".".join([b64u(json.dumps(hdr).encode()), b64u(json.dumps(payload).encode()), signature])
    MINTED.append(token)
    return token


def tamper_payload(token: str, **changes: Any) -> str:
    """Returns the token with its payload changed (signature kept, so it no longer verifies)."""
    head, payload, sig = token.split(".")
    claims = json.loads(b64u_decode(payload))
    claims.update(changes)
    out = ".".join([head, b64u(json.dumps(claims).encode()), sig])
    MINTED.append(out)
    return out


def payload_segment(token: str) -> str:
    return token.split(".")[1]


def decode_payload(token: str) -> dict[str, Any]:
    return json.loads(b64u_decode(payload_segment(token)))
