"""Test support shared by the integration tests, the load run, the benchmarks and the demo.

    support.envoy        launch a real Envoy from a bootstrap, wait until it is ready, stop
                         it, read its CPU time and RSS
    support.jwks_server  a JWKS server on 127.0.0.1 with fault modes, controlled by the caller
    support.tokens       token minting (PyJWT + cryptography, independent of the filter's
                         code) with the TEST-ONLY keys in tests/fixtures/keys and the DEMO-ONLY
                         key in envoy/demo

Its import root is the repository's `tests` folder: pytest has it in pyproject.toml
(`pythonpath`); bench/run.py, tests/load/load_faults.py, fuzz/make_seeds.py and
envoy/demo/*.py, run as scripts, put it on sys.path themselves.
"""
import pathlib

#: The repository's root folder.
ROOT = pathlib.Path(__file__).resolve().parents[2]
