"""CPU per request as the work grows: this filter (D) beside native jwt_authn (N, with
jwt_cache_config 100, as in bench/memory.py) with the same configuration.

Part of `bench/memory.py growth` (which adds RSS for the configuration rows and writes
the table); runnable alone, without RSS:

    python -m bench.growth

Method (bench/pinned.py's): every Envoy under test runs one worker, pinned to CPU 1;
wrk (1 thread, 16 connections) and one upstream Envoy (1 worker, direct_response 200)
run on CPU 0. CPU per request is the Envoy under test's CPU time over a wrk run divided
by the requests it served. For each configuration, N and D start side by side and
alternate within every round; the figure is the median over the rounds. On the header
rows the floor module F (bench/floor: reads and removes Authorization, verifies RS256
through the host) runs beside them too: what any proxy-wasm filter pays per header.

    dimension  points                 configuration                    requests
    rules      1 / 100 / 1,000        rules-1 prefix rules for other   one token reused
                                      paths, then the catch-all the    (cache hits)
                                      request matches (the worst case
                                      for a first-match scan)
    providers  1 / 10 / 50            providers-1 more, other issuers  one token reused
    keys       1 / 10 / 100           the provider's JWKS, the token's  distinct tokens
                                      key last in it                   (cache misses)
    tokens     0.5 / 4 / 8 KB         default                          distinct tokens
                                                                       padded with a claim
                                                                       (cache misses)
    headers    10 / 100               default                          one token reused,
                                                                       10 / 100 headers
                                                                       as sent by wrk

"Distinct tokens" are GROWTH_TOKENS (default 1,000) valid RS256 tokens in rotation, more
than either token cache holds (100), so every request decodes, parses and verifies a
token: the work that grows with the token's size and with the key set (with 100 or fewer,
they turn into cache hits, and the method line says so). The 0.5 KB point is the
unpadded token (about 520 characters); the others carry a "pad" claim to reach 4,096 and
8,192 characters. "Headers" counts what wrk sends (Host, Authorization and x-bench-N
headers); Envoy adds its own few before any filter runs. Tokens are minted once into
bench/.cache/ and reused while they have more than a day to live.

Knobs: GROWTH_SECONDS=3 GROWTH_ROUNDS=3 GROWTH_TOKENS=1000
       GROWTH_DIMS=rules,providers,keys,tokens,headers (a subset for a quick look)
"""
from __future__ import annotations

import base64
import copy
import json
import os
import pathlib
import statistics
import sys
import tempfile

from bench import memory
from bench import pinned
from bench import run as bench
from tests.support import envoy as support_envoy
from tests.support.tokens import mint, private_key

SECONDS = int(os.environ.get("GROWTH_SECONDS", "3"))
ROUNDS = int(os.environ.get("GROWTH_ROUNDS", "3"))
N_TOKENS = int(os.environ.get("GROWTH_TOKENS", "1000"))
DIMS = [d for d in os.environ.get("GROWTH_DIMS", "rules,providers,keys,tokens,headers").split(",") if d]
THREADS, CONNECTIONS = 1, 16
# Workloads the floor module (bench/floor) serves as D does (one RS256 token of its key,
# allowed), so F is measured beside N and D on them.
FLOOR_WORKLOADS = ("hdr10", "hdr100")

METHOD = (f"bench/growth.py, as bench/pinned.py: the Envoy under test with one worker pinned "
          f"to CPU 1, wrk -t{THREADS} -c{CONNECTIONS} and the upstream on CPU 0; medians of "
          f"{ROUNDS} rounds of {SECONDS} s, N and D (and the floor F on the header rows) alternating; "
          f"distinct tokens: {N_TOKENS} "
          f"in rotation (" + ("every request a cache miss" if N_TOKENS > 100 else
                              "no more than the caches hold, so after the first pass cache hits") + ")")

# --------------------------------------------------------------------------- tokens
def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _mint_padded(args: tuple[int, int, int, int]) -> list[str]:
    """count RS256 tokens (kid rsa-a) from number start, each about `size` characters."""
    size, start, count, exp = args
    key = private_key("rsa2048.pem")
    # the header support.tokens.mint writes (PyJWT: compact, keys sorted)
    head = b64u(json.dumps({"alg": "RS256", "kid": "rsa-a", "typ": "JWT"},
                           separators=(",", ":")).encode())
    out = []
    for i in range(start, start + count):
        claims: dict = {"iss": bench.ISSUER, "aud": bench.AUDIENCE, "sub": f"user-{i}",
                        "iat": exp - 172800, "exp": exp}
        # header + "." + payload + "." + 342 characters of RS256 signature
        body = b64u(json.dumps(claims, separators=(",", ":")).encode())
        short = size - (len(head) + len(body) + 2 + 342)
        if short > 0:
            # each 3 bytes of claim text add 4 characters; `,"pad":""` is 9 bytes
            claims["pad"] = "p" * max(0, short * 3 // 4 - 9)
        out.append(mint(claims, key, "RS256", "rsa-a"))
    return out


def sized_tokens(size: int, n: int) -> pathlib.Path:
    """n distinct valid RS256 tokens of about `size` characters (512: unpadded)."""
    return bench.cached_tokens(f"growth-RS256-{size}-{n}", n,
                               f"RS256 tokens of about {size} characters", _mint_padded, size, chunks=8)


def one_token(src: pathlib.Path) -> pathlib.Path:
    path = src.with_name(src.stem + "-one.txt")
    path.write_text(src.read_text().split("\n", 1)[0] + "\n")
    return path


# --------------------------------------------------------------------------- points
def key_last(cfg: dict) -> dict:
    """The configuration with the token's key (rsa-a) moved to the end of the JWKS."""
    cfg = copy.deepcopy(cfg)
    jw = cfg["providers"]["bench"]["local_jwks"]
    keys = json.loads(jw["inline_string"])["keys"]
    keys = [k for k in keys if k.get("kid") != "rsa-a"] + [k for k in keys if k.get("kid") == "rsa-a"]
    jw["inline_string"] = json.dumps({"keys": keys})
    return cfg


# (dimension, value, label, configuration key, workload key)
POINTS = [
    ("rules", 1, "1 rule", "default", "one"),
    ("rules", 100, "100 rules", "rules100", "one"),
    ("rules", 1000, "1,000 rules", "rules1000", "one"),
    ("providers", 1, "1 provider", "default", "one"),
    ("providers", 10, "10 providers", "providers10", "one"),
    ("providers", 50, "50 providers", "providers50", "one"),
    ("keys", 1, "JWKS of 1 key", "keys1", "distinct"),
    ("keys", 10, "JWKS of 10 keys", "keys10", "distinct"),
    ("keys", 100, "JWKS of 100 keys", "keys100", "distinct"),
    ("tokens", 0.5, "0.5 KB tokens", "default", "distinct"),
    ("tokens", 4, "4 KB tokens", "default", "size4k"),
    ("tokens", 8, "8 KB tokens", "default", "size8k"),
    ("headers", 10, "10 headers", "default", "hdr10"),
    ("headers", 100, "100 headers", "default", "hdr100"),
]

WORKLOAD_NAMES = {"one": "one token reused", "distinct": "distinct tokens",
                  "size4k": "distinct 4 KB tokens", "size8k": "distinct 8 KB tokens",
                  "hdr10": "one token reused, 10 headers", "hdr100": "one token reused, 100 headers"}


def configuration(key: str) -> dict:
    if key == "default":
        return memory.jwt_config()
    for prefix in ("rules", "providers"):
        if key.startswith(prefix):
            return memory.jwt_config(**{prefix: int(key[len(prefix):])})
    if key.startswith("keys"):
        return key_last(memory.jwt_config(keys=int(key[4:])))
    raise ValueError(key)


def workload(key: str, work: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(tokens file, wrk script) for a workload key."""
    extra = {"hdr10": 10 - 2, "hdr100": 100 - 2}.get(key, 0)
    lua = work / f"growth-{extra}.lua"
    lua.write_text(bench.wrk_script(extra))
    size = {"size4k": 4096, "size8k": 8192}.get(key, 512)
    tokens = sized_tokens(size, N_TOKENS)
    if key in ("one", "hdr10", "hdr100"):
        tokens = one_token(tokens)
    return tokens, lua


class PinnedEnvoy(bench.Envoy):
    """An Envoy with one worker and the given HTTP filters, proxying to the upstream, or
    with none and no upstream port: the upstream itself, answering 200 by direct_response
    (bench/run.py's launcher, with memory.py's listener; listener and admin on port 0)."""

    def __init__(self, name: str, http_filters: list[dict], workdir: pathlib.Path, base_id: int,
                 upstream_port: int | None):
        self.config = name
        lst = memory.listener(0, http_filters)
        hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
        # Envoy's default limit is 100 request headers: room for the 100-header point
        # (and for the headers Envoy adds before the upstream sees them).
        hcm["common_http_protocol_options"] = {"max_headers_count": 200}
        clusters = []
        if upstream_port is not None:
            hcm["route_config"]["virtual_hosts"][0]["routes"] = [
                {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
            clusters = [{
                "name": "upstream", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": upstream_port}}}}]}]}}]
        boot = {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {"listeners": [lst], "clusters": clusters},
        }
        support_envoy.Envoy.__init__(self, boot, workdir, config_name=f"envoy-{name}.json", concurrency=1,
                                     log_level="warn", base_id=base_id, binary=bench.ENVOY)


def measure_cpu(work: pathlib.Path) -> list[dict]:
    """CPU per request for N and D at every point of the chosen dimensions."""
    points = [p for p in POINTS if p[0] in DIMS]
    by_config: dict[str, list[str]] = {}
    for _, _, _, ckey, wkey in points:
        wl = by_config.setdefault(ckey, [])
        if wkey not in wl:
            wl.append(wkey)
    loads = {w: workload(w, work) for ws in by_config.values() for w in ws}
    cpu: dict[tuple[str, str, str], list[float]] = {}
    non2xx: dict[tuple[str, str, str], int] = {}
    (work / "upstream").mkdir(exist_ok=True)
    floor_key = bench.rsa_spki_b64()
    base = (os.getpid() % 5000) * 20
    upstream = PinnedEnvoy("upstream", [], work / "upstream", base + 19, None)
    try:
        upstream.start()
        pinned.pin(upstream.proc.pid, 0)
        for i, (ckey, wkeys) in enumerate(by_config.items()):
            cfg = configuration(ckey)
            d = work / f"growth-{ckey}"
            d.mkdir(exist_ok=True)
            envoys = {}
            try:
                # The floor F where it does the same work as D: the header rows (F
                # verifies its own key only, so it cannot stand in for the others).
                kinds = ("N", "D", "F") if any(w in FLOOR_WORKLOADS for w in wkeys) else ("N", "D")
                for j, kind in enumerate(kinds):
                    e = PinnedEnvoy(kind, memory.filters(kind, cfg, floor_key=floor_key), d,
                                    base + 16 + j, upstream.port)
                    envoys[kind] = e.start()
                    pinned.pin(e.proc.pid, 1)
                for rnd in range(ROUNDS):
                    for wkey in wkeys:
                        tokens, lua = loads[wkey]
                        for kind, e in envoys.items():
                            if kind == "F" and wkey not in FLOOR_WORKLOADS:
                                continue
                            r = bench.run_wrk(e, tokens, lua, threads=THREADS, connections=CONNECTIONS,
                                              seconds=SECONDS, prefix=("taskset", "-c", "0"))
                            cpu.setdefault((ckey, wkey, kind), []).append(r["cpu_us"])
                            non2xx[(ckey, wkey, kind)] = non2xx.get((ckey, wkey, kind), 0) + r["non2xx"]
                            print(f"growth {ckey:12} {wkey:9} {kind} round {rnd + 1}/{ROUNDS}: "
                                  f"{r['cpu_us']:6.1f} us/req  non-2xx {r['non2xx']}",
                                  file=sys.stderr, flush=True)
            finally:
                for e in envoys.values():
                    e.stop()
    finally:
        upstream.stop()
    out = []
    for dim, value, label, ckey, wkey in points:
        p: dict = {"dim": dim, "value": value, "label": label, "config": ckey,
                   "workload": WORKLOAD_NAMES[wkey], "cpu_us": {}, "cpu_rounds": {}, "non2xx": {}}
        for kind in ("N", "D", "F"):
            xs = cpu.get((ckey, wkey, kind))
            if xs:
                p["cpu_us"][kind] = statistics.median(xs)
                p["cpu_rounds"][kind] = xs
                p["non2xx"][kind] = non2xx.get((ckey, wkey, kind), 0)
        out.append(p)
    return out


def main() -> None:
    from bench import summary
    for p in (bench.WASM,) + ((bench.FLOOR_WASM,) if "headers" in DIMS else ()):
        if not p.exists():
            raise SystemExit(f"{p} missing: run ./build.sh build (and ./build.sh bench for the floor)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="jwt-growth-"))
    points = measure_cpu(work)
    print("\n".join([METHOD + ".", "", *summary.growth_table(points)]))


if __name__ == "__main__":
    main()
