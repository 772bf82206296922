"""A bad plugin configuration makes the plugin refuse to start.

Measured with Envoy 1.40: when on_configure returns false, Envoy logs "Plugin jwt_filter
failed to load" / "Unable to create Wasm plugin jwt_filter" and exits with code 1 during
startup. Each case also asserts the plugin's own log line names the offending field.
"""
import json

import pytest

from tests.integration.configs import provider
from tests.support.tokens import jwks_text

RULE_MAIN = [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]


def cfg(prov=None, rules=None, **top):
    c = {"providers": {"p": prov if prov is not None else provider()},
         "rules": rules if rules is not None else RULE_MAIN}
    c.update(top)
    return c


def without(d, key):
    d = dict(d)
    d.pop(key)
    return d


BAD_CONFIGS = {
    # id: (plugin config, strings one of which the log must contain, case-insensitive)
    "unknown_top_level_field": (cfg(bogus_top_field=1), ["bogus_top_field"]),
    "unknown_provider_field": (cfg(provider(isuer_typo="x")), ["isuer_typo"]),
    "unknown_rule_field": (cfg(rules=[{"match": {"prefix": "/"}, "requirez": {}}]), ["requirez"]),
    "wrong_type_issuer": (cfg(provider(issuer=123)), ["issuer"]),
    "wrong_type_audiences": (cfg(provider(audiences="api")), ["audiences"]),
    "wrong_type_forward": (cfg(provider(forward="yes")), ["forward"]),
    "wrong_type_clock_skew": (cfg(provider(clock_skew_seconds="sixty")), ["clock_skew_seconds"]),
    "unknown_provider_in_rule": (cfg(rules=[{"match": {"prefix": "/"},
                                              "requires": {"provider_name": "nosuchprovider"}}]),
                                 ["nosuchprovider"]),
    "unknown_provider_in_requires_any": (
        cfg(rules=[{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "p"}, {"provider_name": "ghostprovider"}]}}}]), ["ghostprovider"]),
    "provider_without_key_source": (cfg(without(provider(), "local_jwks")), ["jwks"]),
    "jwks_not_json": (cfg(provider(local_jwks={"inline_string": "{not json"})), ["jwks"]),
    "jwks_no_usable_key": (cfg(provider(local_jwks={"inline_string": jwks_text("jwks_weak.json")})),
                           ["jwks"]),
    "bad_regex": (cfg(rules=[{"match": {"safe_regex": {"regex": "(["}},
                              "requires": {"provider_name": "p"}}]), ["regex"]),
    "bad_duration": (cfg(provider(max_lifetime="ten minutes")), ["max_lifetime"]),
    "duration_without_unit": (cfg(provider(max_lifetime="600")), ["max_lifetime"]),
    "plugin_config_not_json": ("{this is not json", ["json", "config"]),
    "match_without_path_specifier": (cfg(rules=[{"match": {}, "requires": {"provider_name": "p"}}]),
                                     ["match", "prefix", "path"]),
    # Two providers of one name: refused, not the last one kept.
    "provider_named_twice": ('{"providers": {"p": %s, "p": %s}, "rules": %s}' % (
        json.dumps(provider()), json.dumps(provider(issuer="https://other.test")),
        json.dumps(RULE_MAIN)), ["providers.p: duplicate member `p`"]),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config_refuses_to_start(envoy_expect_fail, name):
    plugin_config, needles = BAD_CONFIGS[name]
    log = envoy_expect_fail(plugin_config)
    assert "Unable to create Wasm plugin jwt_filter" in log or "failed to load" in log, log[-3000:]
    # The plugin's own error line (proxy-wasm logs appear as "wasm log jwt_filter ...").
    plugin_lines = [line for line in log.splitlines() if "wasm log" in line]
    joined = "\n".join(plugin_lines).lower()
    assert plugin_lines, f"the plugin logged nothing\n{log[-3000:]}"
    assert any(n.lower() in joined for n in needles), \
        f"plugin log does not name any of {needles}:\n" + "\n".join(plugin_lines[-10:])


def test_weak_key_skipped_with_warning_naming_kid(shared_envoy):
    # One weak key plus a good one: the plugin starts, and warns about the weak key's kid.
    weak = json.loads(jwks_text("jwks_weak.json"))["keys"]
    good = json.loads(jwks_text())["keys"]
    proxy = shared_envoy(cfg(provider(local_jwks={"inline_string": json.dumps({"keys": weak + good})})),
                         concurrency=1)
    warn_lines = [line for line in proxy.log_text().splitlines() if "wasm log" in line and "rsa-weak" in line]
    assert warn_lines, proxy.log_tail()


def test_good_config_starts(shared_envoy):
    proxy = shared_envoy(cfg(), concurrency=1)
    assert proxy.get("/x").status == 401
