//! JwtValidator with a JWK set fetched from a real HTTP server on 127.0.0.1.
#![cfg(feature = "fetch")]
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    AUDIENCE, AsKey, ISSUER, JwksEndpoint, KID, NOW, claims, closed_port_url, invalid_reason, jwks, unavailable_cause,
};
use dpop_core::{DpopKey, TokenValidator, clock::ManualClock};
use dpop_token::{ConfigError, JwtValidator, MAX_RESPONSE_LEN};
use serde_json::json;

fn validator(url: &str, clock: &ManualClock) -> JwtValidator {
    JwtValidator::builder(ISSUER, AUDIENCE).jwks_url(url).clock(clock.clone()).build().unwrap()
}

fn token(key: &AsKey) -> String {
    key.token(&claims(&DpopKey::generate().unwrap().thumbprint().to_string()))
}

#[tokio::test]
async fn first_fetch_then_cached_keys() {
    let as_key = AsKey::new(KID);
    let endpoint = JwksEndpoint::new(jwks(&[&as_key]));
    let server = endpoint.serve().await;
    let clock = ManualClock::at(NOW);
    let validator = validator(&server.url("/jwks"), &clock);
    assert_eq!(endpoint.requests(), 0, "no fetch before the first token");

    let claims = validator.validate(&token(&as_key)).await.unwrap();
    assert_eq!(claims.subject.as_deref(), Some("user-42"));
    assert_eq!(endpoint.requests(), 1);
    for _ in 0..3 {
        validator.validate(&token(&as_key)).await.unwrap();
    }
    assert_eq!(endpoint.requests(), 1, "keys are cached");
    // Refusals that are not about the key need no fetch either.
    let forged = AsKey::new(KID);
    assert_eq!(invalid_reason(validator.validate(&token(&forged)).await), "invalid signature");
    assert_eq!(endpoint.requests(), 1);
}

#[tokio::test]
async fn rotated_key_is_fetched_and_accepted() {
    let old = AsKey::new("2024-key");
    let new = AsKey::new("2025-key");
    let endpoint = JwksEndpoint::new(jwks(&[&old]));
    let server = endpoint.serve().await;
    let clock = ManualClock::at(NOW);
    let validator = validator(&server.url("/jwks"), &clock);

    validator.validate(&token(&old)).await.unwrap();
    assert_eq!(endpoint.requests(), 1);

    // The AS rotates: the new key is published and starts signing.
    endpoint.set_body(jwks(&[&new, &old]));
    validator.validate(&token(&new)).await.unwrap();
    assert_eq!(endpoint.requests(), 2, "an unknown kid refetches");
    validator.validate(&token(&old)).await.unwrap();
    validator.validate(&token(&new)).await.unwrap();
    assert_eq!(endpoint.requests(), 2);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let as_key = AsKey::new(KID);
    let endpoint = JwksEndpoint::new(jwks(&[&as_key]));
    let server = endpoint.serve().await;
    let clock = ManualClock::at(NOW);
    let validator = JwtValidator::builder(ISSUER, AUDIENCE)
        .jwks_url(server.url("/jwks"))
        .refetch_interval(Duration::from_secs(300))
        .clock(clock.clone())
        .build()
        .unwrap();
    validator.validate(&token(&as_key)).await.unwrap();
    assert_eq!(endpoint.requests(), 1);

    let stranger = AsKey::new("made-up-1");
    assert_eq!(invalid_reason(validator.validate(&token(&stranger)).await), "unknown signing key");
    assert_eq!(endpoint.requests(), 2, "the first unknown kid refetches");
    let stranger2 = AsKey::new("made-up-2");
    assert_eq!(invalid_reason(validator.validate(&token(&stranger2)).await), "unknown signing key");
    assert_eq!(invalid_reason(validator.validate(&token(&stranger)).await), "unknown signing key");
    clock.advance(299);
    assert_eq!(invalid_reason(validator.validate(&token(&stranger)).await), "unknown signing key");
    assert_eq!(endpoint.requests(), 2, "no refetch within the interval");
    // Known keys keep working meanwhile.
    validator.validate(&token(&as_key)).await.unwrap();

    clock.advance(1);
    assert_eq!(invalid_reason(validator.validate(&token(&stranger)).await), "unknown signing key");
    assert_eq!(endpoint.requests(), 3, "the interval passed: one more refetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_do_not_stampede() {
    let as_key = AsKey::new(KID);
    let endpoint = JwksEndpoint::new(jwks(&[&as_key]));
    endpoint.delay_ms.store(200, Ordering::SeqCst);
    let server = endpoint.serve().await;
    let clock = ManualClock::at(NOW);
    let validator = Arc::new(validator(&server.url("/jwks"), &clock));

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let validator = Arc::clone(&validator);
        let token = token(&as_key);
        tasks.spawn(async move { validator.validate(&token).await.map(|_| ()) });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(endpoint.requests(), 1, "cold start: one fetch for all");

    // The same for a rotation seen by many requests at once.
    let new = AsKey::new("new-key");
    endpoint.set_body(jwks(&[&new, &as_key]));
    for _ in 0..16 {
        let validator = Arc::clone(&validator);
        let token = token(&new);
        tasks.spawn(async move { validator.validate(&token).await.map(|_| ()) });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(endpoint.requests(), 2);
}

#[tokio::test]
async fn endpoint_down_is_unavailable() {
    let as_key = AsKey::new(KID);
    let clock = ManualClock::at(NOW);
    let validator = validator(&closed_port_url("/jwks").await, &clock);
    let cause = unavailable_cause(validator.validate(&token(&as_key)).await);
    assert!(cause.contains("JWKS"), "{cause}");
    // Still never accepted, and not retried on every request meanwhile.
    unavailable_cause(validator.validate(&token(&as_key)).await);
    clock.advance(60);
    unavailable_cause(validator.validate(&token(&as_key)).await);
}

#[tokio::test]
async fn endpoint_stopped_after_first_fetch() {
    let as_key = AsKey::new(KID);
    let endpoint = JwksEndpoint::new(jwks(&[&as_key]));
    let server = endpoint.serve().await;
    let clock = ManualClock::at(NOW);
    let validator = validator(&server.url("/jwks"), &clock);
    validator.validate(&token(&as_key)).await.unwrap();
    server.stop().await;

    // Known keys still verify from the cache.
    validator.validate(&token(&as_key)).await.unwrap();
    // A new kid needs a fetch, which fails: unavailable, never accepted.
    unavailable_cause(validator.validate(&token(&AsKey::new("new"))).await);
}

#[tokio::test]
async fn garbage_and_error_responses_are_unavailable() {
    let as_key = AsKey::new(KID);
    for (status, body) in [
        (200, "<html>hello</html>".to_owned()),
        (200, "{\"keys\": 5}".to_owned()),
        (200, format!("{{\"keys\":[],\"keys\":{}}}", json!([as_key.jwk()]))),
        (200, json!({"keys": [as_key.jwk()], "pad": "a".repeat(MAX_RESPONSE_LEN)}).to_string()),
        (500, jwks(&[&as_key])),
        (302, jwks(&[&as_key])),
        (404, String::new()),
    ] {
        let endpoint = JwksEndpoint::new(body);
        *endpoint.status.lock().unwrap() = status;
        let server = endpoint.serve().await;
        let validator = validator(&server.url("/jwks"), &ManualClock::at(NOW));
        let cause = unavailable_cause(validator.validate(&token(&as_key)).await);
        assert!(cause.contains("JWKS"), "{status}: {cause}");
        assert_eq!(endpoint.requests(), 1);
    }
}

#[tokio::test]
async fn a_jwks_with_private_keys_is_refused() {
    let as_key = AsKey::new(KID);
    let mut private = as_key.key.private_jwk().unwrap();
    private["kid"] = json!(KID);
    let endpoint = JwksEndpoint::new(json!({ "keys": [private] }).to_string());
    let server = endpoint.serve().await;
    let validator = validator(&server.url("/jwks"), &ManualClock::at(NOW));
    let cause = unavailable_cause(validator.validate(&token(&as_key)).await);
    assert!(cause.contains("private"), "{cause}");
}

#[tokio::test]
async fn slow_endpoint_times_out() {
    let as_key = AsKey::new(KID);
    let endpoint = JwksEndpoint::new(jwks(&[&as_key]));
    endpoint.delay_ms.store(3_000, Ordering::SeqCst);
    let server = endpoint.serve().await;
    let validator = JwtValidator::builder(ISSUER, AUDIENCE)
        .jwks_url(server.url("/jwks"))
        .fetch_timeout(Duration::from_millis(300))
        .clock(ManualClock::at(NOW))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let cause = unavailable_cause(validator.validate(&token(&as_key)).await);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(cause.contains("timed out"), "{cause}");
}

#[tokio::test]
async fn stale_keys_are_refetched_and_withdrawn_keys_refused() {
    let old = AsKey::new("old");
    let new = AsKey::new("new");
    let endpoint = JwksEndpoint::new(jwks(&[&old, &new]));
    let server = endpoint.serve().await;
    let clock = ManualClock::at(NOW);
    let validator = JwtValidator::builder(ISSUER, AUDIENCE)
        .jwks_url(server.url("/jwks"))
        .jwks_max_age(Duration::from_secs(600))
        .clock(clock.clone())
        .build()
        .unwrap();
    validator.validate(&token(&old)).await.unwrap();
    endpoint.set_body(jwks(&[&new]));
    clock.advance(599);
    validator.validate(&token(&old)).await.unwrap();
    assert_eq!(endpoint.requests(), 1);
    clock.advance(1);
    // Tokens are re-made at the new time so they are not expired.
    let mut late = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
    late["exp"] = json!(NOW + 7200);
    validator.validate(&new.token(&late)).await.unwrap();
    assert_eq!(endpoint.requests(), 2, "the set was older than its max age");
    assert_eq!(invalid_reason(validator.validate(&old.token(&late)).await), "unknown signing key");
}

#[test]
fn jwks_url_must_be_https_or_loopback() {
    let build = |url: &str| JwtValidator::builder(ISSUER, AUDIENCE).jwks_url(url).build().map(|_| ());
    assert_eq!(build("http://as.example.com/jwks"), Err(ConfigError::InsecureUrl));
    assert_eq!(build("not a url"), Err(ConfigError::InvalidUrl));
    assert_eq!(build("https://as.example.com/jwks"), Ok(()));
    assert_eq!(build("http://127.0.0.1:1/jwks"), Ok(()));
    let set = dpop_token::JwkSet::from_json(&jwks(&[&AsKey::new(KID)])).unwrap();
    assert_eq!(
        JwtValidator::builder(ISSUER, AUDIENCE).keys(set).jwks_url("https://as.example.com/jwks").build().map(|_| ()),
        Err(ConfigError::ConflictingKeySources)
    );
}
