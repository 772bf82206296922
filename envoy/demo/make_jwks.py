"""Writes jwks.json (the public half of the DEMO-ONLY key demo_private.pem).

Run from anywhere: python3 envoy/demo/make_jwks.py  (needs `cryptography`)."""
import base64
import json
import pathlib

from cryptography.hazmat.primitives import serialization

HERE = pathlib.Path(__file__).resolve().parent


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main() -> None:
    key = serialization.load_pem_private_key((HERE / "demo_private.pem").read_bytes(), None)
    nums = key.public_key().public_numbers()
    n = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
    e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
    jwks = {"keys": [{"kty": "RSA", "kid": "demo-key", "use": "sig", "alg": "RS256",
                      "n": b64u(n), "e": b64u(e)}]}
    (HERE / "jwks.json").write_text(json.dumps(jwks, indent=2) + "\n")


if __name__ == "__main__":
    main()
