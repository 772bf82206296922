"""Rules (prefix, path, regex, headers; first match wins) and requirement combinators."""
from tests.integration.checks import assert_invalid, assert_missing, assert_passed
from tests.integration.configs import OTHER_AUDIENCE, OTHER_ISSUER
from tests.support.tokens import make_token


def other_token(**claims):
    c = {"iss": OTHER_ISSUER, "aud": OTHER_AUDIENCE, "sub": "other-user"}
    c.update(claims)
    return make_token("RS256", kid="rsa-b", key="rsa2048b.pem", claims=c)


# -- routes ------------------------------------------------------------------------------
def test_public_route_without_token(main_envoy):
    up = assert_passed(main_envoy.get("/public/docs?page=2"))
    assert up["path"] == "/public/docs?page=2"


def test_public_route_with_bad_token_still_passes(main_envoy):
    assert_passed(main_envoy.get("/public/docs", token="not.a.token"))


def test_exact_path_rule(main_envoy):
    assert_missing(main_envoy.get("/exact"), main_envoy, "/exact")
    assert_passed(main_envoy.get("/exact", token=make_token()))
    # /exact/more does not match the path rule; it falls through to the catch-all
    assert_missing(main_envoy.get("/exact/more"), main_envoy, "/exact/more")


def test_regex_rule(main_envoy):
    assert_missing(main_envoy.get("/regex/123"), main_envoy, "/regex/123")
    assert_passed(main_envoy.get("/regex/123", token=make_token()))


def test_header_present_rule(main_envoy):
    # With the header the rule requires a JWT; without it the next /hdr rule is public.
    assert_missing(main_envoy.get("/hdr/x", headers={"x-require-jwt": "1"}), main_envoy, "/hdr/x")
    assert_passed(main_envoy.get("/hdr/x", headers={"x-require-jwt": "1"}, token=make_token()))
    assert_passed(main_envoy.get("/hdr/x"))


def test_header_exact_rule(main_envoy):
    assert_missing(main_envoy.get("/hdr-exact", headers={"x-tenant": "secure"}), main_envoy, "/hdr-exact")
    assert_passed(main_envoy.get("/hdr-exact", headers={"x-tenant": "other"}))


def test_catch_all_requires_jwt(main_envoy):
    assert_missing(main_envoy.get("/"), main_envoy, "/")
    # "/publicity" starts with "/public": prefix matching is plain string prefix, as in Envoy
    assert_passed(main_envoy.get("/publicity"))


# -- provider_and_audiences --------------------------------------------------------------
def test_provider_and_audiences_overrides_audiences(main_envoy):
    assert_passed(main_envoy.get("/aud", token=make_token(claims={"aud": "special"})))
    assert_invalid(main_envoy.get("/aud", token=make_token()), main_envoy, "/aud",
                   "Audiences in Jwt are not allowed")


# -- requires_any ------------------------------------------------------------------------
def test_requires_any_first_provider(main_envoy):
    up = assert_passed(main_envoy.get("/requires-any", token=make_token()))
    assert up["headers"]["x-jwt-sub"] == "user-1"


def test_requires_any_second_provider(main_envoy):
    up = assert_passed(main_envoy.get("/requires-any", headers={"x-other-token": other_token()}))
    assert up["headers"]["x-other-sub"] == "other-user"
    assert "x-other-token" not in up["headers"]


def test_requires_any_none(main_envoy):
    assert_missing(main_envoy.get("/requires-any"), main_envoy, "/requires-any")


def test_requires_any_bad_token(main_envoy):
    reply = main_envoy.get("/requires-any", token=make_token(claims={"aud": "nope"}))
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in reply.www_authenticate


# -- requires_all ------------------------------------------------------------------------
def test_requires_all_both(main_envoy):
    up = assert_passed(main_envoy.get("/requires-all", token=make_token(), headers={"x-other-token": other_token()}))
    assert up["headers"]["x-jwt-sub"] == "user-1"
    assert up["headers"]["x-other-sub"] == "other-user"


def test_requires_all_only_one(main_envoy):
    assert_missing(main_envoy.get("/requires-all", token=make_token()), main_envoy, "/requires-all")
    assert_missing(main_envoy.get("/requires-all", headers={"x-other-token": other_token()}), main_envoy, "/requires-all")


def test_requires_all_one_bad(main_envoy):
    reply = main_envoy.get("/requires-all", token=make_token(),
                           headers={"x-other-token": other_token(iss="https://evil.test")})
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in reply.www_authenticate


# -- allow_missing -----------------------------------------------------------------------
def test_allow_missing_no_token(main_envoy):
    up = assert_passed(main_envoy.get("/allow-missing/x"))
    assert "x-jwt-sub" not in up["headers"]


def test_allow_missing_good_token(main_envoy):
    up = assert_passed(main_envoy.get("/allow-missing/x", token=make_token()))
    assert up["headers"]["x-jwt-sub"] == "user-1"


def test_allow_missing_bad_token(main_envoy):
    now = __import__("time").time()
    token = make_token(claims={"exp": int(now) - 3600, "iat": int(now) - 7200})
    assert_invalid(main_envoy.get("/allow-missing/x", token=token), main_envoy, "/allow-missing/x",
                   "Jwt is expired")


# -- allow_missing_or_failed -------------------------------------------------------------
def test_allow_missing_or_failed_no_token(main_envoy):
    assert_passed(main_envoy.get("/allow-missing-or-failed/x"))


def test_allow_missing_or_failed_bad_token(main_envoy):
    token = make_token(claims={"iss": "https://evil.test"})
    up = assert_passed(main_envoy.get("/allow-missing-or-failed/x", token=token))
    assert "x-jwt-sub" not in up["headers"]
    assert "x-jwt-payload" not in up["headers"]


def test_allow_missing_or_failed_good_token(main_envoy):
    up = assert_passed(main_envoy.get("/allow-missing-or-failed/x", token=make_token()))
    assert up["headers"]["x-jwt-sub"] == "user-1"


# -- CORS preflight ----------------------------------------------------------------------
def test_cors_preflight_bypass(main_envoy):
    reply = main_envoy.request("OPTIONS", "/api", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    up = assert_passed(reply)
    assert up["method"] == "OPTIONS"


def test_options_without_preflight_headers_needs_token(main_envoy):
    assert_missing(main_envoy.request("OPTIONS", "/api", headers={"Origin": "https://app.example"}),
                   main_envoy, "/api")
    assert_missing(main_envoy.request("OPTIONS", "/api"), main_envoy, "/api")


def test_cors_preflight_not_bypassed_when_disabled(shared_envoy):
    from tests.integration.configs import main_config

    proxy = shared_envoy(main_config(bypass_cors_preflight=False), concurrency=1)
    reply = proxy.request("OPTIONS", "/api", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert_missing(reply, proxy, "/api")


def test_post_with_body(main_envoy):
    up = assert_passed(main_envoy.request("POST", "/api", token=make_token(), data=b"hello"))
    assert up["method"] == "POST"
    assert up["body"] == "hello"
    assert main_envoy.request("POST", "/api", data=b"hello").status == 401
