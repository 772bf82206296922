"""A valid token for every supported algorithm family passes; the key must fit the alg."""
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import serialization

from tests.integration.checks import assert_invalid, assert_passed
from tests.support.tokens import MINTED, SUBJECT, b64u, default_claims, make_token, private_key

ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
        "HS256", "HS384", "HS512"]


@pytest.mark.parametrize("alg", ALGS)
def test_valid_token_per_algorithm(main_envoy, alg):
    token = make_token(alg)
    up = assert_passed(main_envoy.get("/api/items", token=token))
    assert up["path"] == "/api/items"
    assert up["headers"]["x-jwt-sub"] == SUBJECT
    assert "authorization" not in up["headers"], "forward defaults to false"


def test_rsa_3072_key(main_envoy):
    token = make_token("RS256", kid="rsa-3072", key="rsa3072.pem")
    assert_passed(main_envoy.get("/api", token=token))


def test_second_rsa_key_by_kid(main_envoy):
    token = make_token("RS256", kid="rsa-b", key="rsa2048b.pem")
    assert_passed(main_envoy.get("/api", token=token))


def test_token_without_kid_tries_keys_of_fitting_type(main_envoy):
    assert_passed(main_envoy.get("/api", token=make_token("ES256", kid=None)))
    assert_passed(main_envoy.get("/api", token=make_token("RS256", kid=None, key="rsa2048b.pem")))


def test_kid_of_a_key_with_the_wrong_type_is_rejected(main_envoy):
    # RS256 header but the kid names the P-256 key: alg does not fit the key type.
    token = make_token("RS256", kid="ec-256")
    reply = main_envoy.get("/api", token=token)
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in reply.www_authenticate


def test_signed_by_other_key_than_kid_says(main_envoy):
    token = make_token("RS256", kid="rsa-a", key="rsa2048b.pem")
    assert_invalid(main_envoy.get("/api", token=token), main_envoy, "/api", "Jwt verification fails")


def test_hs256_signed_with_rsa_public_key_as_secret(main_envoy):
    # Classic key-confusion attack: HMAC keyed with the RSA public key (PEM) of kid rsa-a.
    pem = private_key("rsa2048.pem").public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64u(json.dumps({"alg": "HS256", "kid": "rsa-a"}).encode())
    body = b64u(json.dumps(default_claims()).encode())
    sig = b64u(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    token = f"{head}.{body}.{sig}"  # PyJWT refuses PEM HMAC keys, so signed by hand
    MINTED.append(token)
    reply = main_envoy.get("/api", token=token)
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in reply.www_authenticate
