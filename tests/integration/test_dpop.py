"""Sender-constrained tokens in the real Envoy: DPoP (RFC 9449), certificate-bound tokens
(RFC 8705) and the access-token type (RFC 9068).

Proofs, thumbprints and client certificates are made here by independent code (jwcrypto
for JOSE, `cryptography` for X.509), never by the filter's own."""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import time

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jws

from tests.integration.configs import provider
from tests.integration.harness import Envoy
from tests.integration.observability import series, values
from tests.support.tokens import make_token

NONCE_SECRET = base64.b64encode(b"0123456789abcdef-nonce-secret").decode()


def dpop_config(**dpop) -> dict:
    return {
        "providers": {"dp": provider(dpop={"mode": "required", **dpop})},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "dp"}}],
    }


class Client:
    """A DPoP client: its own EC key, the access token bound to it, and proofs."""

    def __init__(self, alg: str = "ES256"):
        crv = {"ES256": "P-256", "ES384": "P-384"}[alg]
        self.alg = alg
        self.key = jwk.JWK.generate(kty="EC", crv=crv)
        self.jkt = self.key.thumbprint()
        self.token = make_token(claims={"cnf": {"jkt": self.jkt}})

    def proof(self, method: str, url: str, token: str | None = None, iat: int | None = None,
              key: jwk.JWK | None = None, header: dict | None = None, **claims) -> str:
        signer = key or self.key
        hdr = {"typ": "dpop+jwt", "alg": self.alg,
               "jwk": json.loads(self.key.export_public())}
        hdr.update(header or {})
        body = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url,
                "iat": int(time.time()) if iat is None else iat,
                "ath": base64.urlsafe_b64encode(
                    hashlib.sha256((token or self.token).encode()).digest()).rstrip(b"=").decode()}
        body.update(claims)
        s = jws.JWS(json.dumps(body).encode())
        s.add_signature(signer, alg=self.alg, protected=json.dumps(hdr))
        return s.serialize(compact=True)


def send(proxy: Envoy, path: str, token: str | None, proof: str | None,
         scheme: str = "DPoP", method: str = "GET") -> requests.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    if proof is not None:
        headers["DPoP"] = proof
    # A new connection per request: Envoy spreads them over its workers.
    return requests.request(method, f"{proxy.url}{path}", headers=headers, timeout=10)


def reason_count(proxy: Envoy, reason: str) -> float:
    return values(proxy).get(series("jwt_filter_decisions_total", decision="deny", reason=reason,
                                    mode="enforce"), 0.0)


@pytest.fixture(scope="module")
def dp(shared_envoy):
    return shared_envoy(dpop_config())


def test_a_bound_token_with_a_valid_proof_passes(dp):
    c = Client()
    url = f"{dp.url}/orders"
    r = send(dp, "/orders?page=2", c.token, c.proof("GET", url))
    assert r.status_code == 200, r.text
    # The proof and the token do not go upstream (forward: false).
    up = r.json()["headers"]
    assert "authorization" not in up


def test_each_bad_proof_is_refused_with_the_rfc_9449_error(dp):
    c = Client()
    other = Client()
    url = f"{dp.url}/orders"
    now = int(time.time())
    cases = {
        "dpop_htm": (c.proof("POST", url), "GET"),
        "dpop_htu": (c.proof("GET", f"{dp.url}/admin"), "GET"),
        "dpop_iat": (c.proof("GET", url, iat=now - 3600), "GET"),
        # The proof names the client's key but is signed by another one.
        "dpop_signature": (c.proof("GET", url, key=other.key), "GET"),
        "dpop_ath": (c.proof("GET", url, token=other.token), "GET"),
        "dpop_malformed": (c.proof("GET", url, header={"typ": "JWT"}), "GET"),
    }
    for reason, (proof, method) in cases.items():
        before = reason_count(dp, reason)
        r = send(dp, "/orders", c.token, proof, method=method)
        assert r.status_code == 401, (reason, r.text)
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("DPoP "), challenge
        assert 'error="invalid_dpop_proof"' in challenge, (reason, challenge)
        assert 'algs="' in challenge
        assert reason_count(dp, reason) == before + 1, reason


def test_a_proof_by_another_key_does_not_match_the_token(dp):
    c, thief = Client(), Client()
    # The thief holds c's token and proves possession of their own key.
    proof = thief.proof("GET", f"{dp.url}/orders", token=c.token)
    r = send(dp, "/orders", c.token, proof)
    assert r.status_code == 401
    assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]
    assert reason_count(dp, "dpop_jkt_mismatch") >= 1


def test_a_replayed_proof_is_refused_on_every_worker(dp):
    c = Client()
    proof = c.proof("GET", f"{dp.url}/orders")
    assert send(dp, "/orders", c.token, proof).status_code == 200
    before = reason_count(dp, "dpop_replay")
    # Each replay on its own connection, so both workers see some.
    for _ in range(8):
        r = send(dp, "/orders", c.token, proof)
        assert r.status_code == 401, r.text
    assert reason_count(dp, "dpop_replay") == before + 8


@pytest.mark.parametrize("requires,replay", [
    ({"requires_any": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}},
     "shared"),
    ({"allow_missing": {}}, "shared"),
    ({"requires_any": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}},
     "worker"),
])
def test_a_proof_passes_once_whichever_provider_checks_it(shared_envoy, requires, replay):
    """Two providers with the same issuer and keys, both taking DPoP: the filter has one
    replay record, so a proof passes once, not once per provider."""
    proxy = shared_envoy({
        "providers": {name: provider(dpop={"mode": "required", "replay_cache": replay})
                      for name in ("a", "b")},
        "rules": [{"match": {"prefix": "/"}, "requires": requires}],
    })
    c = Client()
    proof = c.proof("GET", f"{proxy.url}/orders")
    codes = [send(proxy, "/orders", c.token, proof).status_code for _ in range(4)]
    if replay == "worker":
        # Per worker: the first request on each worker may pass; never more.
        assert codes.count(200) <= 2 and codes[0] == 200, codes
    else:
        assert codes == [200, 401, 401, 401], codes


def test_a_proof_checked_for_two_providers_in_one_request_passes(shared_envoy):
    """`requires_all` checks the same proof for both providers: it is recorded once,
    not refused as a replay of itself; the next request with it is."""
    proxy = shared_envoy({
        "providers": {name: provider(dpop={"mode": "required"}) for name in ("a", "b")},
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "a"}, {"provider_name": "b"}]}}}],
    })
    c = Client()
    proof = c.proof("GET", f"{proxy.url}/orders")
    assert send(proxy, "/orders", c.token, proof).status_code == 200
    assert send(proxy, "/orders", c.token, proof).status_code == 401


def test_a_bound_token_sent_as_bearer_or_without_proof_is_refused(dp):
    c = Client()
    r = send(dp, "/orders", c.token, c.proof("GET", f"{dp.url}/orders"), scheme="Bearer")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("DPoP ")
    assert reason_count(dp, "dpop_required") >= 1
    r = send(dp, "/orders", c.token, None)
    assert r.status_code == 401
    assert reason_count(dp, "dpop_missing") >= 1
    # An unbound bearer token where DPoP is required.
    r = send(dp, "/orders", make_token(), None, scheme="Bearer")
    assert r.status_code == 401
    # No token at all: the DPoP challenge names the algorithms.
    r = send(dp, "/orders", None, None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('DPoP realm=')
    assert "error=" not in r.headers["www-authenticate"]


def test_optional_mode_lets_unbound_bearer_tokens_through(shared_envoy):
    proxy = shared_envoy(dpop_config(mode="optional"))
    assert send(proxy, "/x", make_token(), None, scheme="Bearer").status_code == 200
    c = Client()
    # Bound tokens still need their proof.
    assert send(proxy, "/x", c.token, None, scheme="Bearer").status_code == 401
    assert send(proxy, "/x", c.token, c.proof("GET", f"{proxy.url}/x")).status_code == 200


def test_server_nonce(shared_envoy):
    proxy = shared_envoy(dpop_config(nonce={"secret": NONCE_SECRET, "lifetime": "30s"}))
    c = Client()
    url = f"{proxy.url}/n"
    r = send(proxy, "/n", c.token, c.proof("GET", url))
    assert r.status_code == 401
    assert 'error="use_dpop_nonce"' in r.headers["www-authenticate"]
    nonce = r.headers["dpop-nonce"]
    r = send(proxy, "/n", c.token, c.proof("GET", url, nonce=nonce))
    assert r.status_code == 200, r.text
    r = send(proxy, "/n", c.token, c.proof("GET", url, nonce="bm90LWEtbm9uY2U"))
    assert r.status_code == 401


def test_public_base_url_is_the_htu_origin(shared_envoy):
    proxy = shared_envoy(dpop_config(public_base_url="https://api.example.com"))
    c = Client()
    ok = c.proof("GET", "https://api.example.com/orders")
    assert send(proxy, "/orders", c.token, ok).status_code == 200
    direct = c.proof("GET", f"{proxy.url}/orders")
    assert send(proxy, "/orders", c.token, direct).status_code == 401


def test_an_id_token_is_refused_where_access_tokens_are_required(shared_envoy):
    proxy = shared_envoy({
        "providers": {"at": provider(require_access_token_type=True, reject_future_iat=True)},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "at"}}],
    })
    assert proxy.get("/", token=make_token(headers={"typ": "at+jwt"})).status == 200
    assert proxy.get("/", token=make_token(headers={"typ": "application/at+jwt"})).status == 200
    r = proxy.get("/", token=make_token(headers={"typ": "JWT"}))
    assert r.status == 401 and "token type not allowed" in (r.www_authenticate or "")
    assert proxy.get("/", token=make_token()).status == 401
    future = make_token(headers={"typ": "at+jwt"}, claims={"iat": int(time.time()) + 3600})
    assert proxy.get("/", token=future).status == 401
    assert reason_count(proxy, "token_type") >= 2
    assert reason_count(proxy, "iat_future") == 1


# ----------------------------------------------------------------------------------------
# Certificate-bound tokens over a real TLS listener that asks for client certificates
# ----------------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool = False,
          san: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        import ipaddress
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test-ca", ca_key, _name("test-ca"), ca_key, ca=True)
    out = {"dir": d}

    def write(name, cert, key):
        (d / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        out[name] = (str(d / f"{name}.crt"), str(d / f"{name}.key"))
        out[f"{name}_x5t"] = base64.urlsafe_b64encode(
            hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()).rstrip(b"=").decode()

    write("ca", ca, ca_key)
    sk = ec.generate_private_key(ec.SECP256R1())
    write("server", _cert("127.0.0.1", sk, ca.subject, ca_key, san="127.0.0.1"), sk)
    for name in ("alice", "mallory"):
        k = ec.generate_private_key(ec.SECP256R1())
        write(name, _cert(name, k, ca.subject, ca_key), k)
    return out


@pytest.fixture(scope="module")
def mtls_envoy(echo_port, pki):
    config = {
        "providers": {"m": provider(certificate_binding="required")},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "m"}}],
    }
    proxy = Envoy(echo_port, config)
    boot = yaml.safe_load(proxy.config_path.read_text())
    chain = boot["static_resources"]["listeners"][0]["filter_chains"][0]
    chain["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            # Optional at the TLS layer, so the filter (not the handshake) refuses a request
            # without a certificate.
            "require_client_certificate": False,
            "common_tls_context": {
                "tls_certificates": [{"certificate_chain": {"filename": pki["server"][0]},
                                      "private_key": {"filename": pki["server"][1]}}],
                "validation_context": {"trusted_ca": {"filename": pki["ca"][0]}},
            },
        },
    }
    proxy.config_path.write_text(yaml.safe_dump(boot, sort_keys=False))
    proxy.start()
    yield proxy
    proxy.stop()


def _tls_get(proxy: Envoy, pki, token: str, client: str | None) -> requests.Response:
    url = f"https://127.0.0.1:{proxy.port}/mtls"
    return requests.get(url, headers={"Authorization": f"Bearer {token}"},
                        cert=pki[client] if client else None, verify=pki["ca"][0], timeout=10)


def test_a_certificate_bound_token_passes_only_with_its_certificate(mtls_envoy, pki):
    token = make_token(claims={"cnf": {"x5t#S256": pki["alice_x5t"]}})
    r = _tls_get(mtls_envoy, pki, token, "alice")
    assert r.status_code == 200, r.text
    r = _tls_get(mtls_envoy, pki, token, "mallory")
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = _tls_get(mtls_envoy, pki, token, None)
    assert r.status_code == 401
    # An unbound token where binding is required.
    assert _tls_get(mtls_envoy, pki, make_token(), "alice").status_code == 401
    for reason in ("cert_mismatch", "cert_missing", "cert_unbound"):
        assert reason_count(mtls_envoy, reason) == 1, reason
