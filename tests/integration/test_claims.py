"""forward_payload_header, claim_to_headers, and spoof-proof stripping of written headers."""
import base64
import json

from tests.integration.checks import assert_passed
from tests.integration.configs import MAIN_WRITTEN_HEADERS
from tests.support.tokens import decode_payload, make_token, payload_segment

RICH_CLAIMS = {
    "org": {"team": "platform", "unit": {"name": "infra"}},
    "roles": ["reader", "writer"],
    "level": 42,
    "ratio": 1.5,
    "admin": True,
}


def test_payload_header_is_unpadded_base64url_payload(main_envoy):
    token = make_token(claims=RICH_CLAIMS)
    up = assert_passed(main_envoy.get("/api", token=token))
    got = up["headers"]["x-jwt-payload"]
    assert got == payload_segment(token)
    assert "=" not in got
    assert json.loads(base64.urlsafe_b64decode(got + "=" * (-len(got) % 4))) == decode_payload(token)


def test_padded_payload_header(main_envoy):
    # Find a token whose payload length is not a multiple of 4 so padding shows.
    for i in range(8):
        token = make_token(claims={"pad": "x" * i})
        if len(payload_segment(token)) % 4:
            break
    up = assert_passed(main_envoy.get("/padded", token=token))
    got = up["headers"]["x-jwt-payload-padded"]
    seg = payload_segment(token)
    assert got == seg + "=" * (-len(seg) % 4)


def test_claim_to_headers_nested_array_number_bool(main_envoy):
    token = make_token(claims=RICH_CLAIMS)
    h = assert_passed(main_envoy.get("/api", token=token))["headers"]
    assert h["x-jwt-sub"] == "user-1"
    assert h["x-jwt-team"] == "platform"
    # As jwt_authn writes them: a list as the base64 of its JSON, a fraction as %f.
    assert h["x-jwt-roles"] == base64.b64encode(b'["reader","writer"]').decode()
    assert h["x-jwt-level"] == "42"
    assert h["x-jwt-ratio"] == "1.500000"
    assert h["x-jwt-admin"] == "true"


def test_absent_claims_write_no_header(main_envoy):
    h = assert_passed(main_envoy.get("/api", token=make_token()))["headers"]
    for name in ("x-jwt-team", "x-jwt-roles", "x-jwt-level", "x-jwt-ratio", "x-jwt-admin"):
        assert name not in h, name


def test_object_claim_written_as_base64_json(main_envoy):
    # `org.team` is an object: jwt_authn writes the base64 of its JSON text.
    token = make_token(claims={"org": {"team": {"deep": 1}}})
    h = assert_passed(main_envoy.get("/api", token=token))["headers"]
    assert h["x-jwt-team"] == base64.b64encode(b'{"deep":1}').decode()


def test_spoofed_claim_headers_stripped_with_valid_token(main_envoy):
    spoof = {name: "spoofed" for name in MAIN_WRITTEN_HEADERS}
    token = make_token()  # no org/roles/level/... claims
    h = assert_passed(main_envoy.get("/api", token=token, headers=spoof))["headers"]
    assert h["x-jwt-sub"] == "user-1"
    assert h["x-jwt-payload"] == payload_segment(token)
    for name in MAIN_WRITTEN_HEADERS:
        assert h.get(name) != "spoofed", name
        assert "spoofed" not in h.get(name, ""), name


def test_spoofed_claim_headers_stripped_without_token_on_allow_missing(main_envoy):
    spoof = {name: "spoofed" for name in MAIN_WRITTEN_HEADERS}
    h = assert_passed(main_envoy.get("/allow-missing/x", headers=spoof))["headers"]
    for name in MAIN_WRITTEN_HEADERS:
        assert name not in h, name


def test_spoofed_claim_headers_stripped_on_public_route(main_envoy):
    spoof = {name: "spoofed" for name in MAIN_WRITTEN_HEADERS}
    h = assert_passed(main_envoy.get("/public/x", headers=spoof))["headers"]
    for name in MAIN_WRITTEN_HEADERS:
        assert name not in h, name


def test_spoofed_header_of_another_provider_stripped(main_envoy):
    h = assert_passed(main_envoy.get("/api", token=make_token(),
                                     headers={"x-other-sub": "spoofed", "x-custom-sub": "spoofed"}))["headers"]
    assert "x-other-sub" not in h
    assert "x-custom-sub" not in h
