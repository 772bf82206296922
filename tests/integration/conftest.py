"""Fixtures: an echo upstream (in-process, free port) and real Envoys running the filter.

    envoy(plugin_config, concurrency=2)          function-scoped: a fresh Envoy per call
    shared_envoy(plugin_config, concurrency=2)   session-scoped, one Envoy per distinct
                                                 config (reused by every test that asks for
                                                 the same config; keeps the suite fast)
    envoy_expect_fail(plugin_config)             asserts Envoy refuses to start; returns
                                                 its log text

What Envoy 1.40 does when the plugin's on_configure returns false (measured): the wasm
filter factory fails ("Wasm VM failed Failed to configure base Wasm plugin", "Plugin
jwt_filter failed to load", "Unable to create Wasm plugin jwt_filter") and Envoy exits
with code 1 during startup, before the listener or admin /ready is up.
"""
from __future__ import annotations

import json
import threading

from tests.support import echo_server
from tests.integration import harness
import pytest
from tests.integration.harness import Envoy, EnvoyStartError


def pytest_configure(config):
    if not harness.WASM.exists():
        pytest.exit(f"{harness.WASM} is missing: run ./build.sh build first", returncode=2)


@pytest.fixture(scope="session")
def echo_port():
    server = echo_server.make_server(0)
    thread = threading.Thread(target=server.serve_forever, name="echo", daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _start(echo_port: int, plugin_config, **kwargs) -> Envoy:
    proxy = Envoy(echo_port, plugin_config, **kwargs)
    try:
        return proxy.start()
    except EnvoyStartError as err:
        pytest.fail(f"Envoy did not start with plugin config {json.dumps(plugin_config)[:500]}\n{err}",
                    pytrace=False)


@pytest.fixture
def envoy(echo_port):
    """Factory: envoy(plugin_config, concurrency=2, **kwargs) -> started Envoy, stopped
    after the test."""
    started: list[Envoy] = []

    def factory(plugin_config, concurrency: int = 2, **kwargs) -> Envoy:
        proxy = _start(echo_port, plugin_config, concurrency=concurrency, **kwargs)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="session")
def shared_envoy(echo_port):
    """Factory like `envoy`, but one Envoy per distinct config for the whole session."""
    cache: dict[str, Envoy] = {}

    def factory(plugin_config, concurrency: int = 2, **kwargs) -> Envoy:
        key = json.dumps([plugin_config, concurrency, sorted(kwargs.items())], sort_keys=True, default=str)
        proxy = cache.get(key)
        if proxy is None or not proxy.running:
            proxy = _start(echo_port, plugin_config, concurrency=concurrency, **kwargs)
            cache[key] = proxy
        return proxy

    yield factory
    for proxy in cache.values():
        proxy.stop()


@pytest.fixture
def envoy_expect_fail(echo_port):
    """envoy_expect_fail(plugin_config) -> log text. Fails the test unless Envoy exits
    non-zero during startup (the plugin refused its configuration)."""
    started: list[Envoy] = []

    def factory(plugin_config, concurrency: int = 1, timeout: float = harness.READY_TIMEOUT) -> str:
        proxy = Envoy(echo_port, plugin_config, concurrency=concurrency)
        started.append(proxy)
        proxy.launch()
        code = proxy.wait_exit(timeout)
        if code is None:
            state = "became LIVE" if proxy.running else "did not exit"
            proxy.stop()
            pytest.fail(f"Envoy {state} with a bad plugin config {str(plugin_config)[:300]}...\n"
                        f"{proxy.log_tail()}",
                        pytrace=False)
        assert code != 0, f"Envoy exited 0 with a bad plugin config\n{proxy.log_tail()}"
        return proxy.log_text()

    yield factory
    for proxy in started:
        proxy.stop()


@pytest.fixture
def main_envoy(shared_envoy):
    """The Envoy running configs.MAIN (one per session)."""
    from tests.integration import configs

    return shared_envoy(configs.MAIN)


def pytest_sessionfinish(session, exitstatus):
    """Keeps Envoy configs and logs only when something failed (and says where)."""
    import shutil

    run = harness._run_dir
    if run is None:
        return
    if exitstatus == 0:
        shutil.rmtree(run, ignore_errors=True)
    else:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"Envoy configs and logs kept in {run}")
