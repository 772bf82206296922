"""Load with faults: a real Envoy (--concurrency 2) with the filter and a remote
JWKS provider, a steady mix of valid, expired, forged, revoked-key and missing tokens,
while the JWKS server (127.0.0.1, controlled here) rotates keys, answers 500, hangs past
the fetch timeout, serves garbage or an empty set, and comes back.

Every request has an expected verdict and is checked:
    valid    signed by the current signing key                     -> 200
    expired  current key, exp an hour ago                           -> 401
    forged   an attacker's key, with the current signing kid        -> 401
    revoked  a valid-looking token (reused from the valid pool) of a
             key removed from the JWKS, once a fetch without it was
             served (and a margin for Envoy to install it)          -> 401
    missing  no token                                               -> 401
Any other answer is a wrong verdict; any 5xx or connection error is counted apart.

Rotation follows what the server has actually served, so expectations never depend on
timing guesses: a new key is added to the JWKS first; it becomes the signing key only
after a successful fetch that included it (plus MARGIN); the old key stays published for
HOLD seconds more, then is removed; it counts as revoked only after a successful fetch
without it (plus MARGIN). During fault phases no fetch succeeds, so no switch happens and
the filter must keep serving from its last good keys.

Also reported: requests sent per class, expected vs actual counts, requests/s, Envoy's RSS
(VmRSS from /proc/<pid>/status) after warm-up and at the end, wasm VM counters (no VM
created or reloaded during the run) and VM-failure log lines.

    python -m tests.load.load_faults --duration 300   (from the repository root; ./build.sh load 300)
Only 127.0.0.1 is used; the run stops by itself after --duration seconds.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import pathlib
import random
import re
import sys
import threading
import time
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.integration import harness
from tests.support import echo_server
from tests.support.envoy import rss_kib
from tests.support.jwks_server import JwksServer
from tests.support.tokens import mint, public_jwk

ISSUER = "https://issuer.test"
AUDIENCE = "api"
CACHE_DURATION_S = 2
FETCH_TIMEOUT_S = 1
MARGIN_S = 1.0  # after a served fetch, time for Envoy to install the keys in both workers
HOLD_S = 1.5  # an old signing key stays published this long after the switch
TOKENS_PER_KEY = 40
FAULT_MODES = ["500", "hang", "garbage", "empty"]
VM_FAILURE = re.compile(r"panicked|RuntimeError|Wasm VM failed|wasm trap|Function: proxy_on_\w+ failed",
                        re.I)


class Key:
    """A signing key (RSA-2048 or EC P-256) with its JWK and a pool of valid tokens."""

    def __init__(self, kid: str, kind: str):
        self.kid = kid
        self.kind = kind
        if kind == "RSA":
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
        else:
            self.priv = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
        self.jwk = public_jwk(self.priv, kid, self.alg)
        self.valid = [self.mint(jti=f"{kid}-{i}") for i in range(TOKENS_PER_KEY)]
        self.expired = [self.mint(jti=f"{kid}-x{i}", exp_delta=-3600) for i in range(4)]

    def mint(self, jti: str, exp_delta: int = 24 * 3600, signer: Any = None) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "load", "jti": jti, "iat": now - 10,
                  "exp": now + exp_delta}
        return mint(claims, signer or self.priv, self.alg, self.kid)


@functools.lru_cache(maxsize=256)
def kids_of(jwks: str) -> frozenset[str]:
    return frozenset(k.get("kid", "") for k in json.loads(jwks).get("keys", []))


def first_ok_with(server: JwksServer, kid: str, present: bool, after: float) -> float | None:
    """Time of the first successful answer after `after` that did (or did not) include kid."""
    for t, _, served in list(server.answers):
        if t > after and served is not None and ((kid in kids_of(served)) == present):
            return t
    return None


class Controller:
    """Drives the fault phases and the key rotation; tells clients what to send."""

    def __init__(self, server: JwksServer, phase_s: float, rng: random.Random):
        self.server = server
        self.phase_s = phase_s
        self.rng = rng
        self.lock = threading.Lock()
        self.n_keys = 0
        self.signing = self.new_key()
        self.next: tuple[Key, float] | None = None  # (key, time published)
        self.retiring: list[tuple[Key, float]] = []  # (key, time it stopped signing)
        self.removed: list[tuple[Key, float]] = []  # (key, time unpublished)
        self.revoked: list[Key] = []
        self.attacker = ec.generate_private_key(ec.SECP256R1())
        self.attacker_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.phases: list[tuple[float, str]] = []
        self.rotations = 0
        self.publish()

    def new_key(self) -> Key:
        self.n_keys += 1
        return Key(f"load-{self.n_keys}", "RSA" if self.n_keys % 3 == 1 else "EC")

    def set_mode(self, mode: str) -> None:
        self.server.mode = mode
        self.phases.append((time.monotonic(), mode))

    def publish(self) -> None:
        keys = [self.signing] + [k for k, _ in self.retiring]
        if self.next:
            keys.append(self.next[0])
        self.server.jwks = json.dumps({"keys": [k.jwk for k in keys]})

    def tick(self) -> None:
        now = time.monotonic()
        changed = False
        with self.lock:
            if self.next:
                key, published = self.next
                seen = first_ok_with(self.server, key.kid, True, published)
                if seen is not None and now > seen + MARGIN_S:
                    self.retiring.append((self.signing, now))
                    self.signing, self.next = key, None
                    self.rotations += 1
                    changed = True
            for key, since in list(self.retiring):
                if now > since + HOLD_S:
                    self.retiring.remove((key, since))
                    self.removed.append((key, now))
                    changed = True
            for key, since in list(self.removed):
                gone = first_ok_with(self.server, key.kid, False, since)
                if gone is not None and now > gone + MARGIN_S:
                    self.removed.remove((key, since))
                    self.revoked.append(key)
        if changed:
            self.publish()

    def start_rotation(self) -> None:
        if self.next is None:
            key = self.new_key()  # generated outside the lock (RSA takes a moment)
            with self.lock:
                self.next = (key, time.monotonic())
            self.publish()

    def run(self, stop: threading.Event, deadline: float) -> None:
        cycle = ["ok"] + [m for f in FAULT_MODES for m in (f, "ok")]
        i = 0
        while not stop.is_set() and time.monotonic() < deadline:
            mode = cycle[i % len(cycle)]
            self.set_mode(mode)
            if mode == "ok":
                self.start_rotation()
            end = min(deadline, time.monotonic() + self.phase_s)
            while time.monotonic() < end and not stop.is_set():
                self.tick()
                time.sleep(0.05)
            i += 1
        self.set_mode("ok")

    def pick(self, rng: random.Random) -> tuple[str, str | None, str | None, int]:
        """(class, token, kid, expected status) for the next request."""
        r = rng.random()
        with self.lock:
            signing = self.signing
            revoked = list(self.revoked)
        if r < 0.50:
            return "valid", rng.choice(signing.valid), signing.kid, 200
        if r < 0.62:
            return "expired", rng.choice(signing.expired), signing.kid, 401
        if r < 0.77:
            forger = self.attacker_rsa if signing.kind == "RSA" else self.attacker
            return "forged", signing.mint(f"forged-{rng.random()}", signer=forger), signing.kid, 401
        if r < 0.90 and revoked:
            key = rng.choice(revoked)
            return "revoked", rng.choice(key.valid), key.kid, 401
        return "missing", None, None, 401


def vm_counters(proxy: harness.Envoy) -> dict[str, int]:
    stats = proxy.stats("wasm")
    return {k: v for k, v in stats.items()
            if k in ("wasm.envoy.wasm.runtime.v8.created", "wasm.wasm_vm_count") or ".vm_reload" in k}


def filter_counters(proxy: harness.Envoy) -> dict[str, int]:
    """Decisions by result, JWKS fetches by result, cache lookups by result (summed over
    the other labels), from the raw stat names (`key=.=value;.;` label segments)."""
    stats = proxy.stats("wasmcustom")
    out: dict[str, int] = {}
    for name, value in stats.items():
        labels = dict(re.findall(r"(\w+)=\.=([^;]*);\.;", name))
        metric = name.rsplit(";.;", 1)[-1].rsplit(".", 1)[-1]
        if metric == "decisions_total":
            key = labels.get("decision", "?")
        elif metric in ("jwks_fetches_total", "jwt_cache_lookups_total"):
            key = f"{metric.removesuffix('_total')}_{labels.get('result', '?')}"
        else:
            continue
        out[key] = out.get(key, 0) + (value or 0)
    return out


def config() -> dict:
    return {
        "providers": {"idp": {
            "issuer": ISSUER, "audiences": [AUDIENCE],
            "remote_jwks": {"http_uri": {"uri": "http://jwks.local/jwks", "cluster": "jwks",
                                         "timeout": f"{FETCH_TIMEOUT_S}s"},
                            "cache_duration": f"{CACHE_DURATION_S}s"},
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }


def run(duration: float = 25.0, clients: int = 3, phase_s: float | None = None, seed: int = 7,
        requests_log: pathlib.Path | None = None, max_rss_growth_mib: int = 128,
        quiet: bool = False) -> dict:
    """Runs the load; returns the report dict (report["ok"] says whether it passed)."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    rng = random.Random(seed)
    phase_s = phase_s or max(2.5, min(10.0, duration / 9))
    echo = echo_server.make_server(0)
    threading.Thread(target=echo.serve_forever, daemon=True, name="echo").start()
    jwks = JwksServer('{"keys": []}')
    jwks.hang_seconds = FETCH_TIMEOUT_S + 1.5
    jwks.garbage_body = '{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}'
    ctl = Controller(jwks, phase_s, rng)
    proxy = harness.Envoy(echo.server_address[1], config(), concurrency=2, log_level="warning",
                          component_log_level=None,
                          extra_clusters=[harness.static_cluster("jwks", jwks.port)])
    report: dict[str, Any] = {"duration_s": duration, "clients": clients, "phase_s": phase_s}
    try:
        proxy.start()
        # Warm-up: the first fetch, then both workers' VMs.
        deadline = time.monotonic() + 15
        warm = ctl.signing.valid[0]
        while time.monotonic() < deadline:
            if proxy.get("/warm", token=warm).status == 200:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the first JWKS fetch never made a valid token pass\n{proxy.log_tail()}")
        for _ in range(50):
            proxy.get("/warm", token=rng.choice(ctl.signing.valid))
        vm_before = vm_counters(proxy)
        rss_before = rss_kib(proxy.proc.pid)
        say(f"warm: Envoy pid {proxy.proc.pid} RSS {rss_before} KiB; running {duration:.0f}s "
            f"with {clients} clients, phases of {phase_s:.1f}s")

        stop = threading.Event()
        end = time.monotonic() + duration
        results: list[list] = [[] for _ in range(clients)]

        def client(idx: int) -> None:
            crng = random.Random(seed * 1000 + idx)
            session = requests.Session()
            out = results[idx]
            while not stop.is_set() and time.monotonic() < end:
                cls, token, kid, expected = ctl.pick(crng)
                headers = {"authorization": f"Bearer {token}"} if token else {}
                t0 = time.monotonic()
                try:
                    status: int | str = session.get(f"{proxy.url}/load/{cls}", headers=headers, timeout=10).status_code
                except requests.RequestException as err:
                    status = f"error:{type(err).__name__}"
                    session = requests.Session()
                out.append((round(t0, 3), cls, kid, expected, status, round(time.monotonic() - t0, 4)))

        threads = [threading.Thread(target=client, args=(i,), name=f"client-{i}") for i in range(clients)]
        for t in threads:
            t.start()
        ctl.run(stop, end)
        stop.set()
        for t in threads:
            t.join(timeout=30)

        # Stats after the run.
        rss_after = rss_kib(proxy.proc.pid)
        vm_after = vm_counters(proxy)
        all_results = [r for rs in results for r in rs]
        all_results.sort(key=lambda r: r[0])
        table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        wrong, server_errors, conn_errors = [], 0, 0
        for t0, cls, kid, expected, status, _ in all_results:
            table[cls][str(status)] += 1
            if isinstance(status, str):
                conn_errors += 1
            elif status >= 500:
                server_errors += 1
            if status != expected:
                wrong.append({"t": round(t0 - all_results[0][0], 3), "class": cls, "kid": kid,
                              "expected": expected, "actual": status})
        latencies = sorted(r[5] for r in all_results) or [0.0]
        served = collections.Counter(mode for _, mode, _ in jwks.answers)
        log_failures = [line for line in proxy.log_text().splitlines() if VM_FAILURE.search(line)]
        rss_growth = (rss_after - rss_before) // 1024
        report.update({
            "requests": len(all_results),
            "requests_per_s": round(len(all_results) / duration, 1),
            "by_class": {cls: {"expected": all_results and next(r[3] for r in all_results if r[1] == cls),
                               "actual": dict(c)} for cls, c in sorted(table.items())},
            "wrong_verdicts": len(wrong),
            "wrong_examples": wrong[:20],
            "http_5xx": server_errors,
            "connection_errors": conn_errors,
            "latency_ms": {"p50": round(1000 * latencies[len(latencies) // 2], 2),
                           "p99": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
                           "max": round(1000 * latencies[-1], 2)},
            "envoy_rss_kib": {"before": rss_before, "after": rss_after, "growth_mib": rss_growth,
                              "bound_mib": max_rss_growth_mib},
            "wasm_vm_counters": {"before": vm_before, "after": vm_after},
            "vm_failure_log_lines": log_failures[:5],
            "filter_counters": filter_counters(proxy),
            "jwks_answers_by_mode": dict(served),
            "key_rotations": ctl.rotations,
            "keys_revoked": len(ctl.revoked),
            "phases": [m for _, m in ctl.phases],
        })
        failures = []
        if wrong:
            failures.append(f"{len(wrong)} wrong verdicts")
        if server_errors:
            failures.append(f"{server_errors} 5xx answers")
        if conn_errors:
            failures.append(f"{conn_errors} connection errors")
        if vm_after != vm_before:
            failures.append("wasm VM counters changed (VM re-created or reloaded)")
        if log_failures:
            failures.append("VM failure lines in the Envoy log")
        if rss_growth > max_rss_growth_mib:
            failures.append(f"Envoy RSS grew {rss_growth} MiB (bound {max_rss_growth_mib} MiB)")
        if not proxy.running:
            failures.append("Envoy is not running")
        report["failures"] = failures
        report["ok"] = not failures
        if requests_log:
            with open(requests_log, "w") as f:
                f.write("t_s\tclass\tkid\texpected\tactual\tlatency_s\n")
                t_start = all_results[0][0] if all_results else 0
                for t0, cls, kid, expected, status, lat in all_results:
                    f.write(f"{t0 - t_start:.3f}\t{cls}\t{kid or '-'}\t{expected}\t{status}\t{lat}\n")
        return report
    finally:
        proxy.stop()
        jwks.close()
        echo.shutdown()
        echo.server_close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    ap.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--phase", type=float, default=None, help="seconds per fault phase")
    ap.add_argument("--max-rss-growth-mib", type=int, default=128)
    ap.add_argument("--report", type=pathlib.Path, help="write the JSON report here")
    ap.add_argument("--requests-log", type=pathlib.Path,
                    help="write every request (class, kid, expected, actual) as TSV here")
    args = ap.parse_args()
    if args.duration > 3600:
        ap.error("--duration is capped at 3600 s")
    report = run(args.duration, args.clients, args.phase, requests_log=args.requests_log,
                 max_rss_growth_mib=args.max_rss_growth_mib)
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    print("PASS" if report["ok"] else f"FAIL: {'; '.join(report['failures'])}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
