//! Sender-constrained tokens: DPoP proofs ([`dpop`]), their replay record
//! ([`replay`]), and a token's binding to its sender ([`binding`]: proof key,
//! client certificate; the access-token profile).

pub mod binding;
pub mod dpop;
pub mod replay;
