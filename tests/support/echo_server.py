#!/usr/bin/env python3
"""Demo/test upstream: answers every request (any method, any path) with 200 and JSON

    {"method": "...", "path": "/the/path?and=query", "headers": {"lower-name": "value"}, "body": "..."}

Repeated headers are joined with ",". Listens on 127.0.0.1:<port> (argv[1], default 8081):

    python3 -m tests.support.echo_server 8081      (from the repository root)

Standard library only.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echo"

    def _echo(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        body = b""
        length = int(self.headers.get("content-length") or 0)
        if length > 0:
            body = self.rfile.read(length)
        out = json.dumps({"method": self.command, "path": self.path, "headers": headers,
                          "body": body.decode("utf-8", "replace")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def __getattr__(self, name: str):
        # Any method: BaseHTTPRequestHandler dispatches to do_<METHOD>.
        if name.startswith("do_"):
            return self._echo
        raise AttributeError(name)

    def log_message(self, fmt: str, *args) -> None:  # keep the demo terminal quiet
        if "-v" in sys.argv:
            super().log_message(fmt, *args)


def make_server(port: int) -> ThreadingHTTPServer:
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    return ThreadingHTTPServer(("127.0.0.1", port), EchoHandler)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    port = int(args[0]) if args else 8081
    server = make_server(port)
    print(f"echo server listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
