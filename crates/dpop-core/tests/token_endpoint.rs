//! The token-endpoint helper: each rule of RFC 9449 §5, §8 and §10 for token requests, with the
//! response it makes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use dpop_core::token_endpoint::{InvalidTokenEndpoint, TokenEndpoint, TokenEndpointRejection};
use dpop_core::{
    ConfigError, DpopError, DpopKey, DpopVerifier, clock::ManualClock, nonce::NonceIssuer, nonce::NonceKey,
};
use serde_json::Value;

const ENDPOINT: &str = "https://as.example.com/token";
const NOW: u64 = 1_700_000_000;

fn endpoint() -> TokenEndpoint {
    let verifier = DpopVerifier::builder().clock(ManualClock::at(NOW)).build().unwrap();
    TokenEndpoint::new(verifier, ENDPOINT).unwrap()
}

/// An endpoint requiring nonces, and its nonce clock.
fn endpoint_with_nonces() -> (TokenEndpoint, NonceIssuer, ManualClock) {
    let clock = ManualClock::at(NOW);
    let nonces = NonceIssuer::new(NonceKey::new(1, [7; 32])).clock(clock.clone());
    let verifier = DpopVerifier::builder().clock(clock.clone()).nonces(nonces.clone()).build().unwrap();
    (TokenEndpoint::new(verifier, ENDPOINT).unwrap(), nonces, clock)
}

fn proof(key: &DpopKey) -> String {
    key.proof("POST", ENDPOINT).issued_at(NOW as i64).sign().unwrap()
}

async fn refused(endpoint: &TokenEndpoint, proof: &str, dpop_jkt: Option<&str>) -> TokenEndpointRejection {
    endpoint.check([proof.as_bytes()], dpop_jkt).await.unwrap_err()
}

fn body(rejection: &TokenEndpointRejection) -> Value {
    serde_json::from_str(&rejection.body()).unwrap()
}

#[tokio::test]
async fn a_valid_proof_gives_the_jkt_to_bind() {
    let key = DpopKey::generate().unwrap();
    let accepted = endpoint().check([proof(&key).as_bytes()], None).await.unwrap();
    assert_eq!(accepted.jkt(), key.thumbprint().to_string());
    assert_eq!(accepted.response_headers().count(), 0);
}

#[tokio::test]
async fn refusals_are_400_json_no_store() {
    let rejection = endpoint().check(std::iter::empty(), None).await.unwrap_err();
    assert_eq!((rejection.status(), rejection.error()), (400, "invalid_dpop_proof"));
    assert_eq!(rejection.proof_error(), Some(&DpopError::MissingProof));
    assert_eq!(body(&rejection)["error"], "invalid_dpop_proof");
    assert_eq!(body(&rejection)["error_description"], "DPoP proof is missing");
    let headers: Vec<_> = rejection.headers().collect();
    assert_eq!(headers, [("cache-control", "no-store"), ("content-type", "application/json")]);
    assert_eq!(rejection.dpop_nonce(), None);
}

#[tokio::test]
async fn a_proof_with_ath_was_made_for_a_resource_request() {
    let key = DpopKey::generate().unwrap();
    let with_ath = key.proof("POST", ENDPOINT).issued_at(NOW as i64).access_token("token").sign().unwrap();
    let rejection = refused(&endpoint(), &with_ath, None).await;
    assert_eq!(rejection.error(), "invalid_dpop_proof");
    assert!(rejection.description().contains("ath"), "{}", rejection.description());
}

#[tokio::test]
async fn htu_must_be_the_token_endpoint_and_htm_post() {
    let key = DpopKey::generate().unwrap();
    let elsewhere = key.proof("POST", "https://as.example.com/other").issued_at(NOW as i64).sign().unwrap();
    assert_eq!(refused(&endpoint(), &elsewhere, None).await.proof_error(), Some(&DpopError::UriMismatch));
    let get = key.proof("GET", ENDPOINT).issued_at(NOW as i64).sign().unwrap();
    assert_eq!(refused(&endpoint(), &get, None).await.proof_error(), Some(&DpopError::MethodMismatch));
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let endpoint = endpoint();
    let proof = proof(&DpopKey::generate().unwrap());
    endpoint.check([proof.as_bytes()], None).await.unwrap();
    assert_eq!(refused(&endpoint, &proof, None).await.proof_error(), Some(&DpopError::Replayed));
}

#[tokio::test]
async fn an_old_proof_is_refused_with_an_iat_description() {
    let key = DpopKey::generate().unwrap();
    let old = key.proof("POST", ENDPOINT).issued_at(NOW as i64 - 400).sign().unwrap();
    let rejection = refused(&endpoint(), &old, None).await;
    assert_eq!(rejection.proof_error(), Some(&DpopError::IssuedTooLongAgo));
    assert!(rejection.description().contains("`iat`"));
}

#[tokio::test]
async fn without_a_nonce_the_answer_is_use_dpop_nonce_with_one() {
    let (endpoint, _, _) = endpoint_with_nonces();
    let key = DpopKey::generate().unwrap();
    let rejection = refused(&endpoint, &proof(&key), None).await;
    assert_eq!((rejection.status(), rejection.error()), (400, "use_dpop_nonce"));
    assert_eq!(body(&rejection)["error"], "use_dpop_nonce");
    assert_eq!(body(&rejection)["error_description"], "Authorization server requires nonce in DPoP proof");
    let nonce = rejection.dpop_nonce().unwrap().to_owned();
    assert!(rejection.headers().any(|header| header == ("dpop-nonce", nonce.as_str())));
    assert!(rejection.headers().any(|header| header == ("cache-control", "no-store")));

    let with_nonce = key.proof("POST", ENDPOINT).issued_at(NOW as i64).nonce(&nonce).sign().unwrap();
    endpoint.check([with_nonce.as_bytes()], None).await.unwrap();
}

#[tokio::test]
async fn a_nonce_past_half_its_life_brings_the_next_one() {
    let (endpoint, nonces, clock) = endpoint_with_nonces();
    let nonce = nonces.issue().unwrap();
    clock.advance(200);
    let key = DpopKey::generate().unwrap();
    let proof = key.proof("POST", ENDPOINT).issued_at((NOW + 200) as i64).nonce(&nonce).sign().unwrap();
    let accepted = endpoint.check([proof.as_bytes()], None).await.unwrap();
    let headers: Vec<_> = accepted.response_headers().collect();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "dpop-nonce");
    assert_ne!(headers[0].1, nonce);
}

#[tokio::test]
async fn a_stale_nonce_is_use_dpop_nonce() {
    let (endpoint, nonces, clock) = endpoint_with_nonces();
    let nonce = nonces.issue().unwrap();
    clock.advance(301);
    let key = DpopKey::generate().unwrap();
    let proof = key.proof("POST", ENDPOINT).issued_at((NOW + 301) as i64).nonce(&nonce).sign().unwrap();
    assert_eq!(refused(&endpoint, &proof, None).await.error(), "use_dpop_nonce");
}

#[tokio::test]
async fn dpop_jkt_must_name_the_proof_key_and_a_refusal_does_not_use_the_proof_up() {
    let endpoint = endpoint();
    let key = DpopKey::generate().unwrap();
    let other = DpopKey::generate().unwrap().thumbprint().to_string();
    let proof = proof(&key);
    let rejection = refused(&endpoint, &proof, Some(&other)).await;
    assert_eq!(rejection.error(), "invalid_dpop_proof");
    assert!(rejection.description().contains("dpop_jkt"));
    assert_eq!(rejection.proof_error(), None);
    let accepted = endpoint.check([proof.as_bytes()], Some(&key.thumbprint().to_string())).await.unwrap();
    assert_eq!(accepted.jkt(), key.thumbprint().to_string());
}

#[test]
fn configuration_is_checked() {
    assert_eq!(TokenEndpoint::new(DpopVerifier::new(), "/token").unwrap_err(), InvalidTokenEndpoint);
    let plain = TokenEndpoint::new(DpopVerifier::new(), "https://as.example.com/token?x").unwrap();
    assert_eq!(plain.url(), ENDPOINT);
    assert_eq!(plain.require_nonce(true).unwrap_err(), ConfigError::NoncePolicyWithoutIssuer);
    let (with_nonces, _, _) = endpoint_with_nonces();
    assert!(with_nonces.require_nonce(false).is_ok());
}
