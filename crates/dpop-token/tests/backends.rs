//! Feature unification must never turn into a panic on the request path (the reason this crate
//! does not use `jsonwebtoken`): verification works with every dpop-core backend enabled at
//! once (`cargo test -p dpop-token --all-features`), and the HTTP client works although this
//! test build also compiles rustls's `ring` provider next to reqwest's aws-lc-rs one.
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{AUDIENCE, AsKey, ISSUER, KID, NOW, claims, invalid_reason, jwks};
use dpop_core::{DpopKey, TokenValidator, clock::ManualClock};
use dpop_token::JwtValidator;

#[tokio::test]
async fn verification_works_with_the_compiled_backends() {
    let as_key = AsKey::new(KID);
    let validator = common::validator_trusting(&as_key);
    let client = DpopKey::generate().unwrap();
    let token = as_key.token(&claims(&client.thumbprint().to_string()));
    let verified = validator.validate(&token).await.unwrap();
    assert_eq!(verified.cnf_jkt, Some(client.thumbprint().to_string()));
    let forged = AsKey::new(KID).token(&claims(&client.thumbprint().to_string()));
    assert_eq!(invalid_reason(validator.validate(&forged).await), "invalid signature");
    // The default allow-list is exactly what the backend can verify.
    for alg in dpop_token::DEFAULT_ALGORITHMS {
        assert_eq!(validator.algorithms().contains(alg), alg.is_supported());
    }
}

#[cfg(all(feature = "aws-lc-rs", feature = "ring", feature = "rustcrypto"))]
#[test]
fn all_backends_enabled_pick_aws_lc_rs() {
    assert_eq!(dpop_core::crypto_backend(), "aws-lc-rs");
    for alg in dpop_core::Algorithm::ALL {
        assert!(alg.is_supported(), "{alg}");
    }
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
#[test]
fn ring_backend_is_used() {
    assert_eq!(dpop_core::crypto_backend(), "ring");
    assert!(!dpop_core::Algorithm::ES512.is_supported());
}

/// Several rustls providers compiled in and none installed as the process default: the
/// situation in which `rustls::ClientConfig::builder()` panics. reqwest passes its provider
/// explicitly, so the client builds and fetches.
#[cfg(feature = "fetch")]
#[tokio::test]
async fn http_client_with_several_rustls_providers() {
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    let _ring_provider = rustls::crypto::ring::default_provider();

    // An https URL builds the TLS configuration eagerly.
    JwtValidator::builder(ISSUER, AUDIENCE).jwks_url("https://as.example.com/.well-known/jwks.json").build().unwrap();

    let as_key = AsKey::new(KID);
    let endpoint = common::JwksEndpoint::new(jwks(&[&as_key]));
    let server = endpoint.serve().await;
    let validator = JwtValidator::builder(ISSUER, AUDIENCE)
        .jwks_url(server.url("/jwks"))
        .clock(ManualClock::at(NOW))
        .build()
        .unwrap();
    let token = as_key.token(&claims(&DpopKey::generate().unwrap().thumbprint().to_string()));
    validator.validate(&token).await.unwrap();
    assert_eq!(endpoint.requests(), 1);
}
