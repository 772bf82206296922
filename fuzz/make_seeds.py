"""Writes the hand-made fuzz seeds under fuzz/seeds/<target>/, or under OUT/<target>/
(from the repository root, with the test venv: .tools/venv/bin/python -m fuzz.make_seeds [OUT]).
Tokens are minted with the TEST-ONLY keys in tests/fixtures/keys at the fuzz targets'
fixed time (NOW)."""
from __future__ import annotations

import json
import pathlib
import sys

from tests.integration import configs
from tests.support import tokens

HERE = pathlib.Path(__file__).resolve().parent
NOW = 1_700_000_000
if sys.argv[1:2] in (["-h"], ["--help"]):
    sys.exit(__doc__)
SEEDS = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "seeds"


def write(target: str, name: str, data: str | bytes) -> None:
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


def claims(**extra):
    c = {"iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "sub": "user-1", "iat": NOW, "exp": NOW + 600,
         "org": {"team": "blue"}, "roles": ["a", "b"]}
    c.update(extra)
    return c


def main() -> None:
    minted = {}
    for alg in tokens.DEFAULT_KEYS:
        minted[alg] = tokens.make_token(alg, claims=claims())
        write("token", f"valid_{alg}", minted[alg])
    write("token", "no_kid_RS256", tokens.make_token("RS256", kid=None, claims=claims()))
    write("token", "alg_none", tokens.unsigned_token(claims(), signature=""))
    write("token", "crit", tokens.make_token("ES256", claims=claims(), headers={"crit": ["exp"], "exp": 1}))
    write("token", "expired", tokens.make_token("HS256", claims=claims(exp=NOW - 3600)))
    write("token", "aud_list", tokens.make_token("HS256", claims=claims(aud=["x", "api"], nbf=NOW + 1.5)))
    write("token", "two_dots", "e30.e30")
    for target in ("extract", "decide"):
        tok = minted["RS256"]
        write(target, "bearer", f":path:/api?x=1\nauthorization:Bearer {tok}\n")
        write(target, "query", f":path:/re/12?jwt={tok}&a=b\n")
        write(target, "cookie", f":path:/all\nauthorization:bearer  {minted['ES256']} \n"
                                f"cookie:a=1; session=\"{minted['ES256']}\"; b=2\n")
        write(target, "two", f":path:/any?access_token={minted['HS256']}\nx-token:Token {tok}\n"
                              f"authorization:Bearer {tok}\n:method:OPTIONS\norigin:x\n")
        write(target, "public", ":path:/public/a?access_token=%41%zz+b#frag\n")
    jwks = (tokens.KEYS_DIR / "jwks.json").read_text()
    write("jwks", "fixture", jwks)
    write("jwks", "weak", (tokens.KEYS_DIR / "jwks_weak.json").read_text())
    keys = json.loads(jwks)["keys"]
    write("jwks", "single_ec", json.dumps(keys[3]))
    write("jwks", "mixed", json.dumps({"keys": [keys[0], {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
                                                {"kty": "EC", "crv": "P-521"}, keys[5],
                                                {"kty": "oct", "k": "", "use": "enc"}]}))
    write("config", "main", json.dumps(configs.MAIN))
    write("config", "minimal", json.dumps({"providers": {"p": {"local_jwks": {"inline_string": jwks}}},
                                           "rules": [{"match": {"prefix": "/"},
                                                      "requires": {"provider_name": "p"}}]}))
    write("config", "remote", json.dumps({"providers": {"p": {"issuer": "https://i", "remote_jwks": {
        "http_uri": {"uri": "http://jwks.local/jwks", "cluster": "jwks", "timeout": "1s"},
        "cache_duration": "2s"}}}, "rules": [{"match": {"path": "/x"}, "requires": {"requires_all": {
            "requirements": [{"provider_name": "p"}, {"allow_missing": {}}]}}}]}))
    revocation_seeds()

    # whole: time, configuration, JWKS and request in one input.
    for name, when, cfg, req in [
        ("main_bearer", NOW, configs.MAIN, f":path:/api?x=1\nauthorization:Bearer {minted['RS256']}\n"),
        ("main_es256_late", NOW + 7200, configs.MAIN, f":path:/\nauthorization:Bearer {minted['ES256']}\n"),
        ("main_missing", NOW, configs.MAIN, ":path:/api\n:method:GET\n"),
        ("report_hs", NOW, {**configs.MAIN, "mode": "report", "status_header": "x-jwt-status", "filter_state": True},
         f":path:/a\nauthorization:Bearer {minted['HS256']}\n"),
    ]:
        write("whole", name, f"{when}\n---\n{json.dumps(cfg)}\n---\n{jwks}\n---\n{req}")


def revocation_seeds() -> None:
    """Deny-list documents, SET claims and a poll response (docs/revocation.md)."""
    caep = "https://schemas.openid.net/secevent/caep/event-type/"
    risc = "https://schemas.openid.net/secevent/risc/event-type/"
    write("revocation", "deny_list", json.dumps({"version": 1, "entries": [
        {"kind": "jti", "value": "4f1c0b2e", "expires": NOW + 3600},
        {"kind": "sub", "value": "user-42", "expires": NOW + 3600, "issued_before": NOW - 60},
        {"kind": "sid", "value": "s-9", "expires": NOW + 3600, "not_before": NOW - 10},
        {"kind": "email", "value": "a@example.com", "expires": NOW + 3600},
        {"kind": "jti", "value": "gone", "expires": NOW - 1}]}))
    user = {"format": "iss_sub", "iss": "https://issuer.test", "sub": "user-42"}
    claims = {"iss": "https://tx.test", "aud": ["https://gateway.test"], "iat": NOW, "jti": "set-1",
              "events": {
                  caep + "session-revoked": {"subject": {
                      "format": "complex", "user": user,
                      "session": {"format": "opaque", "id": "s-9"}}, "event_timestamp": NOW},
                  caep + "credential-change": {"subject": {"format": "aliases", "identifiers": [
                      user, {"format": "email", "email": "a@example.com"}]}},
                  risc + "account-disabled": {"subject": {"format": "opaque", "id": "x"}}}}
    write("revocation", "set_claims", json.dumps(claims))
    write("revocation", "set_claims_sub_id", json.dumps({
        "iss": "https://tx.test", "aud": "https://gateway.test", "iat": NOW, "jti": "set-2",
        "sub_id": user, "events": {risc + "sessions-revoked": {}}}))
    signed = tokens.make_token("ES256", kid="ec-256", claims={**claims, "exp": None, "sub": None},
                               headers={"typ": "secevent+jwt"})
    write("revocation", "poll_response", json.dumps({"sets": {"set-1": signed}, "moreAvailable": True}))


if __name__ == "__main__":
    main()
