"""Token minting for the tests, the load run, the benchmarks and the demo: one
implementation (PyJWT over `cryptography`), independent of the filter's own code.

    mint(claims, key, alg, kid)          any claims, any key object / PEM / HMAC secret
    make_token(alg, kid, claims, ...)    the integration tests' tokens: TEST-ONLY fixture key
                                         for the alg, default claims (ISSUER, AUDIENCE, ...)
    demo_token(**claims)                 a DEMO-ONLY key token (envoy/demo), as the demo's
                                         envoy/envoy.yaml accepts it
    public_jwk(key, kid, alg)            the public JWK of a generated key

Keys are the TEST-ONLY keys in tests/fixtures/keys/ (see gen.sh there) and the DEMO-ONLY
key envoy/demo/demo_private.pem; never use them anywhere else. Every token make_token,
demo_token and the other test helpers hand out is remembered in MINTED so that a test can
check that none of them ever shows up in an Envoy log.
"""
from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from . import ROOT

KEYS_DIR = ROOT / "tests" / "fixtures" / "keys"
DEMO_DIR = ROOT / "envoy" / "demo"

ISSUER = "https://issuer.test"
AUDIENCE = "api"
SUBJECT = "user-1"

#: Every token string handed out by this module (for the "never logged" test).
MINTED: list[str] = []

_PEM_CACHE: dict[pathlib.Path, Any] = {}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key(name: str | pathlib.Path):
    """Loads tests/fixtures/keys/<name> (or the PEM private key at a path), cached."""
    path = KEYS_DIR / name
    if path not in _PEM_CACHE:
        _PEM_CACHE[path] = serialization.load_pem_private_key(path.read_bytes(), None)
    return _PEM_CACHE[path]


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


def mint(claims: dict[str, Any], key: Any, alg: str = "RS256", kid: str | None = None,
         headers: dict[str, Any] | None = None) -> str:
    """A signed compact JWT (JWS) of exactly `claims`. key: a private key object, or bytes
    (HMAC secret); kid: the header kid (None: no kid). Not remembered in MINTED."""
    hdr = dict(headers or {})
    if kid is not None:
        hdr["kid"] = kid
    return jwt.encode(claims, key, algorithm=alg, headers=hdr or None)


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
    token = mint(payload, key, alg, kid, headers)
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


# -- the demo (./build.sh run, envoy/envoy.yaml) --------------------------------------------
DEMO_ISSUER = "https://demo.jwt-filter.local"
DEMO_AUDIENCE = "demo-api"
DEMO_KID = "demo-key"
DEMO_KEY = DEMO_DIR / "demo_private.pem"


def demo_token(**claims: Any) -> str:
    """An RS256 token signed with the DEMO-ONLY key (kid demo-key). Default claims: iss
    DEMO_ISSUER, sub demo-user, aud DEMO_AUDIENCE, iat now, exp now+3600; keyword arguments
    override them, and a value of None removes the claim."""
    now = int(time.time())
    payload: dict[str, Any] = {"iss": DEMO_ISSUER, "sub": "demo-user", "aud": DEMO_AUDIENCE,
                               "iat": now, "exp": now + 3600}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    token = mint(payload, private_key(DEMO_KEY), "RS256", DEMO_KID)
    MINTED.append(token)
    return token


def demo_script_token(*args: str) -> str:
    """A token from the shipped `tools/demo_token.py` (the command the README tells users to
    run: `python -m tools.demo_token` from the repository root), called with `args` as a user
    would."""
    out = subprocess.run([sys.executable, "-m", "tools.demo_token", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    token = out.stdout.strip()
    MINTED.append(token)
    return token


# -- keys made on the spot -------------------------------------------------------------------
def _b64u_int(n: int, length: int | None = None) -> str:
    return b64u(n.to_bytes(length or (n.bit_length() + 7) // 8, "big"))


def public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    """The public JWK (with kid, alg, use sig) of an RSA or EC P-256/384/521 private key."""
    nums = key.public_key().public_numbers()
    if hasattr(nums, "n"):
        return {"kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
                "n": _b64u_int(nums.n), "e": _b64u_int(nums.e)}
    crv, size = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48),
                 "secp521r1": ("P-521", 66)}[nums.curve.name]
    return {"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": crv,
            "x": _b64u_int(nums.x, size), "y": _b64u_int(nums.y, size)}
