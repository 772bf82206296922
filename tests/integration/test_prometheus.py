"""The alert rules and the dashboard, proven against the real thing.

- `promtool check rules` and `promtool test rules` on deploy/observability/alerts*.yaml;
- a real Prometheus (Debian's package) scrapes the real Envoy's /stats/prometheus every
  second while traffic of known shape runs (valid, expired, forged, unknown kid, missing,
  report mode, a remote JWKS that serves and one that fails; revocation feeds: a deny list
  that goes down, an SSF stream flooded past its bound and sent forged SETs). Then every
  dashboard panel's
  and every alert's expression is evaluated through Prometheus's HTTP API: each returns
  data, the counts match the traffic sent, and the alerts the traffic should fire are
  firing. The alert rules run as shipped except for their windows, `for:` and two
  time-based thresholds, shortened so the test takes about a minute.

With DASHBOARD_PNG=<path> the run's data is rendered to a PNG of the dashboard's panels
(needs matplotlib; tools/dashboard_png.py).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from tests.integration import harness
from tests.integration.harness import ROOT, Envoy, EnvoyStartError
from tests.support.envoy import free_port
from tests.support.jwks_server import JwksServer
from tests.support.revocation_servers import CAEP, DenyListServer, SsfTransmitter
from tests.support.tokens import jwks_subset, jwks_text, make_token, tamper_payload

OBS = ROOT / "deploy" / "observability"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
NO_PROMETHEUS = "Debian package `prometheus` not installed (apt-get install prometheus)"

#: Window for rate() in the test's copy of the rules and in the dashboard's queries.
WINDOW = "20s"
#: Traffic duration: longer than WINDOW so every rate sees only steady traffic.
TRAFFIC_SECONDS = 28


@pytest.mark.skipif(not PROMTOOL, reason=NO_PROMETHEUS)
def test_promtool_checks_and_unit_tests_the_alert_rules():
    check = subprocess.run([PROMTOOL, "check", "rules", "alerts.yaml"], cwd=OBS,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 12 rules found" in check.stdout, check.stdout
    unit = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yaml"], cwd=OBS,
                          capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "SUCCESS" in unit.stdout


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load((OBS / "alerts.yaml").read_text())["groups"]
            for r in g["rules"]]


def test_every_alert_rule_has_a_unit_test():
    tested = {t["alertname"] for case in yaml.safe_load((OBS / "alerts_test.yaml").read_text())["tests"]
              for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert tested == {r["alert"] for r in alert_rules()}


def dashboard() -> dict:
    return json.loads((OBS / "dashboard.json").read_text())


def test_dashboard_is_a_grafana_dashboard_on_the_filters_metrics():
    d = dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 30
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    cells = set()
    for p in d["panels"]:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert "jwt_filter_" in t["expr"] and t["datasource"]["uid"] == "${datasource}"
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"panel {p['title']} overlaps another"
        cells |= mine


# -- the real Prometheus ------------------------------------------------------------------

#: (original text in alerts.yaml, the test's) -- each must occur exactly once.
THRESHOLDS = [
    ("jwt_filter_jwks_age_seconds{key_source=\"remote\"}) > 3600",
     "jwt_filter_jwks_age_seconds{key_source=\"remote\"}) > 4"),
    ("> 90 * 86400", "> 4"),
    (") > 300\n", ") > 4\n"),
]


def fast_rules(path: pathlib.Path) -> dict[str, str]:
    """Writes the test's copy of alerts.yaml (short windows and `for:`, the time-based
    thresholds in seconds); returns alert name -> its expression as shipped."""
    doc = yaml.safe_load((OBS / "alerts.yaml").read_text())
    shipped = {}
    hits = {old: 0 for old, _ in THRESHOLDS}
    for g in doc["groups"]:
        g["interval"] = "1s"
        for r in g["rules"]:
            shipped[r["alert"]] = r["expr"]
            expr = re.sub(r"\[\d+[smh]\]", f"[{WINDOW}]", r["expr"])
            for old, new in THRESHOLDS:
                if old in expr:
                    hits[old] += 1
                    expr = expr.replace(old, new)
            r["expr"] = expr
            r["for"] = "2s"
    assert all(n == 1 for n in hits.values()), hits
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return shipped


class Prometheus:
    def __init__(self, workdir: pathlib.Path, target: str, rules: pathlib.Path):
        self.dir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "envoy", "metrics_path": "/stats/prometheus",
                                "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.log = workdir / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def api(self, path: str, **params) -> dict:
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{q}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("Prometheus not ready\n" + self.log.read_text()[-3000:])

    def firing(self) -> set[tuple[str, str]]:
        """(alertname, the alert's distinguishing label value) of firing alerts."""
        out = set()
        for a in self.api("alerts")["alerts"]:
            if a["state"] == "firing":
                labels = a["labels"]
                key = labels.get("provider") or labels.get("reason") or labels.get("alg") or ""
                out.add((labels["alertname"], key))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


TX_ISSUER = "https://tx.test"
TX_AUDIENCE = "https://gateway.test"


def plugin_config() -> dict:
    remote = lambda cluster: {
        "http_uri": {"uri": f"http://{cluster.replace('_', '-')}.test/jwks.json", "cluster": cluster, "timeout": "1s"},
        "cache_duration": "600s"}
    feed = lambda cluster: {
        "http_uri": {"uri": f"http://{cluster.replace('_', '-')}.test/deny.json", "cluster": cluster, "timeout": "1s"},
        "poll_interval": "1s"}
    return {
        "providers": {
            "main": {"issuer": "https://issuer.test", "audiences": ["api"],
                     "local_jwks": {"inline_string": jwks_text()}},
            "idp": {"issuer": "https://issuer.test", "audiences": ["api"], "remote_jwks": remote("jwks_ok"),
                    "from_headers": [{"name": "x-idp-token"}]},
            "down": {"issuer": "https://issuer.test", "audiences": ["api"],
                     "remote_jwks": remote("jwks_down"), "from_headers": [{"name": "x-down-token"}]},
            # Revocation: a deny list and an SSF stream bounded at 2 rules each, and a deny
            # list that goes down after its first read.
            "rev": {"issuer": "https://issuer.test", "audiences": ["api"],
                    "local_jwks": {"inline_string": jwks_text()},
                    "from_headers": [{"name": "x-rev-token"}],
                    "revocation": {"max_entries": 2, "deny_list": feed("lists_ok"), "ssf": {
                        "poll_endpoint": {"uri": "http://tx.test/poll", "cluster": "tx", "timeout": "1s"},
                        "transmitter_jwks": {"http_uri": {"uri": "http://tx.test/jwks", "cluster": "tx",
                                                          "timeout": "1s"}},
                        "issuer": TX_ISSUER, "audience": TX_AUDIENCE, "poll_interval": "1s"}}},
            "revdown": {"issuer": "https://issuer.test", "audiences": ["api"],
                        "local_jwks": {"inline_string": jwks_text()},
                        "from_headers": [{"name": "x-revdown-token"}],
                        "revocation": {"deny_list": feed("lists_down")}},
        },
        "rules": [
            {"match": {"prefix": "/report"}, "requires": {"provider_name": "main"}, "mode": "report",
             "name": "shadow"},
            {"match": {"prefix": "/idp"}, "requires": {"provider_name": "idp"}, "name": "idp-api"},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}, "name": "api"},
        ],
    }


#: What the traffic should fire: (alertname, provider / reason / alg).
EXPECTED_FIRING = {
    ("JwtFilterForgedOrProbingTokens", "bad_signature"),
    ("JwtFilterForgedOrProbingTokens", "unknown_kid"),
    ("JwtFilterExpiredTokenSurge", ""),
    ("JwtFilterJwksFetchFailing", "down"),
    ("JwtFilterNoSigningKeys", "down"),
    ("JwtFilterJwksStale", "idp"),          # no refresh in 600 s; threshold 4 s here
    ("JwtFilterSigningKeyTooOld", "idp"),   # rotation period 4 s here
    ("JwtFilterReportModeWouldDeny", ""),
    ("JwtFilterRevocationStale", "revdown"),         # down after its first read; threshold 4 s here
    ("JwtFilterRevocationPollFailing", "revdown"),
    ("JwtFilterRevocationRulesRefused", "rev"),      # the SSF stream's events past max_entries
    ("JwtFilterRevocationSetsRejected", "rev"),      # a forged SET each round
}
#: Nothing can make Envoy's host crypto fail its probe here.
NOT_FIRING = {"JwtFilterHostCryptoFallback"}


class Traffic:
    """One round of requests of known shape; counts what was sent."""

    def __init__(self, proxy: Envoy):
        self.proxy = proxy
        self.valid = make_token()
        self.idp_token = make_token(kid="rsa-a")
        self.counts: dict[tuple[str, str, str], int] = {}
        self.provider: dict[tuple[str, str], int] = {}
        self.rule: dict[tuple[str, str], int] = {}

    def send(self, path: str, want: int, decision: str, reason: str, mode: str, rule: str,
             provider: str | None, **kw) -> None:
        reply = self.proxy.get(path, **kw)
        assert reply.status == want, (path, reply)
        key = (decision, reason, mode)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.rule[(rule, decision)] = self.rule.get((rule, decision), 0) + 1
        if provider:
            self.provider[(provider, decision)] = self.provider.get((provider, decision), 0) + 1

    def round(self) -> None:
        s = self.send
        for _ in range(2):
            s("/api", 200, "allow", "none", "enforce", "api", "main", token=self.valid)
        for _ in range(2):
            s("/api", 401, "deny", "expired", "enforce", "api", "main",
              token=make_token(claims={"exp": 1000}))
        s("/api", 401, "deny", "bad_signature", "enforce", "api", "main",
          token=tamper_payload(self.valid, sub="mallory"))
        s("/api", 401, "deny", "unknown_kid", "enforce", "api", "main", token=make_token(kid="made-up"))
        s("/api", 401, "deny", "missing", "enforce", "api", "main")
        s("/report", 200, "would_deny", "missing", "report", "shadow", None)
        s("/report", 200, "allow", "none", "report", "shadow", "main", token=self.valid)
        s("/idp", 200, "allow", "none", "enforce", "idp-api", "idp", headers={"x-idp-token": self.idp_token})


class RevocationFeeds:
    """The deny lists and the SSF transmitter of the providers rev and revdown; each round
    publishes an event for a new user (refused past max_entries) and a forged SET."""

    def __init__(self):
        self.lists_ok = DenyListServer()
        for i in range(3):  # one past max_entries: refused once
            self.lists_ok.revoke("jti", f"revoked-{i}")
        self.lists_down = DenyListServer()
        self.tx = SsfTransmitter(TX_ISSUER, TX_AUDIENCE)
        self.users = 0

    def clusters(self) -> list:
        return [harness.static_cluster("lists_ok", self.lists_ok.port),
                harness.static_cluster("lists_down", self.lists_down.port),
                harness.static_cluster("tx", self.tx.port)]

    def round(self) -> None:
        if self.lists_down.mode == "ok" and self.lists_down.count("GET") >= 1:
            self.lists_down.mode = "500"
        self.users += 1
        subject = {"format": "iss_sub", "iss": "https://issuer.test", "sub": f"user-{self.users}"}
        self.tx.publish(self.tx.sign({CAEP + "credential-change": {"subject": subject}}))
        forged = self.tx.sign({CAEP + "session-revoked": {"subject": subject}})
        self.tx.publish(forged.rsplit(".", 1)[0] + "." + "A" * 86)

    def close(self) -> None:
        for server in (self.lists_ok, self.lists_down, self.tx):
            server.close()


def series_value(result: list[dict], **labels) -> float:
    for r in result:
        if all(r["metric"].get(k) == v for k, v in labels.items()):
            return float(r["value"][1])
    raise AssertionError(f"no series {labels} in {result}")


@pytest.mark.skipif(not (PROMETHEUS and PROMTOOL), reason=NO_PROMETHEUS)
def test_real_prometheus_scrapes_envoy_and_every_panel_and_alert_works(echo_port, tmp_path):
    ok_server = JwksServer(jwks_subset("rsa-a"))
    down_server = JwksServer(jwks_subset("rsa-a"))
    down_server.mode = "500"
    feeds = RevocationFeeds()
    proxy = Envoy(echo_port, plugin_config(), concurrency=2, extra_clusters=[
        harness.static_cluster("jwks_ok", ok_server.port),
        harness.static_cluster("jwks_down", down_server.port), *feeds.clusters()])
    prom = None
    try:
        try:
            proxy.start()
        except EnvoyStartError as err:
            pytest.fail(str(err), pytrace=False)
        shipped = fast_rules(tmp_path / "rules.yaml")
        prom = Prometheus(tmp_path, proxy.admin_url.removeprefix("http://"), tmp_path / "rules.yaml")
        prom.wait_ready()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not prom.query('up{job="envoy"} == 1'):
            time.sleep(0.3)
        assert prom.query('up{job="envoy"} == 1'), prom.api("targets")

        traffic = Traffic(proxy)
        start = time.time()
        seen: set[tuple[str, str]] = set()
        while time.time() - start < TRAFFIC_SECONDS:
            traffic.round()
            feeds.round()
            if time.time() - start > WINDOW_SECONDS:
                seen |= prom.firing()
            time.sleep(0.25)
        end = time.time()
        # Alerts that need a little longer (their `for:` and the rule interval).
        settle = time.monotonic() + 8
        while not EXPECTED_FIRING <= seen and time.monotonic() < settle:
            seen |= prom.firing()
            traffic.round()
            feeds.round()
            time.sleep(0.5)
        end = time.time()
        assert EXPECTED_FIRING <= seen, f"missing: {EXPECTED_FIRING - seen}"
        assert {a for a, _ in seen} & NOT_FIRING == set(), seen

        # The counts match the traffic: wait for a scrape with all of it (histograms
        # arrive at Envoy's next stats flush).
        total = sum(traffic.counts.values())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = prom.query("sum(jwt_filter_decisions_total)")
            timed = prom.query("sum(jwt_filter_decision_duration_microseconds_count)")
            if got and timed and float(got[0]["value"][1]) == total == float(timed[0]["value"][1]):
                break
            time.sleep(0.5)
        by = prom.query("sum by (decision, reason, mode) (jwt_filter_decisions_total) > 0")
        assert {(r["metric"]["decision"], r["metric"]["reason"], r["metric"]["mode"]): float(r["value"][1])
                for r in by} == {k: float(v) for k, v in traffic.counts.items()}
        prov = prom.query("sum by (provider, decision) (jwt_filter_provider_decisions_total) > 0")
        assert {(r["metric"]["provider"], r["metric"]["decision"]): float(r["value"][1]) for r in prov} \
            == {k: float(v) for k, v in traffic.provider.items()}
        rules = prom.query("sum by (rule, decision) (jwt_filter_rule_decisions_total) > 0")
        assert {(r["metric"]["rule"], r["metric"]["decision"]): float(r["value"][1]) for r in rules} \
            == {k: float(v) for k, v in traffic.rule.items()}
        timed = prom.query("sum by (outcome) (jwt_filter_decision_duration_microseconds_count)")
        allowed_with_token = sum(v for (d, _, _), v in traffic.counts.items() if d == "allow")
        assert series_value(timed, outcome="verified") + series_value(timed, outcome="cache_hit") \
            == allowed_with_token
        assert series_value(timed, outcome="denied") == total - allowed_with_token
        assert series_value(timed, outcome="cache_hit") > 0  # the same valid token, again and again
        assert series_value(prom.query("jwt_filter_jwks_keys"), provider="idp") == 1
        assert series_value(prom.query("jwt_filter_jwks_keys"), provider="down") == 0
        assert series_value(prom.query("sum by (provider) (jwt_filter_jwks_fetches_total)"), provider="down") >= 2
        # Revocation: each feed of rev holds max_entries (2) rules and refused the rest; the
        # forged SETs were rejected; revdown's polls fail.
        for name in ("deny_list", "ssf"):
            assert series_value(prom.query(f"max by (provider) (jwt_filter_revocation_{name}_entries)"),
                                provider="rev") == 2, name
            assert series_value(prom.query(f"sum by (provider) (jwt_filter_revocation_{name}_rules_refused_total)"),
                                provider="rev") >= 1, name
        assert series_value(prom.query('sum by (provider) (jwt_filter_revocation_ssf_sets_rejected_total'
                                       '{reason="signature"})'), provider="rev") >= 10
        assert series_value(prom.query('sum by (provider) (jwt_filter_revocation_deny_list_polls_total'
                                       '{result="failure"})'), provider="revdown") >= 5

        # Every alert's expression, as shipped apart from its window, returns data; the
        # time-based ones (hours, days) are checked on their signal.
        for name, expr in shipped.items():
            fast = re.sub(r"\[\d+[smh]\]", f"[{WINDOW}]", expr)
            for old, new in THRESHOLDS:
                fast = fast.replace(old, new)
            result = prom.query(fast, at=end)
            if name in NOT_FIRING:
                assert result == [], (name, result)
                signal = re.sub(r"\s*>\s*0\s*$", "", fast.strip())
                assert prom.query(signal, at=end), (name, signal)
            else:
                assert result, (name, fast)

        # Every dashboard panel's queries return data at the end of the traffic; a few
        # values are known from the traffic's shape.
        quiet = {"jwt_filter_jwks_keys_added_total", "jwt_filter_jwks_keys_removed_total"}
        for p in dashboard()["panels"]:
            for t in p["targets"]:
                expr = t["expr"].replace("$__rate_interval", WINDOW)
                result = prom.query(expr, at=end)
                assert result, (p["title"], expr)
                if any(q in expr for q in quiet):
                    continue  # the keys did not change during the run: 0
                if "histogram_quantile" in expr or "decision_duration" in expr:
                    for r in result:
                        v = float(r["value"][1])
                        assert v != v or 0 < v < 1_000_000, (p["title"], r)  # NaN: outcome unused
        panels = {p["title"]: p for p in dashboard()["panels"]}
        share = prom.query(panels["Report mode: would-deny share"]["targets"][0]["expr"]
                           .replace("$__rate_interval", WINDOW), at=end)
        assert abs(float(share[0]["value"][1]) - 0.5) < 0.05, share  # 1 of 2 per round
        hit = prom.query(panels["Token cache hit ratio"]["targets"][0]["expr"]
                         .replace("$__rate_interval", WINDOW), at=end)
        # Per round 4 lookups find a token verified before (3 valid for main, 1 for idp),
        # 4 do not (2 expired, 1 forged, 1 unknown kid: new tokens every round).
        assert abs(float(hit[0]["value"][1]) - 0.5) < 0.05, hit

        out = os.environ.get("DASHBOARD_PNG")
        if out:
            from tools import dashboard_png

            png = dashboard_png.render(prom.url, start - 5, end, pathlib.Path(out).resolve(), WINDOW,
                                       subtitle=f"({TRAFFIC_SECONDS} s of known traffic)")
            assert png.stat().st_size > 10_000
    finally:
        if prom is not None:
            prom.stop()
        proxy.stop()
        ok_server.close()
        down_server.close()
        feeds.close()


WINDOW_SECONDS = int(WINDOW.rstrip("s"))
