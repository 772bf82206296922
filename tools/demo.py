"""The local demo (`./build.sh run`; `.tools/venv/bin/python -m tools.demo` from the repository
root): the echo backend (tests/support/echo_server.py) on 127.0.0.1:8081 and Envoy with
envoy/envoy.yaml (the filter, dist/jwt_filter.wasm) on 127.0.0.1:10000, admin :9901; prints
curl commands with a fresh valid and an expired DEMO token, runs until Ctrl-C or until
Envoy exits, then stops both. Envoy's log goes to .tools/envoy-demo.log.

Envoy is launched and awaited by tests/support/envoy.py, tokens come from
tests/support/tokens.py (demo_token), as in the tests."""
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

from tests.support import ROOT
from tests.support.envoy import Envoy, EnvoyStartError
from tools.demo_token import mint

LOG = ROOT / ".tools" / "envoy-demo.log"


def interrupted(*_) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C or a TERM stop the demo (also when started with SIGINT ignored, e.g. in the
    # background of a script).
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    valid, expired = mint(), mint(expired=True)
    echo = subprocess.Popen([sys.executable, "-m", "tests.support.echo_server", "8081"], cwd=ROOT)
    work = tempfile.TemporaryDirectory(prefix="jwt-filter-demo-")
    LOG.parent.mkdir(exist_ok=True)
    proxy = Envoy(ROOT / "envoy" / "envoy.yaml", pathlib.Path(work.name), concurrency=2,
                  log_level="info", log_path=LOG)
    try:
        try:
            proxy.start(timeout=60)
        except EnvoyStartError as err:
            print(f"Envoy did not start:\n{err}", file=sys.stderr)
            return 1
        print(f"""
Envoy with the JWT filter: http://127.0.0.1:10000  (admin http://127.0.0.1:9901, log .tools/envoy-demo.log)
Echo backend:              http://127.0.0.1:8081

# No token -> 401 "Jwt is missing"
curl -i http://127.0.0.1:10000/hello

# Public route -> 200 without a token
curl -i http://127.0.0.1:10000/public/hello

# Valid demo token -> 200; the echoed headers show x-jwt-sub, x-jwt-scope and x-jwt-payload
curl -i -H "Authorization: Bearer {valid}" http://127.0.0.1:10000/hello

# Expired token -> 401 "Jwt is expired"
curl -i -H "Authorization: Bearer {expired}" http://127.0.0.1:10000/hello

# More tokens: .tools/venv/bin/python -m tools.demo_token --sub alice --scope "read write"
Press Ctrl-C to stop.""", flush=True)
        while proxy.running and echo.poll() is None:
            time.sleep(0.5)
        time.sleep(0.5)  # a Ctrl-C reaches Envoy and this process together: let it arrive
        print("Envoy exited" if not proxy.running else "the echo backend exited", file=sys.stderr)
        print(proxy.log_tail(30), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        proxy.stop()
        echo.terminate()
        echo.wait(timeout=10)
        work.cleanup()


if __name__ == "__main__":
    sys.exit(main())
