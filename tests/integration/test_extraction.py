"""Where tokens are found, and that forward:false removes them from there."""
from tests.integration.checks import assert_invalid, assert_missing, assert_passed
from tests.support.tokens import SUBJECT, make_token


def test_default_authorization_bearer_removed(main_envoy):
    up = assert_passed(main_envoy.get("/api", token=make_token()))
    assert "authorization" not in up["headers"]


def test_bearer_scheme_case_insensitive_or_rejected_never_passes_unverified(main_envoy):
    reply = main_envoy.get("/api", headers={"Authorization": "bearer " + make_token()})
    assert reply.status in (200, 401), reply


def test_default_access_token_query_param(main_envoy):
    token = make_token()
    up = assert_passed(main_envoy.get(f"/api/q?a=1&access_token={token}&b=2"))
    assert token not in up["path"]
    assert up["path"].startswith("/api/q?")
    assert "a=1" in up["path"] and "b=2" in up["path"]
    assert "access_token" not in up["path"]


def test_custom_header_with_value_prefix(main_envoy):
    token = make_token()
    up = assert_passed(main_envoy.get("/custom", headers={"x-token": f"Token {token}"}))
    assert up["headers"]["x-custom-sub"] == SUBJECT
    assert "x-token" not in up["headers"], "forward false removes the header"


def test_custom_header_ignores_authorization(main_envoy):
    # The provider reads only x-token: a bearer token elsewhere does not count.
    reply = main_envoy.get("/custom", token=make_token())
    assert_missing(reply, main_envoy, "/custom")


def test_custom_header_bad_token(main_envoy):
    token = make_token(claims={"iss": "https://evil.test"})
    reply = main_envoy.get("/custom", headers={"x-token": f"Token {token}"})
    assert_invalid(reply, main_envoy, "/custom", "Jwt issuer is not configured")


def test_query_param_removed_from_upstream_path(main_envoy):
    token = make_token()
    up = assert_passed(main_envoy.get(f"/query/items?before=1&jwt={token}&after=2"))
    assert up["headers"]["x-query-sub"] == SUBJECT
    assert token not in up["path"]
    assert "jwt=" not in up["path"]
    assert up["path"].startswith("/query/items?")
    assert "before=1" in up["path"] and "after=2" in up["path"]


def test_query_param_only_param(main_envoy):
    token = make_token()
    up = assert_passed(main_envoy.get(f"/query?jwt={token}"))
    assert token not in up["path"]
    assert up["path"] in ("/query", "/query?")


def test_query_param_missing(main_envoy):
    assert_missing(main_envoy.get("/query?other=1"), main_envoy, "/query?other=1")


def test_query_param_bad_token_realm_has_no_query(main_envoy):
    path = "/query?jwt=abc.def.ghi"
    reply = main_envoy.get(path)
    assert reply.status == 401, reply
    assert "abc.def.ghi" not in (reply.www_authenticate or "")
    assert reply.www_authenticate.startswith(f'Bearer realm="http://127.0.0.1:{main_envoy.port}/query"')


def test_cookie_removed_other_cookies_kept(main_envoy):
    token = make_token()
    up = assert_passed(main_envoy.get("/cookie", cookies={"theme": "dark", "session": token, "lang": "en"}))
    assert up["headers"]["x-cookie-sub"] == SUBJECT
    cookie = up["headers"].get("cookie", "")
    assert token not in cookie
    assert "session=" not in cookie
    assert "theme=dark" in cookie and "lang=en" in cookie


def test_cookie_only_cookie(main_envoy):
    token = make_token()
    up = assert_passed(main_envoy.get("/cookie", cookies={"session": token}))
    assert token not in up["headers"].get("cookie", "")


def test_cookie_missing(main_envoy):
    assert_missing(main_envoy.get("/cookie", cookies={"theme": "dark"}), main_envoy, "/cookie")


def test_forward_true_keeps_authorization(main_envoy):
    token = make_token()
    up = assert_passed(main_envoy.get("/forward", token=token))
    assert up["headers"]["authorization"] == f"Bearer {token}"


def test_forward_false_keeps_unrelated_headers(main_envoy):
    up = assert_passed(main_envoy.get("/api", token=make_token(), headers={"x-keep": "yes"}))
    assert up["headers"]["x-keep"] == "yes"
