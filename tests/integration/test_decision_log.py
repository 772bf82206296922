"""Decision log and filter state: one structured info line per denial and per
report-mode would-deny, with a token fingerprint but never the token or a query string;
the outcome is readable by access logs as filter state."""
import hashlib
import json
import re
import time

import pytest

from tests.integration.configs import provider
from tests.integration.observability import access_log_lines, envoy_with_access_log, wait_for_log
from tests.support.tokens import make_token

LOGGED = {
    "providers": {"main": provider(from_params=["access_token"],
                                   from_headers=[{"name": "authorization", "value_prefix": "Bearer "}])},
    "rules": [
        {"match": {"prefix": "/public"}},
        {"match": {"prefix": "/report"}, "requires": {"provider_name": "main"}, "mode": "report"},
        {"match": {"prefix": "/scoped"}, "requires": {"provider_name": "main"}, "required_scopes": ["admin"]},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}},
    ],
}

LINE = re.compile(
    r"jwt_filter decision=(?P<decision>\S+) reason=(?P<reason>\S+) status=(?P<status>\d+) "
    r"provider=(?P<provider>\S+) rule=(?P<rule>\S+) kid=(?P<kid>\S+) iss=(?P<iss>\S+) "
    r"sub=(?P<sub>\"(?:[^\"\\]|\\.)*\"|\S+) method=(?P<method>\S+) path=(?P<path>\S+) "
    r"token_sha256=(?P<fp>\S+)$")


def fp(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def decision_lines(proxy) -> list[dict]:
    out = []
    for line in proxy.log_text().splitlines():
        m = LINE.search(line)
        if m:
            assert "[info]" in line, line
            out.append(m.groupdict())
    return out


@pytest.fixture
def proxy(envoy):
    return envoy(LOGGED)


def test_denial_line_has_every_field_and_never_the_token(proxy):
    token = make_token(claims={"exp": 1000, "sub": "alice"})
    reply = proxy.get("/api/items?page=2&marker=query-marker-123", token=token)
    assert reply.status == 401
    text = wait_for_log(proxy, "reason=expired")
    lines = [l for l in decision_lines(proxy) if l["reason"] == "expired"]
    assert len(lines) == 1, text[-3000:]
    assert lines[0] == {
        "decision": "deny", "reason": "expired", "status": "401", "provider": "main", "rule": "3",
        "kid": "rsa-a", "iss": "https://issuer.test", "sub": "alice", "method": "GET",
        "path": "/api/items", "fp": fp(token),
    }
    time.sleep(0.3)
    text = proxy.log_text()
    assert token not in text
    assert token.rsplit(".", 1)[1] not in text
    assert token.split(".")[1] not in text
    assert "query-marker-123" not in text


def test_token_in_query_is_not_logged(proxy):
    token = make_token(claims={"exp": 1000})
    assert proxy.get(f"/api?access_token={token}").status == 401
    wait_for_log(proxy, "reason=expired")
    time.sleep(0.3)
    text = proxy.log_text()
    assert token not in text and token.rsplit(".", 1)[1] not in text
    (line,) = [l for l in decision_lines(proxy) if l["reason"] == "expired"]
    assert line["path"] == "/api" and line["fp"] == fp(token)


def test_missing_and_insufficient_scope_lines(proxy):
    proxy.get("/api")
    token = make_token()
    assert proxy.get("/scoped", token=token).status == 403
    wait_for_log(proxy, "reason=insufficient_scope")
    lines = {l["reason"]: l for l in decision_lines(proxy)}
    assert lines["missing"]["kid"] == "-" and lines["missing"]["fp"] == "-"
    assert lines["missing"]["provider"] == "main"
    s = lines["insufficient_scope"]
    assert (s["status"], s["rule"], s["sub"], s["fp"]) == ("403", "2", "user-1", fp(token))


def test_report_mode_logs_would_deny(proxy):
    assert proxy.get("/report").status == 200
    wait_for_log(proxy, "decision=would_deny")
    (line,) = [l for l in decision_lines(proxy) if l["decision"] == "would_deny"]
    assert (line["reason"], line["rule"], line["path"]) == ("missing", "1", "/report")


def test_hostile_claims_are_quoted_and_capped(proxy):
    evil = 'x" decision=allow\njwt_filter decision=allow reason=none'
    token = make_token(kid="k" * 300, claims={"exp": 1000, "sub": evil})
    proxy.get("/api", token=token)
    text = wait_for_log(proxy, "reason=expired")
    assert "\njwt_filter decision=allow" not in text
    assert "decision=allow reason=none\n" not in text
    (line,) = [l for l in decision_lines(proxy) if l["reason"] == "expired"]
    assert line["sub"] == r'"x\" decision=allow\u{a}jwt_filter decision=allow reason=none"'
    assert line["kid"] == '"' + "k" * 64 + '..."'


def test_no_line_for_allowed_requests(proxy):
    proxy.get("/api", token=make_token())
    proxy.get("/public")
    time.sleep(0.5)
    assert decision_lines(proxy) == []


def test_filter_state_for_access_logs(echo_port):
    proxy = envoy_with_access_log(echo_port, dict(LOGGED, filter_state=True)).start()
    try:
        token = make_token(claims={"scope": "read"})
        proxy.get("/api", token=token)
        proxy.get("/api", token=make_token(claims={"exp": 1000}))
        proxy.get("/report")
        proxy.get("/scoped", token=make_token())
        proxy.get("/public")
        lines = access_log_lines(proxy, 5)
    finally:
        proxy.stop()
    assert len(lines) == 5, lines
    fields = [dict(kv.split("=", 1) for kv in re.findall(r"(\w+=(?:\{.*\}|\S+))", l)) for l in lines]
    ok, expired, report, scoped, public = sorted(
        fields, key=lambda f: ["valid", "invalid", "missing", "unauthorized", "-"].index(f["jwt_status"]))
    assert (ok["status"], ok["decision"], ok["provider"], ok["reason"]) == ("200", "allow", "main", "-")
    payload = json.loads(ok["payload"])
    assert payload["sub"] == "user-1" and payload["scope"] == "read"
    assert (expired["status"], expired["decision"], expired["reason"], expired["payload"]) == \
        ("401", "deny", "expired", "-")
    assert (report["status"], report["decision"], report["reason"]) == ("200", "would_deny", "missing")
    assert (scoped["status"], scoped["decision"], scoped["reason"]) == ("403", "deny", "insufficient_scope")
    assert (public["status"], public["decision"]) == ("200", "-")


def test_no_filter_state_unless_asked(echo_port):
    proxy = envoy_with_access_log(echo_port, LOGGED).start()
    try:
        proxy.get("/api", token=make_token(claims={"scope": "read"}))
        proxy.get("/api", token=make_token(claims={"exp": 1000}))
        lines = access_log_lines(proxy, 2)
    finally:
        proxy.stop()
    assert len(lines) == 2, lines
    for line in lines:
        assert "decision=- jwt_status=- reason=- provider=- payload=-" in line, line



def json_lines(proxy) -> list[dict]:
    """The JSON decision log objects: what follows Envoy's `wasm log ...: ` prefix."""
    out = []
    for line in proxy.log_text().splitlines():
        i = line.find(': {"decision":')
        if i >= 0:
            assert "[info]" in line, line
            out.append(json.loads(line[i + 2:]))
    return out


def test_json_format_has_the_same_fields_and_never_the_token(envoy):
    proxy = envoy(dict(LOGGED, decision_log_format="json"))
    token = make_token(claims={"exp": 1000, "sub": 'al"ice\n{"x":1}'})
    assert proxy.get("/api/items?marker=query-marker-456", token=token).status == 401
    assert proxy.get("/report").status == 200
    wait_for_log(proxy, '"reason":"missing"')
    time.sleep(0.3)
    lines = json_lines(proxy)
    assert lines == [
        {"decision": "deny", "reason": "expired", "status": 401, "provider": "main", "rule": 3,
         "kid": "rsa-a", "iss": "https://issuer.test", "sub": 'al"ice\n{"x":1}', "method": "GET",
         "path": "/api/items", "token_sha256": fp(token)},
        {"decision": "would_deny", "reason": "missing", "status": 401, "provider": "main",
         "rule": 1, "kid": None, "iss": None, "sub": None, "method": "GET", "path": "/report",
         "token_sha256": None},
    ]
    text = proxy.log_text()
    assert token not in text and token.rsplit(".", 1)[1] not in text
    assert "query-marker-456" not in text
    assert not decision_lines(proxy)  # no text lines alongside
