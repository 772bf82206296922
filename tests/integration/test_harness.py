"""Self-checks of the harness with Envoy but without the filter (echo, ports, paths, cookies)."""
import pytest

from tests.integration.harness import Envoy


@pytest.fixture(scope="module")
def plain_envoy(echo_port):
    proxy = Envoy(echo_port, with_filter=False, concurrency=1).start()
    yield proxy
    proxy.stop()


def test_echo_through_envoy(plain_envoy):
    reply = plain_envoy.get("/some/path?a=1&b=2", headers={"X-Test": "yes"}, cookies={"a": "1", "b": "2"})
    up = reply.upstream
    assert up["method"] == "GET"
    assert up["path"] == "/some/path?a=1&b=2"
    assert up["headers"]["x-test"] == "yes"
    assert up["headers"]["cookie"] == "a=1; b=2"
    assert up["headers"]["x-forwarded-proto"] == "http"


def test_any_method(plain_envoy):
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert plain_envoy.request(method, "/m").upstream["method"] == method


def test_admin_and_log(plain_envoy):
    assert plain_envoy.admin_url.startswith("http://127.0.0.1:")
    assert plain_envoy.port > 0
    assert "starting main dispatch loop" in plain_envoy.log_text()


def test_stop_is_idempotent(echo_port):
    proxy = Envoy(echo_port, with_filter=False, concurrency=1).start()
    assert proxy.running
    proxy.stop()
    assert not proxy.running
    proxy.stop()
