//! Keys and signatures, without the host: JWK parsing and each algorithm's
//! verification ([`jwks`]), RSA arithmetic made for wasm ([`rsa_verify`]),
//! offloading to Envoy's `verify_signature` and its start-up probe
//! ([`hostverify`]), DER ([`der`]) and x509 certificates ([`x509`]).

pub(crate) mod der;
pub mod hostverify;
pub mod jwks;
pub mod rsa_verify;
pub mod x509;
