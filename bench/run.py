"""Throughput and latency of this filter against Envoy's native jwt_authn.

Run through `./build.sh bench` (builds the module, installs wrk if missing). One run starts
four Envoys, each with --concurrency 2, routing to the same upstream on 127.0.0.1 (one
more Envoy, 1 worker, answering 200 by direct_response: fast and identical for all;
BENCH_UPSTREAM=direct makes the Envoys under test answer themselves instead), and the
same provider (issuer, audience, local JWKS with the TEST-ONLY keys rsa-a, ec-256, ed-1
from tests/fixtures/keys):

    A  no auth filter
    B  native jwt_authn, no token cache
    C  native jwt_authn with jwt_cache_config (jwt_cache_size BENCH_NATIVE_CACHE, default 100)
    D  this filter (dist/jwt_filter.wasm, default config: host crypto on, cache 100/provider)
    F  the floor (bench/floor): the least work any proxy-wasm JWT filter must do on this
       host per request, and nothing more: one callback into the VM, read the one
       Authorization header, one-entry token cache (W1), else one verify_signature call
       with a key given in its config (RS256 only: not run on W3), remove the header or
       send a bare 401. No claims, no expiry, no stats. NOT an authenticator: it shows,
       in the same run, whether any wasm filter could reach C (W1) and B (W2, W4).

With D, three more Envoys run this filter with one change each, only on the workloads
where the change shows (BENCH_D_VARIANTS, default Dh,Dw,Ds,Dr; empty for none):

    Dh  D with decision_histogram false (no decision-time histogram), on W1 and W2:
        D minus Dh in CPU per request is what the histogram costs
    Dw  D with DPoP required (dpop.mode required, ES256 proofs, replay_cache worker),
        on W5-DPoP only (a per-worker record is unsound with two workers, as the
        checker warns: here it separates the shared record's cost from the proof's)
    Ds  as Dw with replay_cache shared (the default: one record for all workers in
        shared data, compare-and-swap; every request copies one of its 64 buckets
        in and out)
    Dr  D with a 10,000-entry revocation deny list (docs/revocation.md: 9,000 jti and
        1,000 sub rules, none matching the benchmark's tokens), served by a small HTTP
        server in this process (support/revocation_servers.py) and polled every 30 s;
        on W1 only (a token-cache hit: the deny-list lookup is then most of what
        differs). The rules are installed before the run (the entries gauge is read)

and drives them with wrk (-t2 -cBENCH_CONNECTIONS) on these workloads:

    W1        one RS256 token, reused
    W2        BENCH_TOKENS distinct valid RS256 tokens in rotation (cache-hostile)
    W3-ES256  as W2 with ES256
    W3-EdDSA  as W2 with EdDSA
    W4        as W2 with a bad signature (every request must be denied, except by A)
    W5-DPoP   one DPoP-bound RS256 token (cnf.jkt: the thumbprint of an ES256 proof key),
              reused as in W1 (a token-cache hit), sent as `Authorization: DPoP <token>`
              with a fresh proof per request in the `DPoP` header (htm GET, htu
              http://api.bench.test/api: wrk sends that Host, ath, a unique jti, iat
              at minting). Run on A (the larger request alone), Dw and Ds; compare
              with D on W1 (the same token presented as a bearer token).

W5-DPoP and fairness: a proof passes once (the replay record), so every request needs
its own. BENCH_DPOP_RATE x BENCH_SECONDS proofs (default 30,000/s x 10 s; at most
900,000) are minted before the Envoys start (parallel processes, a few seconds per
100,000) and split between wrk's two threads; Dw and Ds are started afresh at the
start of every round (an empty replay record), so every round and both variants get
the same proofs in the same order, and the record of a round ends holding every
proof of it (replay_cache_size 1,000,000; dpop.max_age one day, longer than any run,
so nothing is forgotten mid-round; replay_cache_per_key as large, since one client key
signs every proof). The shared record's cost grows with what it holds
(a bucket is 32 bytes per proof, 1/64 of them): a round measures the average over a
record growing from empty to about req/s x BENCH_SECONDS proofs. In production the
record holds about req/s x (max_age + clock skew) proofs. A run that needs more proofs
than minted reuses them: those requests are refused as replays, show in the non-2xx
column and are reported (raise BENCH_DPOP_RATE). Every DPoP request must get 200.

Configurations alternate inside each round (A B C D F, A B C D F, ...) for every workload;
BENCH_ROUNDS rounds (default 3) of BENCH_SECONDS seconds (default 10) each. The table
shows medians over rounds, the spread (min..max req/s relative to the median), ratios
D/C, D/B, D/A, F/C, F/B, the module size and Envoy's RSS per worker. It goes to stdout and to
bench/results/latest.md, and the same figures as JSON to bench/results/run.json (read by
bench/summary.py). Environment knobs:

    BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_TOKENS=100000 BENCH_CONNECTIONS=32
    BENCH_WORKLOADS=W1,W2,W3-ES256,W3-EdDSA,W4,W5-DPoP   BENCH_CONFIGS=A,B,C,D,F
    BENCH_NATIVE_CACHE=100   BENCH_WASM=dist/jwt_filter.wasm   BENCH_FILTER_CONFIG='{...}'
    BENCH_UPSTREAM=envoy|direct   BENCH_D_VARIANTS=Dh,Dw,Ds,Dr   BENCH_DPOP_RATE=30000
    BENCH_RESULTS=bench/results
    (extra top-level fields merged into D's plugin config, e.g. '{"host_crypto": false}')

For a precise comparison of two builds (CPU per request, a microsecond resolves), see
bench/pinned.py.

One scenario alone, e.g. the deny list's cost (D and Dr on W1, one short round):

    BENCH_CONFIGS=D BENCH_D_VARIANTS=Dr BENCH_WORKLOADS=W1 BENCH_ROUNDS=1 BENCH_SECONDS=5 \
        BENCH_RESULTS=/tmp/bench .tools/venv/bin/python -m bench.run

Tokens are minted once into bench/.cache/ (100,000 RS256 signatures take a minute or two)
and reused while they have more than a day to live.
"""
from __future__ import annotations

import base64
import concurrent.futures
import datetime
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from tests.support import envoy as support_envoy
from tests.support.revocation_servers import DenyListServer
from tests.support.tokens import DEFAULT_KEYS, mint, private_key
from tests.support.tokens import b64u as _b64u

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

KEYS = ROOT / "tests" / "fixtures" / "keys"
CACHE = HERE / ".cache"
# Where the tables and their JSON go (BENCH_RESULTS: another directory, e.g. for a smoke test).
RESULTS = pathlib.Path(os.environ.get("BENCH_RESULTS", HERE / "results")).resolve()

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N_TOKENS = int(os.environ.get("BENCH_TOKENS", "100000"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
WORKLOADS = os.environ.get("BENCH_WORKLOADS", "W1,W2,W3-ES256,W3-EdDSA,W4,W5-DPoP").split(",")
CONFIGS = os.environ.get("BENCH_CONFIGS", "A,B,C,D,F").split(",")
NATIVE_CACHE = int(os.environ.get("BENCH_NATIVE_CACHE", "100"))
WASM = pathlib.Path(os.environ.get("BENCH_WASM", ROOT / "dist" / "jwt_filter.wasm")).resolve()
FLOOR_WASM = HERE / "floor" / "target" / "wasm32-wasip1" / "release" / "bench_floor.wasm"
FILTER_EXTRA = json.loads(os.environ.get("BENCH_FILTER_CONFIG", "{}"))
# "envoy" (default, the reference setup): every Envoy under test proxies to one
# shared upstream on 127.0.0.1 (a separate Envoy, 1 worker, answering 200 "ok" by
# direct_response, so the upstream is fast and identical for A-D); "direct": the
# Envoys under test answer by direct_response themselves (no upstream hop: the
# harshest view of the filter's own cost).
UPSTREAM = os.environ.get("BENCH_UPSTREAM", "envoy")
ENVOY = os.environ.get("ENVOY", str(ROOT / ".tools" / "venv" / "bin" / "envoy"))
CONCURRENCY = 2
ISSUER, AUDIENCE = "https://issuer.test", "api"

CONFIG_NAMES = {
    "A": "no auth filter",
    "B": "jwt_authn, no cache",
    "C": f"jwt_authn + jwt_cache_config ({NATIVE_CACHE})",
    "D": "this filter (wasm)",
    "F": "floor: least any wasm filter must do",
}
WORKLOAD_ALG = {"W1": "RS256", "W2": "RS256", "W3-ES256": "ES256", "W3-EdDSA": "EdDSA", "W4": "RS256",
                "W5-DPoP": "RS256"}

# ------------------------------------------------ D variants and the DPoP workload
DPOP = "W5-DPoP"
DPOP_HOST = "api.bench.test"
DPOP_HTU = f"http://{DPOP_HOST}/api"
DPOP_REPLAY_ENTRIES = 1_000_000  # the filter's largest replay_cache_size
DPOP_PROOFS = min(int(os.environ.get("BENCH_DPOP_RATE", "30000")) * SECONDS, 900_000)
# Variant of D -> (name, extra top-level plugin fields, extra provider fields, workloads).
D_VARIANTS = {
    "Dh": ("this filter, decision_histogram false", {"decision_histogram": False}, {},
           ("W1", "W2")),
    "Dw": ("this filter, DPoP, replay record per worker", {},
           {"dpop": {"mode": "required", "algorithms": ["ES256"], "max_age": "86400s",
                     "replay_cache": "worker", "replay_cache_size": DPOP_REPLAY_ENTRIES,
                     "replay_cache_per_key": DPOP_REPLAY_ENTRIES}},
           (DPOP,)),
    "Ds": ("this filter, DPoP, replay record shared", {},
           {"dpop": {"mode": "required", "algorithms": ["ES256"], "max_age": "86400s",
                     "replay_cache": "shared", "replay_cache_size": DPOP_REPLAY_ENTRIES,
                     "replay_cache_per_key": DPOP_REPLAY_ENTRIES}},
           (DPOP,)),
}
# Dr's deny list: its size, and the server that serves it (started by main()).
DENY_LIST_ENTRIES = 10_000
DENY_LIST: dict[str, DenyListServer] = {}
D_VARIANTS["Dr"] = (f"this filter, {DENY_LIST_ENTRIES:,}-entry deny list", {}, {"revocation": {
    "deny_list": {"http_uri": {"uri": "http://lists.bench.test/deny.json", "cluster": "deny_list",
                               "timeout": "5s"}, "poll_interval": "30s"}}}, ("W1",))
# Started afresh every round (an empty replay record for the same proofs).
RESTARTED_EACH_ROUND = ("Dw", "Ds")
if "D" in CONFIGS:
    _wanted = [v for v in os.environ.get("BENCH_D_VARIANTS", "Dh,Dw,Ds,Dr").split(",") if v]
    _at = CONFIGS.index("D") + 1
    CONFIGS[_at:_at] = [v for v in _wanted if v in D_VARIANTS and v not in CONFIGS
                        and any(w in WORKLOADS for w in D_VARIANTS[v][3])]
for _v, (_name, *_) in D_VARIANTS.items():
    CONFIG_NAMES[_v] = _name

# wrk script: tokens from args[1] in rotation, each thread starting at its own offset
# (args[2] threads), plus EXTRA_HEADERS more headers (see wrk_script).
LUA = r"""
local tokens = {}
local idx = 0
local counter = 0
local headers = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  local n = tonumber(args[2]) or 1
  idx = math.floor((id or 0) * #tokens / n)
  for i = 1, EXTRA_HEADERS do
    headers["x-bench-" .. i] = "value-of-header-" .. i
  end
end
function request()
  idx = idx % #tokens + 1
  headers["Authorization"] = "Bearer " .. tokens[idx]
  return wrk.format("GET", "/api", headers)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_script(extra_headers: int = 0) -> str:
    """The wrk script, sending `extra_headers` headers x-bench-1.. besides Authorization."""
    return LUA.replace("EXTRA_HEADERS", str(extra_headers))

# W5-DPoP: each wrk thread reads its own file (ARG<thread id>.txt): the token, the
# proof's header (the same for every proof: one key), then one "payload.signature"
# per request. A thread that runs out starts again (replays, refused) and counts it.
LUA_DPOP = r"""
local token, head
local proofs = {}
local idx = 0
local threads = {}
local counter = 0
wraps = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local n = 0
  for line in io.lines(args[1] .. tostring(id) .. ".txt") do
    n = n + 1
    if n == 1 then token = "DPoP " .. line
    elseif n == 2 then head = line .. "."
    elseif #line > 0 then proofs[#proofs + 1] = line end
  end
end
function request()
  idx = idx + 1
  if idx > #proofs then
    idx = 1
    wraps = wraps + 1
  end
  return wrk.format("GET", "/api", {["Host"] = "HOST", ["Authorization"] = token,
                                    ["DPoP"] = head .. proofs[idx]})
end
function done(summary, latency, requests)
  local e = summary.errors
  local w = 0
  for _, t in ipairs(threads) do w = w + (t:get("wraps") or 0) end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d,"proof_wraps":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, w))
end
""".replace('"HOST"', f'"{DPOP_HOST}"')


# --------------------------------------------------------------------------- tokens
def _mint_chunk(args: tuple[str, int, int, int]) -> list[str]:
    alg, start, count, exp = args
    kid, key_file = DEFAULT_KEYS[alg]
    key = private_key(key_file)
    # Issued when minted (exp is 3 days later): filters that check iat accept them.
    return [mint({"iss": ISSUER, "aud": AUDIENCE, "sub": f"user-{i}", "iat": exp - 3 * 86400, "exp": exp},
                 key, alg, kid) for i in range(start, start + count)]


def cached_tokens(name: str, n: int, what: str, mint, arg, chunks: int = 16) -> pathlib.Path:
    """n tokens (one per line) in bench/.cache/NAME.txt, minted in parallel processes as
    `mint((arg, start, count, exp))` (a picklable function), and reused while they have
    more than a day to live."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{name}.txt"
    meta = CACHE / f"{name}.exp"
    now = int(time.time())
    if path.exists() and meta.exists() and int(meta.read_text()) > now + 86400:
        return path
    exp = now + 3 * 86400
    print(f"minting {n} {what} into {path} ...", file=sys.stderr, flush=True)
    chunk = max(1, n // chunks)
    jobs = [(arg, s, min(chunk, n - s), exp) for s in range(0, n, chunk)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        lines = [t for part in pool.map(mint, jobs) for t in part]
    path.write_text("\n".join(lines) + "\n")
    meta.write_text(str(exp))
    return path


def tokens_file(alg: str, n: int) -> pathlib.Path:
    """n distinct valid tokens (one per line), cached while they have > 1 day left."""
    return cached_tokens(f"{alg}-{n}", n, f"{alg} tokens", _mint_chunk, alg)


def bad_signature_file(src: pathlib.Path) -> pathlib.Path:
    """The same tokens with one signature byte flipped (still well-formed)."""
    path = src.with_name(src.stem + "-badsig.txt")
    if path.exists() and path.stat().st_mtime >= src.stat().st_mtime:
        return path
    out = []
    for line in src.read_text().split():
        head, body, sig = line.split(".")
        flipped = ("A" if sig[10] != "A" else "B")
        out.append(f"{head}.{body}.{sig[:10]}{flipped}{sig[11:]}")
    path.write_text("\n".join(out) + "\n")
    return path


def _mint_proofs(args: tuple[str, str, str, str, int, int]) -> list[str]:
    """`count` DPoP proofs (RFC 9449) for GET DPOP_HTU, as "payload.signature" lines
    (the header is the caller's `head`): unique jti, iat now, ath of the token."""
    key_pem, head, ath, run, start, count = args
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    iat = int(time.time())
    out = []
    for i in range(start, start + count):
        claims = {"jti": f"{run}-{i}", "htm": "GET", "htu": DPOP_HTU, "iat": iat, "ath": ath}
        body = _b64u(json.dumps(claims, separators=(",", ":")).encode())
        r, s = utils.decode_dss_signature(
            key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
        out.append(f"{body}.{_b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")
    return out


def dpop_files(work: pathlib.Path, threads: int = 2) -> pathlib.Path:
    """W5-DPoP's per-thread files under `work` (see LUA_DPOP); returns their common
    prefix. A new ES256 proof key per run; its RFC 7638 thumbprint and public JWK come
    from jwcrypto (not from the filter's code), the token is bound to it (cnf.jkt)."""
    import hashlib
    import secrets
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwcrypto import jwk
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = jwk.JWK.from_pem(pem.encode())
    jkt = public.thumbprint()
    pub = {k: v for k, v in json.loads(public.export_public()).items() if k in ("kty", "crv", "x", "y")}
    head = _b64u(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": pub},
                            separators=(",", ":")).encode())
    now = int(time.time())
    token = mint({"iss": ISSUER, "aud": AUDIENCE, "sub": "dpop-client", "iat": now,
                  "exp": now + 3 * 86400, "cnf": {"jkt": jkt}}, private_key("rsa2048.pem"), "RS256", "rsa-a")
    ath = _b64u(hashlib.sha256(token.encode()).digest())
    print(f"minting {DPOP_PROOFS} DPoP proofs ...", file=sys.stderr, flush=True)
    run = secrets.token_hex(4)
    chunk = max(1, DPOP_PROOFS // 32)
    jobs = [(pem, head, ath, run, s, min(chunk, DPOP_PROOFS - s)) for s in range(0, DPOP_PROOFS, chunk)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        proofs = [p for part in pool.map(_mint_proofs, jobs) for p in part]
    prefix = work / "dpop-"
    per = -(-len(proofs) // threads)
    for t in range(threads):
        mine = proofs[t * per:(t + 1) * per]
        pathlib.Path(f"{prefix}{t}.txt").write_text("\n".join([token, head, *mine]) + "\n")
    return prefix


def workload_file(name: str) -> pathlib.Path:
    if name == DPOP:
        raise SystemExit(f"{DPOP} needs single-use proofs made per run: bench/run.py only")
    if name == "W1":
        src = tokens_file("RS256", N_TOKENS)
        path = CACHE / "W1.txt"
        path.write_text(src.read_text().split("\n", 1)[0] + "\n")
        return path
    if name == "W4":
        return bad_signature_file(tokens_file("RS256", N_TOKENS))
    return tokens_file(WORKLOAD_ALG[name], N_TOKENS)


# --------------------------------------------------------------------------- envoy
def jwks() -> str:
    keys = json.loads((KEYS / "jwks.json").read_text())["keys"]
    return json.dumps({"keys": [k for k in keys if k.get("kid") in ("rsa-a", "ec-256", "ed-1")]})


def provider() -> dict:
    return {"issuer": ISSUER, "audiences": [AUDIENCE], "local_jwks": {"inline_string": jwks()}}


def rsa_spki_b64() -> str:
    """The benchmark RSA key (kid rsa-a) as base64 SubjectPublicKeyInfo DER: F's config."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = next(k for k in json.loads(jwks())["keys"] if k["kid"] == "rsa-a")
    num = lambda v: int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")
    pub = rsa.RSAPublicNumbers(num(key["e"]), num(key["n"])).public_key()
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def wasm_filter(path: pathlib.Path, configuration: str, vm_id: str) -> dict:
    return {"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": vm_id, "root_id": vm_id,
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": configuration},
            "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": str(path)}}},
        }}}


def runs_on(config: str, workload: str) -> bool:
    """F knows one RS256 key only; D's variants run where their change shows; W5-DPoP
    only where a DPoP-bound token passes (and on A)."""
    if workload == DPOP:
        return config in ("A", "Dw", "Ds")
    if config in D_VARIANTS:
        return workload in D_VARIANTS[config][3]
    return config != "F" or WORKLOAD_ALG[workload] == "RS256"


def http_filters(config: str) -> list[dict]:
    rules = [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]
    if config == "A":
        return []
    if config in ("B", "C"):
        p = provider()
        if config == "C":
            p["jwt_cache_config"] = {"jwt_cache_size": NATIVE_CACHE}
        return [{"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": p}, "rules": rules}}]
    if config == "F":
        return [wasm_filter(FLOOR_WASM, rsa_spki_b64(), "bench_floor")]
    plugin = {"providers": {"bench": provider()}, "rules": rules}
    plugin.update(FILTER_EXTRA)
    if config in D_VARIANTS:
        _, top, in_provider, _ = D_VARIANTS[config]
        plugin.update(top)
        plugin["providers"]["bench"].update(in_provider)
    return [wasm_filter(WASM, json.dumps(plugin), "jwt_filter")]


class Envoy(support_envoy.Envoy):
    """Listener and admin on port 0; launch, ready, stop, CPU time and RSS are
    support.envoy's."""

    def __init__(self, config: str, workdir: pathlib.Path, base_id: int,
                 upstream_port: int | None = None, concurrency: int | None = None):
        self.config = config
        if upstream_port is None:
            route = {"match": {"prefix": "/"},
                     "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
            clusters = []
        else:
            route = {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}
            clusters = [{"name": "upstream", "type": "STATIC", "connect_timeout": "1s",
                         "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [
                             {"endpoint": {"address": {"socket_address": {
                                 "address": "127.0.0.1", "port_value": upstream_port}}}}]}]}}]
        if config == "Dr":
            clusters.append({"name": "deny_list", "type": "STATIC", "connect_timeout": "1s",
                             "load_assignment": {"cluster_name": "deny_list", "endpoints": [{"lb_endpoints": [
                                 {"endpoint": {"address": {"socket_address": {
                                     "address": "127.0.0.1", "port_value": DENY_LIST["server"].port}}}}]}]}})
        router = {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
        boot = {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {"listeners": [{
                "name": "bench",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                 "http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "bench",
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"], "routes": [route]}]},
                        "http_filters": http_filters(config) + [router],
                    }}]}],
            }], "clusters": clusters},
        }
        super().__init__(boot, workdir, config_name=f"envoy-{config}.json", concurrency=concurrency or CONCURRENCY,
                         log_level="warn", base_id=base_id, binary=ENVOY)

    def start(self) -> "Envoy":
        try:
            super().start(timeout=30)
        except support_envoy.EnvoyStartError as err:
            raise SystemExit(f"Envoy {self.config}: {err}")
        if self.config == "Dr":
            self.wait_deny_list()
        return self

    def wait_deny_list(self, timeout: float = 30) -> None:
        """Until the deny list's rules are installed (the entries gauge)."""
        url = f"{self.admin_url}/stats?filter=revocation_deny_list_entries"
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            with urllib.request.urlopen(url, timeout=2) as resp:
                text = resp.read().decode()
            if text.strip().endswith(f": {DENY_LIST_ENTRIES}"):
                return
            time.sleep(0.2)
        raise SystemExit(f"Envoy Dr: the deny list was not installed within {timeout:.0f} s: {text!r}")


def run_wrk(envoy: Envoy, tokens: pathlib.Path, lua: pathlib.Path, threads: int = 2,
            connections: int = CONNECTIONS, seconds: int = SECONDS,
            prefix: tuple[str, ...] = ()) -> dict:
    """One wrk run against `envoy` (`prefix`, e.g. taskset, runs wrk)."""
    cmd = [*prefix, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
           "-s", str(lua), f"http://127.0.0.1:{envoy.port}/api", "--", str(tokens), str(threads)]
    cpu0 = envoy.cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu = envoy.cpu_seconds() - cpu0
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            r = json.loads(line[6:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
            # CPU the Envoy under test spent per request (all its threads): far
            # steadier than req/s on a machine where wrk and the upstream share
            # the two cores with it.
            r["cpu_us"] = cpu * 1e6 / r["requests"] if r["requests"] else 0.0
            return r
    raise SystemExit(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")


# --------------------------------------------------------------------------- report
def fmt_us(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} us"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    envoy_version = subprocess.run([ENVOY, "--version"], capture_output=True, text=True).stdout.strip()
    envoy_version = envoy_version.split("version:")[-1].strip().split()[0] if envoy_version else "?"
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
            f"Envoy {envoy_version}, --concurrency {CONCURRENCY}, wrk -t2 -c{CONNECTIONS}")


def report(results: dict, rss: dict) -> str:
    lines = [
        f"# Benchmark {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Machine: {machine()}.",
        f"Rounds: {ROUNDS} x {SECONDS}s per configuration and workload, configurations alternating; "
        f"{N_TOKENS} distinct tokens for W2-W4.",
        f"Module: {WASM.name} {WASM.stat().st_size} bytes ({WASM.stat().st_size / 1024:.0f} KiB).",
        f"Filter config extras: {json.dumps(FILTER_EXTRA) if FILTER_EXTRA else 'none (defaults)'}.",
        "Upstream: " + ("one shared Envoy on 127.0.0.1 (1 worker, direct_response 200)" if UPSTREAM == "envoy"
                        else "none (direct_response in the Envoy under test)") + ".",
        "",
        "| workload | config | req/s (median) | spread | p50 | p99 | Envoy CPU/req | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    medians: dict[tuple[str, str], float] = {}
    cpus: dict[tuple[str, str], float] = {}
    for w in WORKLOADS:
        for c in CONFIGS:
            runs = results.get((w, c), [])
            if not runs:
                continue
            rps = [r["rps"] for r in runs]
            med = statistics.median(rps)
            medians[(w, c)] = med
            spread = f"{(min(rps) / med - 1) * 100:+.0f}%..{(max(rps) / med - 1) * 100:+.0f}%" if med else "-"
            p50 = statistics.median(r["p50_us"] for r in runs)
            p99 = statistics.median(r["p99_us"] for r in runs)
            cpu = cpus[(w, c)] = statistics.median(r["cpu_us"] for r in runs)
            total = sum(r["requests"] for r in runs)
            non2xx = sum(r["non2xx"] for r in runs) / total * 100 if total else 0
            lines.append(f"| {w} | {c}: {CONFIG_NAMES[c]} | {med:,.0f} | {spread} | {fmt_us(p50)} | "
                         f"{fmt_us(p99)} | {cpu:.1f} us | {non2xx:.0f}% |")
    lines += ["", "Ratios of req/s medians; the CPU columns are Envoy CPU per request of D over C and B "
              "(below 1.00: D costs less). F (the floor) against C and B answers whether any "
              "proxy-wasm filter could meet the goal on this host.", "",
              "| workload | D/C | D/B | D/A | p99 D vs C | CPU D/C | CPU D/B | F/C | F/B | CPU F/C | CPU F/B |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in (w for w in WORKLOADS if w != DPOP):  # DPoP: variant_report
        def ratio(num: str, den: str, table: dict[tuple[str, str], float] = medians) -> str:
            n, d = table.get((w, num)), table.get((w, den))
            return f"{n / d:.2f}" if n and d else "-"
        p99 = "-"
        if results.get((w, "D")) and results.get((w, "C")):
            pd = statistics.median(r["p99_us"] for r in results[(w, "D")])
            pc = statistics.median(r["p99_us"] for r in results[(w, "C")])
            p99 = f"{fmt_us(pd)} vs {fmt_us(pc)}"
        lines.append(f"| {w} | {ratio('D', 'C')} | {ratio('D', 'B')} | {ratio('D', 'A')} | {p99} | "
                     f"{ratio('D', 'C', cpus)} | {ratio('D', 'B', cpus)} | {ratio('F', 'C')} | "
                     f"{ratio('F', 'B')} | {ratio('F', 'C', cpus)} | {ratio('F', 'B', cpus)} |")
    lines += ["", "Envoy RSS after the run, per worker (RSS / concurrency):", ""]
    for c in CONFIGS:
        if c in rss:
            lines.append(f"- {c} ({CONFIG_NAMES[c]}): {rss[c] / 1024:.1f} MiB total, "
                         f"{rss[c] / 1024 / CONCURRENCY:.1f} MiB per worker")
    return "\n".join(lines) + "\n"


def restart_fresh(envoys: dict, work: pathlib.Path, upstream_port: int | None) -> None:
    """Dw and Ds start every round with an empty replay record (see the docstring)."""
    for c in RESTARTED_EACH_ROUND:
        if c in envoys:
            envoys[c].stop()
            envoys[c] = Envoy(c, work, base_id=envoys[c].base_id, upstream_port=upstream_port).start()


def variant_report(results: dict) -> str:
    """DPoP against bearer, and the decision histogram's cost, from D and its variants."""
    def med(w: str, c: str, field: str) -> float | None:
        runs = results.get((w, c))
        return statistics.median(r[field] for r in runs) if runs else None

    def ratio(n: float | None, d: float | None) -> str:
        return f"{n / d:.2f}" if n and d else "-"

    lines = []
    if any(results.get((DPOP, c)) for c in ("Dw", "Ds")):
        lines += ["", "DPoP against bearer: the same RS256 token, a token-cache hit each time; "
                  "D on W1 as `Bearer`, Dw and Ds on W5-DPoP as `DPoP` with a fresh ES256 proof "
                  f"per request ({DPOP_PROOFS:,} proofs per round, the same every round, on "
                  "Envoys started afresh each round). Ratios against D on W1; A's row is the "
                  "larger request alone (no auth filter, W5-DPoP against W1).", "",
                  "| request | req/s (median) | Envoy CPU/req | req/s vs bearer | CPU vs bearer | CPU - bearer |",
                  "|---|---:|---:|---:|---:|---:|"]
        base_rps, base_cpu = med("W1", "D", "rps"), med("W1", "D", "cpu_us")
        rows = [("bearer (D, W1)", "W1", "D"), ("DPoP, replay record per worker (Dw)", DPOP, "Dw"),
                ("DPoP, replay record shared (Ds)", DPOP, "Ds")]
        for label, w, c in rows:
            rps, cpu = med(w, c, "rps"), med(w, c, "cpu_us")
            if rps is None or cpu is None:
                continue
            extra = f"{cpu - base_cpu:+.1f} us" if base_cpu is not None else "-"
            lines.append(f"| {label} | {rps:,.0f} | {cpu:.1f} us | {ratio(rps, base_rps)} | "
                         f"{ratio(cpu, base_cpu)} | {extra} |")
        a1, a5 = med("W1", "A", "cpu_us"), med(DPOP, "A", "cpu_us")
        if a1 is not None and a5 is not None:
            lines.append(f"| no auth filter (A), W5-DPoP vs W1 | {med(DPOP, 'A', 'rps'):,.0f} | "
                         f"{a5:.1f} us | {ratio(med(DPOP, 'A', 'rps'), med('W1', 'A', 'rps'))} | "
                         f"{ratio(a5, a1)} | {a5 - a1:+.1f} us |")
        wraps = sum(r.get("proof_wraps", 0) for (w, _), runs in results.items() if w == DPOP for r in runs)
        if wraps:
            lines += ["", f"WARNING: wrk ran out of proofs {wraps} times (replays, refused): "
                      "raise BENCH_DPOP_RATE."]
    if results.get(("W1", "D")) and results.get(("W1", "Dr")):
        d, r = med("W1", "D", "cpu_us"), med("W1", "Dr", "cpu_us")
        lines += ["", f"A {DENY_LIST_ENTRIES:,}-entry revocation deny list on a token-cache hit (W1): "
                  "D (no revocation) against Dr, Envoy CPU per request.", "",
                  "| workload | req/s D | req/s Dr | req/s Dr/D | CPU/req D | CPU/req Dr | CPU Dr/D | deny list cost |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|",
                  f"| W1 | {med('W1', 'D', 'rps'):,.0f} | {med('W1', 'Dr', 'rps'):,.0f} | "
                  f"{ratio(med('W1', 'Dr', 'rps'), med('W1', 'D', 'rps'))} | {d:.1f} us | {r:.1f} us | "
                  f"{ratio(r, d)} | {r - d:+.1f} us |"]
    hist = [w for w in WORKLOADS if results.get((w, "D")) and results.get((w, "Dh"))]
    if hist:
        lines += ["", "The decision-time histogram's cost: D (on, the default) minus Dh "
                  "(decision_histogram false), Envoy CPU per request.", "",
                  "| workload | CPU/req D | CPU/req Dh | histogram cost | req/s D/Dh |",
                  "|---|---:|---:|---:|---:|"]
        for w in hist:
            d, h = med(w, "D", "cpu_us"), med(w, "Dh", "cpu_us")
            lines.append(f"| {w} | {d:.1f} us | {h:.1f} us | {d - h:+.1f} us | "
                         f"{ratio(med(w, 'D', 'rps'), med(w, 'Dh', 'rps'))} |")
    return "\n".join(lines) + ("\n" if lines else "")


def deny_list_server() -> DenyListServer:
    """Dr's deny list: 9,000 jti and 1,000 sub rules, valid for a day, matching no
    benchmark token."""
    server = DenyListServer()
    expires = int(time.time()) + 86400
    server.entries = [{"kind": "sub" if i % 10 == 0 else "jti", "value": f"revoked-{i:08x}",
                       "expires": expires} for i in range(DENY_LIST_ENTRIES)]
    return server


def results_json(results: dict, rss: dict) -> dict:
    """The run's figures for bench/summary.py: medians per workload and configuration
    (CPU us per request, req/s, p50/p99 us), Envoy RSS after the run, the module size."""
    cells = {}
    for (w, c), runs in results.items():
        if runs:
            cells.setdefault(w, {})[c] = {
                "cpu_us": statistics.median(r["cpu_us"] for r in runs),
                "rps": statistics.median(r["rps"] for r in runs),
                "p50_us": statistics.median(r["p50_us"] for r in runs),
                "p99_us": statistics.median(r["p99_us"] for r in runs),
                "rounds": len(runs),
            }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "run_id": os.environ.get("BENCH_RUN_ID"),  # one per ./build.sh bench
        "machine": machine(),
        "seconds": SECONDS, "rounds": ROUNDS, "tokens": N_TOKENS, "upstream": UPSTREAM,
        "filter_extra": FILTER_EXTRA,
        "module_bytes": WASM.stat().st_size if WASM.exists() else None,
        "concurrency": CONCURRENCY,
        "workloads": cells,
        "rss_kib": rss,
    }


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (apt-get install wrk)")
    if "D" in CONFIGS and not WASM.exists():
        raise SystemExit(f"{WASM} missing: run ./build.sh build")
    if "F" in CONFIGS and not FLOOR_WASM.exists():
        raise SystemExit(f"{FLOOR_WASM} missing: run ./build.sh bench (it builds bench/floor)")
    files = {w: workload_file(w) for w in WORKLOADS if w != DPOP}
    work = pathlib.Path(tempfile.mkdtemp(prefix="jwt-bench-"))
    lua = work / "tokens.lua"
    lua.write_text(wrk_script())
    luas = {}
    if DPOP in WORKLOADS:
        files[DPOP] = dpop_files(work)
        luas[DPOP] = work / "dpop.lua"
        luas[DPOP].write_text(LUA_DPOP)
    envoys = {}
    upstream = None
    if "Dr" in CONFIGS:
        DENY_LIST["server"] = deny_list_server()
    try:
        upstream_port = None
        if UPSTREAM == "envoy":
            (work / "upstream").mkdir()
            upstream = Envoy("A", work / "upstream", base_id=(os.getpid() % 10000) * 10 + 9,
                             concurrency=1)
            upstream.config = "upstream"
            upstream.start()
            upstream_port = upstream.port
        for i, c in enumerate(CONFIGS):
            envoys[c] = Envoy(c, work, base_id=(os.getpid() % 10000) * 10 + i,
                              upstream_port=upstream_port).start()
        results: dict[tuple[str, str], list[dict]] = {}
        for rnd in range(ROUNDS):
            if rnd and DPOP in WORKLOADS:
                restart_fresh(envoys, work, upstream_port)
            for w in WORKLOADS:
                for c in CONFIGS:
                    if not runs_on(c, w):
                        continue
                    r = run_wrk(envoys[c], files[w], luas.get(w, lua))
                    results.setdefault((w, c), []).append(r)
                    print(f"round {rnd + 1}/{ROUNDS} {w:9} {c}: {r['rps']:9,.0f} req/s  p50 {fmt_us(r['p50_us']):>8}  "
                          f"p99 {fmt_us(r['p99_us']):>8}  cpu {r['cpu_us']:5.1f} us/req  non-2xx {r['non2xx']}", file=sys.stderr, flush=True)
                    if r.get("proof_wraps"):
                        print(f"  ran out of DPoP proofs {r['proof_wraps']} times: raise BENCH_DPOP_RATE",
                              file=sys.stderr, flush=True)
        rss = {c: e.rss_kib() for c, e in envoys.items()}
    finally:
        for e in envoys.values():
            e.stop()
        if upstream:
            upstream.stop()
        if "server" in DENY_LIST:
            DENY_LIST.pop("server").close()
    text = report(results, rss) + variant_report(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    (RESULTS / "run.json").write_text(json.dumps(results_json(results, rss), indent=1) + "\n")
    print(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
