"""Plugin configurations (proto3-JSON of jwt_authn's JwtAuthentication) used by the tests.

MAIN is one config with a route prefix per feature, so most tests share one Envoy.
"""
from __future__ import annotations

import copy

from tests.support.tokens import AUDIENCE, ISSUER, jwks_subset, jwks_text

OTHER_ISSUER = "https://other.test"
OTHER_AUDIENCE = "other-api"

CLAIM_HEADERS = [
    {"header_name": "x-jwt-sub", "claim_name": "sub"},
    {"header_name": "x-jwt-team", "claim_name": "org.team"},
    {"header_name": "x-jwt-roles", "claim_name": "roles"},
    {"header_name": "x-jwt-level", "claim_name": "level"},
    {"header_name": "x-jwt-ratio", "claim_name": "ratio"},
    {"header_name": "x-jwt-admin", "claim_name": "admin"},
]

#: Headers the `main` provider writes (and therefore always strips from requests).
MAIN_WRITTEN_HEADERS = ["x-jwt-payload"] + [c["header_name"] for c in CLAIM_HEADERS]


def provider(**overrides) -> dict:
    """A provider for ISSUER/AUDIENCE with all test keys; overrides replace fields."""
    p = {
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": jwks_text()},
    }
    p.update(overrides)
    return p


MAIN = {
    "providers": {
        # Default extraction (Authorization: Bearer, then ?access_token=), forward false.
        "main": provider(forward_payload_header="x-jwt-payload", claim_to_headers=CLAIM_HEADERS),
        # Token in a custom header with a value prefix.
        "custom_header": provider(from_headers=[{"name": "x-token", "value_prefix": "Token "}],
                                  claim_to_headers=[{"header_name": "x-custom-sub", "claim_name": "sub"}]),
        # Token in a query parameter.
        "query": provider(from_params=["jwt"],
                          claim_to_headers=[{"header_name": "x-query-sub", "claim_name": "sub"}]),
        # Token in a cookie.
        "cookie": provider(from_cookies=["session"],
                           claim_to_headers=[{"header_name": "x-cookie-sub", "claim_name": "sub"}]),
        # forward: true keeps the token where it was.
        "forward": provider(forward=True),
        # Padded payload header.
        "padded": provider(forward_payload_header="x-jwt-payload-padded", pad_forward_payload_header=True),
        # A second issuer, token in its own header, only key rsa-b.
        "other": provider(issuer=OTHER_ISSUER, audiences=[OTHER_AUDIENCE],
                          local_jwks={"inline_string": jwks_subset("rsa-b")},
                          from_headers=[{"name": "x-other-token"}],
                          claim_to_headers=[{"header_name": "x-other-sub", "claim_name": "sub"}]),
        # Lifetime limits.
        "strict": provider(require_expiration=True, max_lifetime="3600s"),
        # exp not required (jwt_authn default), no lifetime limit.
        "lenient": provider(),
    },
    "rules": [
        {"match": {"prefix": "/public"}},
        {"match": {"path": "/exact"}, "requires": {"provider_name": "main"}},
        {"match": {"safe_regex": {"regex": "^/regex/[0-9]+$"}}, "requires": {"provider_name": "main"}},
        {"match": {"prefix": "/hdr", "headers": [{"name": "x-require-jwt", "present_match": True}]},
         "requires": {"provider_name": "main"}},
        {"match": {"prefix": "/hdr-exact", "headers": [{"name": "x-tenant", "exact_match": "secure"}]},
         "requires": {"provider_name": "main"}},
        {"match": {"prefix": "/hdr"}},
        {"match": {"prefix": "/custom"}, "requires": {"provider_name": "custom_header"}},
        {"match": {"prefix": "/query"}, "requires": {"provider_name": "query"}},
        {"match": {"prefix": "/cookie"}, "requires": {"provider_name": "cookie"}},
        {"match": {"prefix": "/forward"}, "requires": {"provider_name": "forward"}},
        {"match": {"prefix": "/padded"}, "requires": {"provider_name": "padded"}},
        {"match": {"prefix": "/strict"}, "requires": {"provider_name": "strict"}},
        {"match": {"prefix": "/lenient"}, "requires": {"provider_name": "lenient"}},
        {"match": {"prefix": "/aud"}, "requires": {"provider_and_audiences": {
            "provider_name": "main", "audiences": ["special"]}}},
        {"match": {"prefix": "/requires-any"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "main"}, {"provider_name": "other"}]}}},
        {"match": {"prefix": "/requires-all"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "main"}, {"provider_name": "other"}]}}},
        {"match": {"prefix": "/allow-missing-or-failed"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "main"}, {"allow_missing_or_failed": {}}]}}},
        {"match": {"prefix": "/allow-missing"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "main"}, {"allow_missing": {}}]}}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}},
    ],
    "bypass_cors_preflight": True,
}


def main_config(**changes) -> dict:
    cfg = copy.deepcopy(MAIN)
    cfg.update(changes)
    return cfg
