"""Test support shared by the integration tests, the load run, the benchmarks and the demo.

    support.envoy        launch a real Envoy from a bootstrap, wait until it is ready, stop
                         it, read its CPU time and RSS
    support.jwks_server  a JWKS server on 127.0.0.1 with fault modes, controlled by the caller
    support.tokens       token minting (PyJWT + cryptography, independent of the filter's
                         code) with the TEST-ONLY keys in tests/fixtures/keys and the DEMO-ONLY
                         key in envoy/demo
    support.echo_server  the demo/test upstream (standard library only)

Imported as `tests.support`: the repository root is the one import root of its Python
(pyproject.toml), and the scripts run as modules from there (`python -m bench.run`,
`python -m tools.demo_token`, ...).
"""
import pathlib

#: The repository's root folder.
ROOT = pathlib.Path(__file__).resolve().parents[2]
