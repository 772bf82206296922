"""A deny-list server and a small Shared Signals (SSF) transmitter with poll delivery
(RFC 8936) on 127.0.0.1, which a test controls.

DenyListServer serves the deny-list document (docs/revocation.md) at any GET path with an
ETag, answering 304 to a matching If-None-Match. mode: "ok", "500", "garbage".

SsfTransmitter signs Security Event Tokens (RFC 8417) with a real key (ES256, kid
ec-256 of tests/fixtures/keys), serves its JWKS at GET /jwks and answers POST /poll:
SETs not yet acknowledged (at most the request's maxEvents, with moreAvailable), and
forgets the SETs a poll acknowledges (`ack`) or reports (`setErrs`). mode: "ok", "500"."""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
import uuid
from typing import Any

import jwt

from tests.support.tokens import jwks_subset, private_key

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"


class _Server:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.mode = "ok"
        self.requests: list[tuple[float, str, str]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None):
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                with owner._lock:
                    owner.requests.append((time.monotonic(), "GET", self.path))
                status, body, headers = owner.get(self.path, dict(self.headers.items()))
                self._answer(status, body, headers)

            def do_POST(self):
                size = int(self.headers.get("content-length") or 0)
                data = self.rfile.read(size) if size else b""
                with owner._lock:
                    owner.requests.append((time.monotonic(), "POST", self.path))
                status, body, headers = owner.post(self.path, dict(self.headers.items()), data)
                self._answer(status, body, headers)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path, headers):
        return 404, b"{}", {}

    def post(self, path, headers, data):
        return 404, b"{}", {}

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, m, _ in self.requests if method in (None, m))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class DenyListServer(_Server):
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.not_modified = 0
        super().__init__()

    def document(self) -> bytes:
        return json.dumps({"version": 1, "entries": self.entries}).encode()

    def revoke(self, kind: str, value: str, ttl: int = 600, **extra: Any) -> None:
        with self._lock:
            self.entries = self.entries + [
                {"kind": kind, "value": value, "expires": int(time.time()) + ttl, **extra}]

    def get(self, path, headers):
        with self._lock:
            mode, body = self.mode, self.document()
        if mode == "500":
            return 500, b"internal error", {}
        if mode == "garbage":
            return 200, b'{"version": 1, "entries": [', {}
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if {k.lower(): v for k, v in headers.items()}.get("if-none-match") == etag:
            with self._lock:
                self.not_modified += 1
            return 304, b"", {"etag": etag}
        return 200, body, {"etag": etag}


class SsfTransmitter(_Server):
    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        #: jti -> SET text, not yet acknowledged.
        self.outstanding: dict[str, str] = {}
        self.acked: list[str] = []
        #: jti -> error object the receiver reported.
        self.errors: dict[str, Any] = {}
        self.polls: list[dict[str, Any]] = []
        super().__init__()

    def sign(self, events: dict[str, Any], jti: str | None = None, *, iss: str | None = None,
             aud: str | None = None, key: str = "ec256.pem", kid: str = "ec-256",
             typ: str = "secevent+jwt") -> str:
        claims = {"iss": iss or self.issuer, "aud": aud or self.audience,
                  "iat": int(time.time()), "jti": jti or uuid.uuid4().hex, "events": events}
        return jwt.encode(claims, private_key(key), algorithm="ES256",
                          headers={"kid": kid, "typ": typ})

    def publish(self, set_text: str) -> str:
        jti = jwt.decode(set_text, options={"verify_signature": False})["jti"]
        with self._lock:
            self.outstanding[jti] = set_text
        return jti

    def session_revoked(self, subject: dict[str, Any], **kw: Any) -> str:
        event = {CAEP + "session-revoked": {"subject": subject,
                                              "event_timestamp": int(time.time())}}
        return self.publish(self.sign(event, **kw))

    def get(self, path, headers):
        if self.mode == "500":
            return 500, b"down", {}
        if path.startswith("/jwks"):
            return 200, jwks_subset("ec-256").encode(), {}
        return 404, b"{}", {}

    def post(self, path, headers, data):
        if self.mode == "500":
            return 500, b"down", {}
        try:
            req = json.loads(data or b"{}")
        except ValueError:
            return 400, b'{"err":"invalid_request"}', {}
        with self._lock:
            self.polls.append(req)
            for jti in req.get("ack", []):
                if self.outstanding.pop(jti, None) is not None:
                    self.acked.append(jti)
            for jti, err in (req.get("setErrs") or {}).items():
                self.outstanding.pop(jti, None)
                self.errors[jti] = err
            limit = int(req.get("maxEvents", 100))
            items = list(self.outstanding.items())
        sets = dict(items[:limit])
        body = {"sets": sets, "moreAvailable": len(items) > limit}
        return 200, json.dumps(body).encode(), {}
