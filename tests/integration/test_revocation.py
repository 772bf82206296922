"""Revocation in the real Envoy (--concurrency 2): a deny-list server and an SSF
transmitter on 127.0.0.1 (support/revocation_servers.py) reached through Envoy clusters;
a token accepted, then revoked, and refused on every worker within a poll interval; the
feed down (last good kept, or fail_closed denies); forged and wrongly addressed SETs
ignored and counted; a flood of events bounded. Poll intervals are 1s."""
from __future__ import annotations

import functools
import time

import pytest

from tests.integration import checks
from tests.integration import harness
from tests.integration.harness import Envoy, EnvoyStartError
from tests.integration.observability import series, values
from tests.support.revocation_servers import CAEP, DenyListServer, SsfTransmitter
from tests.support.tokens import ISSUER, make_token

TX_ISSUER = "https://tx.test"
TX_AUDIENCE = "https://gateway.test"


def config(revocation: dict) -> dict:
    return {
        "providers": {"idp": {"issuer": ISSUER, "audiences": ["api"],
                              "local_jwks": {"inline_string": _jwks()},
                              "revocation": revocation}},
        "rules": [
            {"match": {"prefix": "/report"}, "requires": {"provider_name": "idp"},
             "mode": "report"},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}},
        ],
    }


def _jwks() -> str:
    from tests.support.tokens import jwks_subset
    return jwks_subset("rsa-a")


def deny_list(**kw) -> dict:
    d = {"http_uri": {"uri": "http://lists.test/deny.json", "cluster": "lists", "timeout": "1s"},
         "poll_interval": "1s"}
    d.update(kw)
    return {"deny_list": d}


def ssf(**kw) -> dict:
    s = {"poll_endpoint": {"uri": "http://tx.test/poll", "cluster": "tx", "timeout": "1s"},
         "transmitter_jwks": {"http_uri": {"uri": "http://tx.test/jwks", "cluster": "tx",
                                           "timeout": "1s"}},
         "issuer": TX_ISSUER, "audience": TX_AUDIENCE, "poll_interval": "1s"}
    s.update(kw)
    return {"ssf": s}


@pytest.fixture
def start(echo_port):
    started: list[Envoy] = []

    def factory(revocation: dict, **clusters: int) -> Envoy:
        extra = [harness.static_cluster(name, port) for name, port in clusters.items()]
        proxy = Envoy(echo_port, config(revocation), concurrency=2, extra_clusters=extra)
        try:
            proxy.start()
        except EnvoyStartError as err:
            pytest.fail(str(err), pytrace=False)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()


@pytest.fixture
def lists():
    server = DenyListServer()
    yield server
    server.close()


@pytest.fixture
def tx():
    server = SsfTransmitter(TX_ISSUER, TX_AUDIENCE)
    yield server
    server.close()


# A revocation must take effect within a few poll intervals: 6 s unless a test says otherwise.
eventually = functools.partial(checks.eventually, timeout=6.0)


def statuses(proxy: Envoy, token: str, n: int = 20, path: str = "/x") -> list[int]:
    return [proxy.get(path, headers={"authorization": f"Bearer {token}"}).status
            for _ in range(n)]


def all_refused(proxy: Envoy, token: str) -> bool:
    return statuses(proxy, token) == [401] * 20


def metric(proxy: Envoy, name: str, **labels: str) -> float:
    return values(proxy).get(series(f"jwt_filter_{name}", **labels), 0)


def token(**claims) -> str:
    # Issued a minute ago: an event published now is after it.
    base = {"iat": int(time.time()) - 60}
    base.update(claims)
    return make_token("RS256", kid="rsa-a", claims=base)


def test_deny_list_revokes_on_every_worker_with_its_own_reason(start, lists):
    proxy = start(deny_list(), lists=lists.port)
    tok, other = token(jti="tok-1"), token(jti="tok-2")
    assert eventually(lambda: "rule(s) read from" in proxy.log_text())
    assert statuses(proxy, tok) == [200] * 20
    lists.revoke("jti", "tok-1")
    started = time.monotonic()
    assert eventually(lambda: all_refused(proxy, tok)), "revoked token still accepted"
    # Within one poll interval plus jitter and a tick.
    assert time.monotonic() - started < 4
    reply = proxy.get("/x", headers={"authorization": f"Bearer {tok}"})
    assert reply.www_authenticate.endswith(
        'error="invalid_token", error_description="token revoked"')
    assert statuses(proxy, other) == [200] * 20
    # Report mode: counted as a would-deny, let through.
    assert statuses(proxy, tok, 3, "/report") == [200] * 3
    assert metric(proxy, "decisions_total", decision="deny", reason="revoked",
                  mode="enforce") >= 20
    assert metric(proxy, "decisions_total", decision="would_deny", reason="revoked",
                  mode="report") == 3
    assert metric(proxy, "revocation_deny_list_entries", provider="idp") == 1
    # Nothing new: the polls that follow are answered 304.
    assert eventually(lambda: lists.not_modified >= 2)
    assert metric(proxy, "revocation_deny_list_polls_total", provider="idp",
                  result="not_modified") >= 2


@pytest.mark.parametrize("fail_closed", [False, True])
def test_deny_list_down_keeps_the_last_good_list_or_fails_closed(start, lists, fail_closed):
    lists.revoke("sub", "mallory")
    proxy = start(deny_list(staleness="2s", fail_closed=fail_closed), lists=lists.port)
    good, bad = token(sub="alice"), token(sub="mallory")
    assert eventually(lambda: all_refused(proxy, bad))
    assert statuses(proxy, good) == [200] * 20
    # A broken document is refused and the last good list kept.
    lists.mode = "garbage"
    assert eventually(lambda: "refused: not a JSON document" in proxy.log_text())
    assert all_refused(proxy, bad)
    lists.mode = "500"
    if fail_closed:
        assert eventually(lambda: statuses(proxy, good) == [401] * 20), "fail_closed not applied"
        reply = proxy.get("/x", headers={"authorization": f"Bearer {good}"})
        assert 'error_description="revocation status unavailable"' in reply.www_authenticate
        assert metric(proxy, "decisions_total", decision="deny",
                      reason="revocation_unavailable", mode="enforce") > 0
        lists.mode = "ok"
        assert eventually(lambda: statuses(proxy, good) == [200] * 20), "no recovery"
    else:
        time.sleep(3.5)
        assert statuses(proxy, good) == [200] * 20
        assert all_refused(proxy, bad)
    assert metric(proxy, "revocation_deny_list_polls_total", provider="idp",
                  result="failure") >= 1
    assert metric(proxy, "revocation_deny_list_polls_total", provider="idp",
                  result="refused") >= 1


def test_ssf_session_revoked_refused_on_every_worker_and_acknowledged(start, tx):
    proxy = start(ssf(), tx=tx.port)
    alice = token(sub="alice")
    assert eventually(lambda: tx.count("POST") >= 1), "receiver never polled"
    assert statuses(proxy, alice) == [200] * 20
    jti = tx.session_revoked({"format": "iss_sub", "iss": ISSUER, "sub": "alice"})
    started = time.monotonic()
    assert eventually(lambda: all_refused(proxy, alice)), "session-revoked not applied"
    assert time.monotonic() - started < 4
    # A login after the event works.
    time.sleep(1.1)
    fresh = make_token("RS256", kid="rsa-a", claims={"sub": "alice", "iat": int(time.time())})
    assert statuses(proxy, fresh) == [200] * 20
    # The next poll acknowledged it; the transmitter stops delivering it.
    assert eventually(lambda: jti in tx.acked)
    assert metric(proxy, "revocation_ssf_events_total", provider="idp", result="applied") == 1
    assert metric(proxy, "revocation_ssf_entries", provider="idp") == 1


def test_ssf_forged_and_wrongly_addressed_sets_ignored_and_counted(start, tx):
    proxy = start(ssf(), tx=tx.port)
    alice = token(sub="alice")
    assert eventually(lambda: tx.count("POST") >= 1)
    subject = {"format": "iss_sub", "iss": ISSUER, "sub": "alice"}
    event = {CAEP + "session-revoked": {"subject": subject}}
    forged = tx.publish(tx.sign(event, key="ec256.pem", kid="ec-256", typ="secevent+jwt")
                        .rsplit(".", 1)[0] + "." + "A" * 86)
    wrong_aud = tx.publish(tx.sign(event, aud="https://someone-else.test"))
    wrong_iss = tx.publish(tx.sign(event, iss="https://evil.test"))
    wrong_typ = tx.publish(tx.sign(event, typ="JWT"))
    assert eventually(lambda: len(tx.errors) == 4), tx.errors
    assert tx.errors[forged]["err"] == "authentication_failed"
    assert tx.errors[wrong_aud]["err"] == "invalid_audience"
    assert tx.errors[wrong_iss]["err"] == "invalid_issuer"
    assert tx.errors[wrong_typ]["err"] == "invalid_request"
    assert statuses(proxy, alice) == [200] * 20
    for reason in ["signature", "audience", "issuer", "typ"]:
        assert metric(proxy, "revocation_ssf_sets_rejected_total", provider="idp",
                      reason=reason) == 1, reason
    assert metric(proxy, "revocation_ssf_events_total", provider="idp", result="applied") == 0


def test_ssf_transmitter_down_keeps_rules_or_fails_closed(start, tx):
    proxy = start(ssf(staleness="2s", fail_closed=True), tx=tx.port)
    alice, bob = token(sub="alice"), token(sub="bob")
    assert eventually(lambda: tx.count("POST") >= 1)
    tx.session_revoked({"format": "iss_sub", "iss": ISSUER, "sub": "alice"})
    assert eventually(lambda: all_refused(proxy, alice))
    assert statuses(proxy, bob) == [200] * 20
    tx.mode = "500"
    assert eventually(lambda: statuses(proxy, bob) == [401] * 20), "fail_closed not applied"
    tx.mode = "ok"
    assert eventually(lambda: statuses(proxy, bob) == [200] * 20), "no recovery"
    assert all_refused(proxy, alice), "rules lost across the outage"
    assert metric(proxy, "revocation_ssf_polls_total", provider="idp", result="failure") >= 1


def test_ssf_flood_of_events_is_bounded(start, tx):
    proxy = start({"max_entries": 20, **ssf(max_events=5)}, tx=tx.port)
    assert eventually(lambda: tx.count("POST") >= 1)
    for i in range(60):
        tx.publish(tx.sign({CAEP + "credential-change": {
            "subject": {"format": "iss_sub", "iss": ISSUER, "sub": f"user-{i}"}}}))
    assert eventually(lambda: not tx.outstanding, timeout=25), len(tx.outstanding)
    assert max(len(p.get("ack", [])) for p in tx.polls) <= 5
    assert eventually(lambda: metric(proxy, "revocation_ssf_entries", provider="idp") == 20)
    assert metric(proxy, "revocation_ssf_rules_refused_total", provider="idp") == 40
    assert "the rule set is full" in proxy.log_text()
    # The first twenty users are revoked, the rest could not be: still serving.
    assert all_refused(proxy, token(sub="user-0"))
    assert statuses(proxy, token(sub="user-59"), 5) == [200] * 5
