"""Envoy memory, module size and cold start: this filter (D) beside the floor (F) and
native jwt_authn (N), with the same provider and keys as bench/run.py.

    ./build.sh bench-memory            (builds dist/jwt_filter.wasm and bench/floor first)
    python -m bench.memory [rss|cold|growth|all] [EXTRA.wasm ...]

rss     Envoy VmRSS (from /proc/<pid>/status) after warm-up traffic, with --concurrency 1
        and 2, for N, F, D with the default config and D/N with a large one (50
        providers, 500 rules, a 100-key JWKS). "per worker" is the RSS added by the
        second worker (c2 - c1); "RSS/2" is the total divided by the workers.
        The smaps columns split the c2 RSS into V8's executable code (anonymous
        mappings with execute permission), the rest of the anonymous memory (malloc
        heap, V8 isolates, wasm linear memories) and file-backed pages (the envoy
        binary). Extra .wasm paths given on
        the command line are measured as D with the default config (to compare builds).
        MEM_RSS_CONFIGS picks the rows (default N,F,D,N-large,D-large; peers always run).
cold    time from exec to the first 200 through the listener, and from a listener
        update (a new plugin/filter config on disk, LDS from a file) to the first 200
        under the new config, for N, F, D and the peers; median of MEM_COLD_RUNS (default 3).
growth  RSS with --concurrency 2 as the configuration grows (rules, providers, JWKS
        keys), D beside N with the same configuration; then CPU per request as the work
        grows (those three, token size and header count), pinned (bench/growth.py, its
        knobs GROWTH_*; GROWTH_CPU=0 leaves CPU out). Both in one table, with each
        dimension's growth from its smallest to its largest point, D's beside N's.

Peers: other proxy-wasm JWT filters, built outside this repository, measured in the
same run (rss and cold) beside N, F and D:
    BENCH_PEERS="name=/path/peer.wasm:/path/config.txt[:query=jwt],..."
The config file is the plugin configuration, with {{RSA_JWKS}} (a JWKS holding the
benchmark RSA key, kid rsa-a), {{RSA_PUBLIC_PEM}}, {{ISSUER}} and {{AUDIENCE}}
replaced; the token goes in "Authorization: Bearer" unless ":query=NAME" puts it in
that query parameter. Each peer must answer 200 to a valid token and 401 or 403 to
no token and to a bad signature, or the run stops. The cold-start push starts with
the config rendered for another RSA key (kid rsa-b), which denies, then pushes the
right one. docs/performance.md says how the two measured peers are built.

Warm-up: MEM_WARM requests (default 400) over 8 connections, valid RS256 tokens
(MEM_WARM_TOKENS distinct, default 200: fills the token cache). Output goes to stdout
and bench/results/memory.md; each section's figures also go to
bench/results/memory-<section>.json (read by bench/summary.py). RSS is not sensitive to
other load on the machine the way CPU is; CPU per request is bench/pinned.py's job (and,
for the growth section, bench/growth.py's, which works the same way).
"""
from __future__ import annotations

import base64
import copy
import datetime
import http.client
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

from bench import run as bench
from tests.support import envoy as support_envoy

WARM = int(os.environ.get("MEM_WARM", "400"))
WARM_TOKENS = int(os.environ.get("MEM_WARM_TOKENS", "200"))
RELEASE = int(os.environ.get("MEM_RELEASE", "0"))
COLD_RUNS = int(os.environ.get("MEM_COLD_RUNS", "3"))
GROWTH_CPU = int(os.environ.get("GROWTH_CPU", "1"))
RSS_CONFIGS = os.environ.get("MEM_RSS_CONFIGS", "N,F,D,N-large,D-large").split(",")

_tokens: list[str] = []


def future_iat(path: pathlib.Path) -> bool:
    """True when the cached tokens claim to be issued in the future (as older runs minted
    them): filters that check iat would deny them."""
    payload = path.read_text().split("\n", 1)[0].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims.get("iat", 0) > time.time()


def tokens() -> list[str]:
    if not _tokens:
        path = bench.CACHE / f"memory-RS256-{WARM_TOKENS}.txt"
        bench.CACHE.mkdir(exist_ok=True)
        if not path.exists() or path.stat().st_mtime < time.time() - 86400 or future_iat(path):
            exp = int(time.time()) + 3 * 86400
            path.write_text("\n".join(bench._mint_chunk(("RS256", 0, WARM_TOKENS, exp))) + "\n")
        _tokens.extend(path.read_text().split())
    return _tokens


# --------------------------------------------------------------------------- configs
def base_jwks() -> list[dict]:
    return json.loads(bench.jwks())["keys"]


def big_jwks(n: int) -> str:
    """n keys: the three benchmark keys, then copies of the RSA key under new kids
    (parsed and held like any other RSA-2048 key)."""
    keys = base_jwks()
    rsa = next(k for k in keys if k["kid"] == "rsa-a")
    out = keys[:n]
    i = 0
    while len(out) < n:
        k = dict(rsa)
        k["kid"] = f"rsa-copy-{i}"
        out.append(k)
        i += 1
    return json.dumps({"keys": out})


def jwt_config(providers: int = 1, rules: int = 1, keys: int = 3) -> dict:
    """The JwtAuthentication config (proto3 JSON) shared by N and D: provider `bench`
    (the one the tokens are for) with a `keys`-key JWKS, providers-1 more with other
    issuers, rules-1 prefix rules for other paths, then the catch-all rule."""
    p0 = bench.provider()
    p0["local_jwks"] = {"inline_string": big_jwks(keys) if keys != 3 else bench.jwks()}
    provs = {"bench": p0}
    for i in range(1, providers):
        p = copy.deepcopy(bench.provider())
        p["issuer"] = f"https://issuer-{i}.test"
        provs[f"p{i}"] = p
    names = list(provs)
    rule_list = [{"match": {"prefix": f"/r{i}/"}, "requires": {"provider_name": names[i % len(names)]}}
                 for i in range(rules - 1)]
    rule_list.append({"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}})
    return {"providers": provs, "rules": rule_list}


LARGE = dict(providers=50, rules=500, keys=100)


def filters(kind: str, cfg: dict, wasm: pathlib.Path | None = None, floor_key: str | None = None) -> list[dict]:
    if kind == "N":
        c = copy.deepcopy(cfg)
        for p in c["providers"].values():
            p["jwt_cache_config"] = {"jwt_cache_size": 100}
        return [{"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            **c}}]
    if kind == "F":
        return [bench.wasm_filter(bench.FLOOR_WASM, floor_key or bench.rsa_spki_b64(), "bench_floor")]
    return [bench.wasm_filter(wasm or bench.WASM, json.dumps(cfg), "jwt_filter")]


class Peer:
    """A proxy-wasm JWT filter from elsewhere (BENCH_PEERS), run as its own VM."""

    def __init__(self, spec: str):
        name, _, rest = spec.partition("=")
        parts = rest.split(":")
        if not name or len(parts) not in (2, 3):
            raise SystemExit(f"BENCH_PEERS entry {spec!r}: want name=WASM:CONFIG[:query=NAME]")
        self.name = name.strip()
        self.wasm = pathlib.Path(parts[0]).resolve()
        self.config = pathlib.Path(parts[1]).resolve()
        self.query = ""
        if len(parts) == 3:
            if not parts[2].startswith("query="):
                raise SystemExit(f"BENCH_PEERS entry {spec!r}: the third part must be query=NAME")
            self.query = parts[2][len("query="):]
        for f in (self.wasm, self.config):
            if not f.exists():
                raise SystemExit(f"BENCH_PEERS: {f} missing")
        self.bytes = self.wasm.stat().st_size

    def render(self, kid: str = "rsa-a") -> str:
        key = next(k for k in json.loads((bench.KEYS / "jwks.json").read_text())["keys"] if k["kid"] == kid)
        values = {"RSA_JWKS": json.dumps({"keys": [key]}), "RSA_PUBLIC_PEM": rsa_pem(key),
                  "ISSUER": bench.ISSUER, "AUDIENCE": bench.AUDIENCE}
        text = self.config.read_text()
        for k, v in values.items():
            text = text.replace("{{%s}}" % k, v)
        return text

    def filters(self, kid: str = "rsa-a") -> list[dict]:
        vm = "peer_" + "".join(c if c.isalnum() else "_" for c in self.name)
        return [bench.wasm_filter(self.wasm, self.render(kid), vm)]


def rsa_pem(jwk: dict) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    num = lambda v: int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")
    pub = rsa.RSAPublicNumbers(num(jwk["e"]), num(jwk["n"])).public_key()
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def peers() -> list[Peer]:
    return [Peer(s) for s in os.environ.get("BENCH_PEERS", "").split(",") if s.strip()]


def peers_line(ps: list[Peer]) -> str:
    if not ps:
        return ("Peers: none given (BENCH_PEERS=name=WASM:CONFIG[:query=NAME],...; see "
                "docs/performance.md).")
    return "Peers: " + "; ".join(f"{p.name} {p.bytes} bytes ({p.wasm})" for p in ps) + "."


ROUTER = {"name": "envoy.filters.http.router", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def listener(port: int, http_filters: list[dict]) -> dict:
    return {
        "name": "mem",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network."
                         "http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "mem",
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{
                    "match": {"prefix": "/"},
                    "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
                "http_filters": http_filters + [ROUTER],
            }}]}],
    }


class Envoy(support_envoy.Envoy):
    """One Envoy; `lds` puts the listener in a watched file (for config pushes). The
    listener's port is chosen before the start (an LDS push replaces the listener at the
    same address, and cold start polls it from exec); admin is on port 0. Launch, stop and
    RSS readers are support.envoy's."""
    n = 0

    def __init__(self, http_filters: list[dict], concurrency: int, work: pathlib.Path, lds: bool = False,
                 query: str = ""):
        Envoy.n += 1
        self.query = query  # token in this query parameter instead of the Authorization header
        workdir = work / f"e{Envoy.n}"
        workdir.mkdir()
        port = support_envoy.free_port()
        boot: dict = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}}
        if RELEASE:
            # tcmalloc returns free pages to the OS (RELEASE bytes every second).
            boot["memory_allocator_manager"] = {"bytes_to_release": str(RELEASE),
                                                "memory_release_interval": "1s"}
        if lds:
            boot["node"] = {"id": "mem", "cluster": "mem"}
            boot["dynamic_resources"] = {"lds_config": {"path_config_source": {
                "path": str(workdir / "lds.json"), "watched_directory": {"path": str(workdir)}}}}
        else:
            boot["static_resources"] = {"listeners": [listener(port, http_filters)]}
        super().__init__(boot, workdir, config_name="envoy.json", concurrency=concurrency,
                         log_level="warn", binary=bench.ENVOY)
        self.port = port
        if lds:
            self.lds = workdir / "lds.json"
            self.push(http_filters)
        self.t_exec = 0.0

    def push(self, http_filters: list[dict]) -> None:
        """Atomically replaces the LDS file (Envoy sees the rename in the watched dir)."""
        doc = {"resources": [{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                              **listener(self.port, http_filters)}]}
        tmp = self.dir / "lds.tmp"
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.lds)

    def start(self) -> "Envoy":
        """Launches Envoy and returns at once (wait_status waits for the listener)."""
        self.t_exec = time.monotonic()
        return self.launch()

    def fail(self, why: str):
        raise SystemExit(f"Envoy: {why}; log:\n" + self.log_text()[-3000:])

    def wait_status(self, want: int | None, token: str, timeout: float = 60) -> float:
        """Polls with a fresh connection per request until the listener answers `want`
        (None: any status but 200); returns the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                self.fail("exited")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                path, headers = self.request(token)
                c.request("GET", path, headers=headers)
                st = c.getresponse().status
                c.close()
                if st == want or (want is None and st != 200):
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.005)
        self.fail(f"no {want} within {timeout}s")
        return 0.0

    def request(self, token: str | None) -> tuple[str, dict[str, str]]:
        """Path and headers of a request carrying `token` (None: no token)."""
        if token is None:
            return "/api", {}
        if self.query:
            return f"/api?{self.query}={token}", {}
        return "/api", {"Authorization": f"Bearer {token}"}

    def status(self, token: str | None) -> int:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            path, headers = self.request(token)
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def check_denies(self) -> dict[str, int]:
        """The statuses for no token and for a bad signature; both must be 401 or 403,
        so a module that loads but lets everything through is not measured."""
        tok = tokens()[0]
        head, _, sig = tok.rpartition(".")
        bad = head + "." + ("A" if sig[:1] != "A" else "B") + sig[1:]
        got = {"none": self.status(None), "bad_signature": self.status(bad)}
        if any(v not in (401, 403) for v in got.values()):
            self.fail(f"expected 401 or 403 without a valid token, got {got}")
        return got

    def warm(self) -> None:
        toks = tokens()
        conns = [http.client.HTTPConnection("127.0.0.1", self.port, timeout=5) for _ in range(8)]
        bad = 0
        for i in range(WARM):
            c = conns[i % len(conns)]
            path, headers = self.request(toks[i % len(toks)])
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            bad += r.status != 200
        for c in conns:
            c.close()
        if bad:
            self.fail(f"{bad} of {WARM} warm-up requests not 200")
        time.sleep(0.5)

    smaps = support_envoy.Envoy.rss_by_kind


def measure(http_filters: list[dict], concurrency: int, work: pathlib.Path,
            query: str = "", checks: dict | None = None) -> tuple[int, dict[str, int]]:
    """RSS after warm-up (every warm-up request must get 200); `checks` receives the
    statuses without a valid token (check_denies)."""
    e = Envoy(http_filters, concurrency, work, query=query).start()
    try:
        e.wait_status(200, tokens()[0])
        e.warm()
        rss, smaps = e.rss_kib(), e.smaps()
        denied = e.check_denies()
        if checks is not None:
            checks.update(denied)
        return rss, smaps
    finally:
        e.stop()


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


# --------------------------------------------------------------------------- sections
def section_rss(work: pathlib.Path, extra: list[pathlib.Path], ps: list[Peer]) -> list[str]:
    default, large = jwt_config(), jwt_config(**LARGE)
    size = bench.WASM.stat().st_size
    floor = bench.FLOOR_WASM.stat().st_size
    # key, name, filters, module bytes, token query parameter
    rows = [("N", "N: jwt_authn (default config)", filters("N", default), None, ""),
            ("F", "F: floor", filters("F", default), floor, ""),
            ("D", "D: this filter (default config)", filters("D", default), size, ""),
            ("N-large", "N: jwt_authn (large config)", filters("N", large), None, ""),
            ("D-large", "D: this filter (large config)", filters("D", large), size, "")]
    rows = [r for r in rows if r[0] in RSS_CONFIGS]
    rows += [(f"D:{p.name}", f"D: {p.name} (default config)", filters("D", default, wasm=p), p.stat().st_size, "")
             for p in extra]
    rows += [(f"P:{p.name}", f"P: {p.name} (peer)", p.filters(), p.bytes, p.query) for p in ps]
    data: dict = {}
    lines = ["| config | module bytes | RSS c1 | RSS c2 | per worker (c2-c1) | RSS/2 (c2) | V8 code c2 | "
             "other anon c2 | file c2 | without a valid token |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, name, f, nbytes, query in rows:
        checks: dict = {}
        r1, _ = measure(f, 1, work, query, checks)
        r2, sm = measure(f, 2, work, query, checks)
        denied = f"{checks['none']} (none), {checks['bad_signature']} (bad signature)"
        lines.append(f"| {name} | {'' if nbytes is None else f'{nbytes:,}'} | {mib(r1)} | {mib(r2)} | "
                     f"{mib(r2 - r1)} | {mib(r2 / 2)} | {mib(sm['code'])} | {mib(sm['anon'])} | "
                     f"{mib(sm['file'])} | {denied} |")
        print(lines[-1], file=sys.stderr, flush=True)
        data[key] = {"name": name, "module_bytes": nbytes, "c1_kib": r1, "c2_kib": r2, "smaps_c2_kib": sm,
                     "denied": checks}
    save("rss", {"rows": data, "peers": [p.name for p in ps]})
    return ["## Envoy RSS (MiB) after warm-up", "",
            "Every row answered 200 to all warm-up requests (valid RS256 tokens) and, in the last "
            "column, the status without a valid token.", "", *lines, ""]


def section_cold(work: pathlib.Path, ps: list[Peer]) -> list[str]:
    good = tokens()[0]
    other = copy.deepcopy(jwt_config())
    other["providers"]["bench"]["audiences"] = ["someone-else"]
    cases = {
        "N": (filters("N", other), filters("N", jwt_config())),
        "F": (filters("F", other, floor_key="AAAA"), filters("F", jwt_config())),
        "D": (filters("D", other), filters("D", jwt_config())),
    }
    query = {f"P:{p.name}": p.query for p in ps}
    for p in ps:  # before: the config for another key (denies); after: the benchmark key
        cases[f"P:{p.name}"] = (p.filters("rsa-b"), p.filters())
    lines = ["| config | exec -> first 200 (c2) | listener update -> new config serving (c2) |",
             "|---|---:|---:|"]
    data: dict = {}
    for name, (before, after) in cases.items():
        starts, pushes = [], []
        for _ in range(COLD_RUNS):
            e = Envoy(after, 2, work, lds=True, query=query.get(name, "")).start()
            try:
                starts.append(e.wait_status(200, good) - e.t_exec)
            finally:
                e.stop()
            e = Envoy(before, 2, work, lds=True, query=query.get(name, "")).start()
            try:
                e.wait_status(None, good)
                time.sleep(0.3)
                t0 = time.monotonic()
                e.push(after)
                pushes.append(e.wait_status(200, good) - t0)
            finally:
                e.stop()
        lines.append(f"| {name} | {statistics.median(starts) * 1000:.0f} ms | {statistics.median(pushes) * 1000:.0f} ms |")
        print(lines[-1], file=sys.stderr, flush=True)
        data[name] = {"start_ms": statistics.median(starts) * 1000, "push_ms": statistics.median(pushes) * 1000,
                      "start_runs_ms": [x * 1000 for x in starts], "push_runs_ms": [x * 1000 for x in pushes]}
    save("cold", {"runs": COLD_RUNS, "configs": data})
    return ["## Cold start (median of %d)" % COLD_RUNS, "", *lines, ""]


def section_growth(work: pathlib.Path) -> list[str]:
    """RSS (c2) for the configuration dimensions, then CPU per request for all of them
    (bench/growth.py), in one table."""
    from bench import growth
    from bench import summary
    points = growth.measure_cpu(work) if GROWTH_CPU else [
        {"dim": d, "value": v, "label": lbl, "config": c, "workload": growth.WORKLOAD_NAMES[w]}
        for d, v, lbl, c, w in growth.POINTS if d in growth.DIMS]
    seen: dict[str, dict] = {}  # 1 rule and 1 provider are the same configuration
    for p in points:
        if p["dim"] not in ("rules", "providers", "keys"):
            continue
        cfg = jwt_config(**{p["dim"]: int(p["value"])})
        key = json.dumps(cfg, sort_keys=True)
        if key not in seen:
            rn, _ = measure(filters("N", cfg), 2, work)
            rd, _ = measure(filters("D", cfg), 2, work)
            seen[key] = {"N": rn, "D": rd}
        p["rss_kib"] = seen[key]
        rn, rd = seen[key]["N"], seen[key]["D"]
        print(f"growth RSS c2 {p['label']}: N {mib(rn)} MiB, D {mib(rd)} MiB", file=sys.stderr, flush=True)
    save("growth", {"cpu_method": growth.METHOD if GROWTH_CPU else None, "points": points})
    return ["## Cost as the work grows (D beside N with the same configuration)", "",
            summary.growth_method({"cpu_method": growth.METHOD if GROWTH_CPU else None}), "",
            *summary.growth_table(points), ""]


def save(section: str, data: dict) -> None:
    """bench/results/memory-<section>.json, for bench/summary.py."""
    size = bench.WASM.stat().st_size if bench.WASM.exists() else None
    floor = bench.FLOOR_WASM.stat().st_size if bench.FLOOR_WASM.exists() else None
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "run_id": os.environ.get("BENCH_RUN_ID"),  # one per ./build.sh bench
           "machine": bench.machine().split(", --concurrency")[0],
           "module_bytes": size, "floor_bytes": floor, **data}
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench.RESULTS / f"memory-{section}.json").write_text(json.dumps(doc, indent=1) + "\n")


def main() -> None:
    args = sys.argv[1:]
    what = args.pop(0) if args and args[0] in ("rss", "cold", "growth", "all") else "all"
    extra = [pathlib.Path(a).resolve() for a in args]
    ps = peers()
    for p in (bench.WASM, bench.FLOOR_WASM, *extra):
        if not p.exists():
            raise SystemExit(f"{p} missing: run ./build.sh bench-memory")
    work = pathlib.Path(tempfile.mkdtemp(prefix="jwt-mem-"))
    size = bench.WASM.stat().st_size
    out = [f"# Memory, size and cold start {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}", "",
           f"Machine: {bench.machine().split(', --concurrency')[0]}.",
           f"Module: {bench.WASM.name} {size} bytes ({size / 1024:.0f} KiB); floor "
           f"{bench.FLOOR_WASM.stat().st_size} bytes.", peers_line(ps), ""]
    if what in ("rss", "all"):
        out += section_rss(work, extra, ps)
    if what in ("cold", "all"):
        out += section_cold(work, ps)
    if what in ("growth", "all"):
        out += section_growth(work)
    text = "\n".join(out)
    bench.RESULTS.mkdir(parents=True, exist_ok=True)
    (bench.RESULTS / "memory.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
