//! CachedValidator: hits, expiry at the token's exp, capacity, what is never cached.
// Test code: a failed unwrap or index is a failed test (as clippy.toml allows in #[test]s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{AUDIENCE, AsKey, ISSUER, KID, NOW, claims, invalid_reason, jwks, unavailable_cause};
use dpop_core::{AccessToken, TokenFuture};
use dpop_core::{DpopKey, InvalidToken, TokenClaims, TokenError, TokenValidator, clock::ManualClock};
use dpop_token::{CachedValidator, JwkSet, JwtValidator};
use serde_json::{Map, Value, json};

/// Answers by token name and counts its calls:
/// `exp=N` → accepted with `exp` N, `noexp` → accepted without exp, `bad` → Invalid,
/// `down` → Unavailable.
#[derive(Default)]
struct Counting {
    calls: AtomicUsize,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TokenValidator for Counting {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let mut raw = Map::new();
            raw.insert("sub".into(), json!(token));
            if let Some(exp) = token.split_once('#').map_or(token, |(t, _)| t).strip_prefix("exp=") {
                raw.insert("exp".into(), serde_json::from_str::<Value>(exp).unwrap());
                return Ok(std::sync::Arc::new(TokenClaims::from_json(raw)));
            }
            match token.split_once('#').map_or(token, |(t, _)| t) {
                "noexp" => Ok(std::sync::Arc::new(TokenClaims::from_json(raw))),
                "bad" => Err(TokenError::Invalid(InvalidToken::Other("bad token"))),
                _ => Err(TokenError::Unavailable("AS down".into())),
            }
        })
    }
}

fn cached(clock: &ManualClock) -> CachedValidator<Counting> {
    CachedValidator::new(Counting::default()).clock(clock.clone())
}

#[tokio::test]
async fn second_validation_does_not_reach_the_inner_validator() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock);
    let token = format!("exp={}", NOW + 100);
    let first = cache.validate(&token).await.unwrap();
    let second = cache.validate(&token).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(second.subject.as_deref(), Some(token.as_str()));
    assert_eq!(cache.inner().calls(), 1);
    assert_eq!(cache.len(), 1);
    // Another token is another entry.
    cache.validate(&format!("exp={}#2", NOW + 100)).await.unwrap();
    assert_eq!(cache.inner().calls(), 2);
}

#[tokio::test]
async fn the_guards_hashed_path_and_the_text_path_share_one_entry_per_token() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock);
    let token = format!("exp={}", NOW + 100);
    cache.validate_hashed(AccessToken::new(&token)).await.unwrap();
    cache.validate(&token).await.unwrap();
    assert_eq!(cache.inner().calls(), 1, "the digest the guard hands over is the cache key");
    let other = format!("exp={}#other", NOW + 100);
    let claims = cache.validate_hashed(AccessToken::new(&other)).await.unwrap();
    assert_eq!(claims.subject.as_deref(), Some(other.as_str()), "another token is never answered from the entry");
    assert_eq!(cache.inner().calls(), 2);
}

#[tokio::test]
async fn entry_expires_at_the_tokens_exp() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock);
    let token = format!("exp={}", NOW + 100);
    cache.validate(&token).await.unwrap();
    clock.advance(99);
    cache.validate(&token).await.unwrap();
    assert_eq!(cache.inner().calls(), 1);
    clock.advance(1);
    cache.validate(&token).await.unwrap();
    assert_eq!(cache.inner().calls(), 2, "at exp the inner validator decides again");
}

#[tokio::test]
async fn max_ttl_bounds_long_lived_and_exp_less_tokens() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock).max_ttl(Duration::from_secs(60));
    let long = format!("exp={}", NOW + 86_400);
    for token in [long.as_str(), "noexp"] {
        cache.validate(token).await.unwrap();
    }
    clock.advance(59);
    for token in [long.as_str(), "noexp"] {
        cache.validate(token).await.unwrap();
    }
    assert_eq!(cache.inner().calls(), 2);
    clock.advance(1);
    for token in [long.as_str(), "noexp"] {
        cache.validate(token).await.unwrap();
    }
    assert_eq!(cache.inner().calls(), 4);
}

#[tokio::test]
async fn odd_exp_values() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock);
    // A fractional NumericDate: cached until its whole second.
    let fractional = format!("exp={}.9", NOW + 10);
    cache.validate(&fractional).await.unwrap();
    clock.advance(9);
    cache.validate(&fractional).await.unwrap();
    assert_eq!(cache.inner().calls(), 1);
    clock.advance(1);
    cache.validate(&fractional).await.unwrap();
    assert_eq!(cache.inner().calls(), 2);
    // Already past (an inner validator with leeway may accept it): not cached.
    let past = format!("exp={}", NOW);
    cache.validate(&past).await.unwrap();
    cache.validate(&past).await.unwrap();
    assert_eq!(cache.inner().calls(), 4);
    // Unreadable exp: not cached.
    cache.validate("exp=\"soon\"").await.unwrap();
    cache.validate("exp=\"soon\"").await.unwrap();
    assert_eq!(cache.inner().calls(), 6);
}

#[tokio::test]
async fn capacity_is_respected() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock).capacity(3);
    for i in 0..3 {
        cache.validate(&format!("exp={}#{i}", NOW + 10)).await.unwrap();
    }
    assert_eq!(cache.len(), 3);
    // Full of live entries: the fourth is validated but not stored.
    let fourth = format!("exp={}#late", NOW + 1000);
    cache.validate(&fourth).await.unwrap();
    cache.validate(&fourth).await.unwrap();
    assert_eq!(cache.inner().calls(), 5);
    assert_eq!(cache.len(), 3);
    // Existing entries still hit.
    cache.validate(&format!("exp={}#0", NOW + 10)).await.unwrap();
    assert_eq!(cache.inner().calls(), 5);

    // Once they expire, a new entry evicts them.
    clock.advance(10);
    cache.validate(&fourth).await.unwrap();
    assert_eq!(cache.len(), 1);
    cache.validate(&fourth).await.unwrap();
    assert_eq!(cache.inner().calls(), 6);

    let disabled = cached(&clock).capacity(0);
    disabled.validate("noexp").await.unwrap();
    disabled.validate("noexp").await.unwrap();
    assert_eq!(disabled.inner().calls(), 2);
    assert!(disabled.is_empty());
}

#[tokio::test]
async fn refusals_and_unavailable_are_not_cached() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock);
    assert_eq!(invalid_reason(cache.validate("bad").await), "bad token");
    assert_eq!(invalid_reason(cache.validate("bad").await), "bad token");
    assert_eq!(cache.inner().calls(), 2);
    unavailable_cause(cache.validate("down").await);
    unavailable_cause(cache.validate("down").await);
    assert_eq!(cache.inner().calls(), 4);
    assert!(cache.is_empty());
}

#[tokio::test]
async fn clear_forgets() {
    let clock = ManualClock::at(NOW);
    let cache = cached(&clock);
    cache.validate("noexp").await.unwrap();
    cache.clear();
    cache.validate("noexp").await.unwrap();
    assert_eq!(cache.inner().calls(), 2);
}

#[tokio::test]
async fn in_front_of_a_jwt_validator() {
    let as_key = AsKey::new(KID);
    let clock = ManualClock::at(NOW);
    let jwt = JwtValidator::builder(ISSUER, AUDIENCE)
        .keys(JwkSet::from_json(&jwks(&[&as_key])).unwrap())
        .leeway(Duration::ZERO)
        .clock(clock.clone())
        .build()
        .unwrap();
    let cache = CachedValidator::new(jwt).clock(clock.clone());
    let mut token_claims = claims(&DpopKey::generate().unwrap().thumbprint().to_string());
    token_claims["exp"] = json!(NOW + 30);
    let token = as_key.token(&token_claims);
    let first = cache.validate(&token).await.unwrap();
    assert_eq!(cache.validate(&token).await.unwrap(), first);
    assert_eq!(cache.len(), 1);
    clock.advance(30);
    assert_eq!(invalid_reason(cache.validate(&token).await), "token expired");
    assert!(cache.is_empty());
}
