"""require_expiration and max_lifetime (provider `strict`: require_expiration, max_lifetime 3600s)."""
import time

from tests.integration.checks import assert_invalid, assert_passed
from tests.support.tokens import make_token


def test_missing_exp_rejected_when_required(main_envoy):
    token = make_token(claims={"exp": None})
    assert_invalid(main_envoy.get("/strict", token=token), main_envoy, "/strict", "Jwt is missing the exp claim")


def test_missing_exp_allowed_by_default(main_envoy):
    assert_passed(main_envoy.get("/lenient", token=make_token(claims={"exp": None})))


def test_lifetime_within_max(main_envoy):
    now = int(time.time())
    assert_passed(main_envoy.get("/strict", token=make_token(claims={"iat": now, "exp": now + 1800})))


def test_lifetime_exceeds_max(main_envoy):
    now = int(time.time())
    token = make_token(claims={"iat": now, "exp": now + 7200})
    assert_invalid(main_envoy.get("/strict", token=token), main_envoy, "/strict",
                   "Jwt lifetime exceeds max_lifetime")


def test_long_lifetime_fine_without_max(main_envoy):
    now = int(time.time())
    assert_passed(main_envoy.get("/lenient", token=make_token(claims={"iat": now, "exp": now + 86400 * 30})))


def test_expired_still_expired_on_strict(main_envoy):
    now = int(time.time())
    token = make_token(claims={"iat": now - 1000, "exp": now - 500})
    assert_invalid(main_envoy.get("/strict", token=token), main_envoy, "/strict", "Jwt is expired")


def test_custom_clock_skew(shared_envoy):
    from tests.integration.configs import main_config, provider

    cfg = main_config()
    cfg["providers"] = {"main": provider(clock_skew_seconds=0)}
    cfg["rules"] = [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    proxy = shared_envoy(cfg, concurrency=1)
    now = int(time.time())
    token = make_token(claims={"iat": now - 600, "exp": now - 30})
    assert_invalid(proxy.get("/x", token=token), proxy, "/x", "Jwt is expired")
    assert_passed(proxy.get("/x", token=make_token()))
