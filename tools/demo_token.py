"""Mints a DEMO token signed with the DEMO-ONLY key envoy/demo/demo_private.pem (RS256, kid
demo-key). From the repository root:

    .tools/venv/bin/python -m tools.demo_token                      # valid for 1 hour
    .tools/venv/bin/python -m tools.demo_token --expired            # expired 1 hour ago
    .tools/venv/bin/python -m tools.demo_token --sub alice --scope "read write" --aud demo-api

Prints the compact token on stdout. Needs PyJWT + cryptography (installed by ./build.sh setup).
The minting itself is tests/support/tokens.py's (demo_token).
"""
import argparse
import time

from tests.support.tokens import DEMO_AUDIENCE, DEMO_ISSUER, demo_token

ISSUER = DEMO_ISSUER
AUDIENCE = DEMO_AUDIENCE


def mint(sub="demo-user", scope="read:echo", aud=AUDIENCE, iss=ISSUER, expired=False,
         lifetime=3600, extra=None) -> str:
    now = int(time.time())
    claims = {"iss": iss, "sub": sub, "aud": aud, "scope": scope, "iat": now,
              "exp": now + lifetime}
    if expired:
        claims["iat"] = now - 2 * lifetime
        claims["exp"] = now - lifetime
    if extra:
        claims.update(extra)
    return demo_token(**claims)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expired", action="store_true", help="exp one lifetime in the past")
    p.add_argument("--sub", default="demo-user")
    p.add_argument("--scope", default="read:echo")
    p.add_argument("--aud", default=AUDIENCE)
    p.add_argument("--iss", default=ISSUER)
    p.add_argument("--lifetime", type=int, default=3600, help="seconds (default 3600)")
    a = p.parse_args()
    print(mint(sub=a.sub, scope=a.scope, aud=a.aud, iss=a.iss, expired=a.expired,
               lifetime=a.lifetime))


if __name__ == "__main__":
    main()
