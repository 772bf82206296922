"""A JWKS server on 127.0.0.1 that a test (or the load run) controls: what it serves, how
it fails, and what it has answered."""
from __future__ import annotations

import http.server
import socket
import threading
import time


class JwksServer:
    """mode: "ok" (serve `jwks`), "500", "garbage" (`garbage_body`), "hang" (sleep
    `hang_seconds`, then answer), "empty" (a JWKS with no keys), "huge" (over 256 KiB),
    "weak" (`weak_jwks`), "429" (Too Many Requests with Retry-After: `retry_after`
    seconds), "reset" (headers and half the JWKS, then the connection closes). `max_age`
    adds Cache-Control: max-age. `delay` slows every answer (e.g. to keep the first fetch
    in flight). `jwks` may be replaced at any time (key rotation).

    `requests` lists (time received, path) of every request; `answers` lists (time sent,
    mode, the JWKS text served in mode "ok" or None) of every answer written."""

    def __init__(self, jwks: str):
        self.jwks = jwks
        self.mode = "ok"
        self.max_age: int | None = None
        self.delay = 0.0
        self.hang_seconds = 3.0
        self.retry_after = 5
        #: Served in mode "garbage".
        self.garbage_body = "<html>not a jwks</html>"
        #: Served in mode "weak": a set whose only key is unusable (RSA 1024).
        self.weak_jwks = '{"keys": []}'
        #: When set, GET .../openid-configuration answers this JSON document.
        self.discovery: str | None = None
        self.requests: list[tuple[float, str]] = []
        self.answers: list[tuple[float, str, str | None]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                with server._lock:
                    server.requests.append((time.monotonic(), self.path))
                    mode, body, max_age, delay = server.mode, server.jwks, server.max_age, server.delay
                    retry_after, garbage = server.retry_after, server.garbage_body
                if delay:
                    time.sleep(delay)
                if mode == "hang":
                    time.sleep(server.hang_seconds)
                status, ctype = 200, "application/json"
                served: str | None = body if mode == "ok" else None
                if server.discovery is not None and self.path.endswith("/openid-configuration"):
                    body, served = server.discovery, None
                elif mode == "500":
                    status, body = 500, "internal error"
                elif mode == "429":
                    status, body = 429, "slow down"
                elif mode == "garbage":
                    body = garbage
                elif mode == "empty":
                    body = '{"keys": []}'
                elif mode == "huge":
                    # A valid JWKS padded past the filter's 256 KiB bound.
                    body = body.rstrip()[:-1] + ', "padding": "' + "x" * 300_000 + '"}'
                elif mode == "weak":
                    body = server.weak_jwks
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(data)))
                    if mode == "429":
                        self.send_header("retry-after", str(retry_after))
                    if max_age is not None:
                        self.send_header("cache-control", f"public, max-age={max_age}")
                    self.end_headers()
                    if mode == "reset":
                        # Half the body, then the connection closes: Envoy resets the
                        # stream after its headers (the failed-call callback, no answer).
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass
                with server._lock:
                    server.answers.append((time.monotonic(), mode, served))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
