//! The DPoP proof (RFC 9449 §4): the JWS and its parsing ([`jws`]), the keys ([`jwk`]) and
//! algorithms, the target-URI comparison ([`htu`]), every check of §4.3 ([`checks`]), the
//! [`DpopVerifier`] that runs them, and [`inspect`], which explains a proof check by check.

pub(crate) mod algorithm;
pub(crate) mod checks;
pub(crate) mod header_cache;
pub(crate) mod htu;
pub mod inspect;
pub(crate) mod jwk;
pub(crate) mod jws;
pub(crate) mod verifier;
