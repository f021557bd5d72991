//! Server nonces (RFC 9449 §8, §9): issuing, checking, rotation, and the guard's flow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use dpop_core::nonce::NonceRejection;
use dpop_core::{
    Admission, ConfigError, DpopError, DpopGuard, DpopKey, DpopVerifier, NoncePolicy, RequestUri, clock::ManualClock,
    headers::HeaderValues, nonce::NonceIssuer, nonce::NonceKey,
};

const NOW: u64 = 1_700_000_000;

fn issuer(clock: &ManualClock, key: NonceKey) -> NonceIssuer {
    NonceIssuer::new(key).clock(clock.clone()).lifetime(Duration::from_secs(300))
}

fn key(id: u8, byte: u8) -> NonceKey {
    NonceKey::new(id, [byte; 32])
}

#[test]
fn a_nonce_is_nqchar_and_checks() {
    let clock = ManualClock::at(NOW);
    let issuer = issuer(&clock, key(1, 7));
    let nonce = issuer.issue().unwrap();
    assert_eq!(nonce.len(), 46);
    // §8.1: nonce = 1*NQCHAR; base64url is a subset.
    assert!(nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let accepted = issuer.check(Some(&nonce)).unwrap();
    assert_eq!(accepted.issued_at(), NOW);
    assert!(!accepted.refresh);
    assert_ne!(issuer.issue().unwrap(), nonce, "nonces are unpredictable");
}

#[test]
fn a_missing_nonce_is_reported_as_missing() {
    let clock = ManualClock::at(NOW);
    assert_eq!(issuer(&clock, key(1, 7)).check(None), Err(NonceRejection::Missing));
}

#[test]
fn a_nonce_past_its_lifetime_is_stale_and_past_half_needs_refresh() {
    let clock = ManualClock::at(NOW);
    let issuer = issuer(&clock, key(1, 7));
    let nonce = issuer.issue().unwrap();
    clock.advance(151);
    assert!(issuer.check(Some(&nonce)).unwrap().refresh);
    clock.advance(149);
    assert!(issuer.check(Some(&nonce)).is_ok());
    clock.advance(1);
    assert_eq!(issuer.check(Some(&nonce)), Err(NonceRejection::Stale));
}

#[test]
fn forged_and_foreign_nonces_are_invalid() {
    let clock = ManualClock::at(NOW);
    let ours = issuer(&clock, key(1, 7));
    let nonce = ours.issue().unwrap();
    let mut flipped = nonce.clone().into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    assert_eq!(ours.check(Some(std::str::from_utf8(&flipped).unwrap())), Err(NonceRejection::Invalid));
    // Same key id, another secret.
    let foreign = issuer(&clock, key(1, 8)).issue().unwrap();
    assert_eq!(ours.check(Some(&foreign)), Err(NonceRejection::Invalid));
    // The RFC's example nonce, garbage, empty.
    for bad in ["eyJ7S_zG.eyJH0-Z.HX4w-7v", "", "A", &"A".repeat(46), &"!".repeat(46), &nonce[..45]] {
        assert_eq!(ours.check(Some(bad)), Err(NonceRejection::Invalid), "{bad:?}");
    }
}

#[test]
fn a_nonce_from_the_future_is_invalid() {
    let clock = ManualClock::at(NOW + 60);
    let ahead = issuer(&clock, key(1, 7)).issue().unwrap();
    clock.set(NOW);
    assert_eq!(issuer(&clock, key(1, 7)).check(Some(&ahead)), Err(NonceRejection::Invalid));
}

#[test]
fn a_replica_with_the_same_keys_accepts_the_nonce() {
    let clock = ManualClock::at(NOW);
    let replica_a = issuer(&clock, NonceKey::from_text(3, &"ab".repeat(32)).unwrap());
    let replica_b = issuer(&clock, NonceKey::from_text(3, &"ab".repeat(32)).unwrap());
    replica_b.check(Some(&replica_a.issue().unwrap())).unwrap();
}

#[test]
fn rotation_keeps_the_previous_key_for_its_grace_period_only() {
    let clock = ManualClock::at(NOW);
    let issuer = issuer(&clock, key(1, 7));
    // A replica that has not rotated yet keeps signing with the old key.
    let lagging_replica = self::issuer(&clock, key(1, 7));
    let old = issuer.issue().unwrap();
    issuer.rotate(key(2, 9));
    let new = issuer.issue().unwrap();
    clock.advance(200);
    issuer.check(Some(&old)).unwrap();
    issuer.check(Some(&new)).unwrap();
    issuer.check(Some(&lagging_replica.issue().unwrap())).unwrap();
    clock.advance(101);
    // One lifetime after the rotation the old key is retired: even a fresh nonce made with it fails.
    assert_eq!(issuer.check(Some(&lagging_replica.issue().unwrap())), Err(NonceRejection::Invalid));
    issuer.check(Some(&issuer.issue().unwrap())).unwrap();
}

#[test]
fn a_configured_previous_key_is_accepted_until_its_date() {
    let clock = ManualClock::at(NOW);
    let old = issuer(&clock, key(1, 7)).issue().unwrap();
    let rotated = issuer(&clock, key(2, 9)).previous_key(key(1, 7), NOW + 10);
    rotated.check(Some(&old)).unwrap();
    clock.advance(11);
    assert_eq!(rotated.check(Some(&old)), Err(NonceRejection::Invalid));
}

#[test]
fn keys_from_text() {
    assert!(NonceKey::from_text(0, &"0f".repeat(32)).is_ok());
    assert!(NonceKey::from_text(0, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_ok());
    for bad in ["", "short", &"zz".repeat(32), &"A".repeat(44)] {
        assert!(NonceKey::from_text(0, bad).is_err(), "{bad:?}");
    }
}

// The guard.

const URL: &str = "https://mcp.example.com/mcp";
const URI: RequestUri<'static> = RequestUri { scheme: None, authority: None, path: "/mcp" };

fn nonce_guard(clock: &ManualClock, policy: NoncePolicy) -> DpopGuard {
    let verifier = DpopVerifier::builder().clock(clock.clone()).nonces(issuer(clock, key(1, 7))).build().unwrap();
    DpopGuard::builder()
        .proof_only()
        .public_origin("https://mcp.example.com")
        .verifier(verifier)
        .nonce_policy(policy)
        .build()
        .unwrap()
}

async fn send(
    guard: &DpopGuard,
    method: &str,
    key: &DpopKey,
    nonce: Option<&str>,
) -> Result<dpop_core::Admission, dpop_core::Rejection> {
    send_at(guard, method, key, nonce, NOW).await
}

/// Sends a proof issued at `iat` through `guard`.
async fn send_at(
    guard: &DpopGuard,
    method: &str,
    key: &DpopKey,
    nonce: Option<&str>,
    iat: u64,
) -> Result<dpop_core::Admission, dpop_core::Rejection> {
    let mut builder = key.proof(method, URL).access_token("tok").issued_at(iat as i64);
    if let Some(nonce) = nonce {
        builder = builder.nonce(nonce);
    }
    let proof = builder.sign().unwrap();
    let headers = |name: &'static str| -> HeaderValues<'_> {
        match name {
            "authorization" => [&b"DPoP tok"[..]].into_iter().collect(),
            "dpop" => [proof.as_bytes()].into_iter().collect(),
            _ => HeaderValues::NONE,
        }
    };
    guard.authorize(method, &URI, headers).await
}

#[tokio::test]
async fn missing_nonce_then_retry_with_the_given_one() {
    let clock = ManualClock::at(NOW);
    let guard = nonce_guard(&clock, NoncePolicy::Always);
    let key = DpopKey::generate().unwrap();
    let rejection = send(&guard, "POST", &key, None).await.unwrap_err();
    assert_eq!(rejection.error(), Some(&DpopError::UseDpopNonce(NonceRejection::Missing)));
    assert_eq!(rejection.status(), 401);
    // Figure 24.
    assert_eq!(
        rejection.www_authenticate(),
        Some(
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256""#
        )
    );
    let nonce = rejection.dpop_nonce().unwrap().to_owned();
    let reply = rejection.reply();
    assert_eq!(reply.headers().filter(|(name, _)| *name == "dpop-nonce").count(), 1);

    let auth = send(&guard, "POST", &key, Some(&nonce)).await.unwrap();
    let Admission::ProofOnly(proof_only) = &auth else { panic!("a proof-only guard admits as proof-only") };
    assert_eq!(proof_only.proof().nonce(), Some(nonce.as_str()));
    assert_eq!(auth.response_headers().count(), 0, "a fresh nonce needs no replacement");
}

#[tokio::test]
async fn stale_and_forged_nonces_get_use_dpop_nonce_with_a_new_one() {
    let clock = ManualClock::at(NOW);
    let guard = nonce_guard(&clock, NoncePolicy::Always);
    let key = DpopKey::generate().unwrap();
    let nonce = guard.verifier().nonces().unwrap().issue().unwrap();
    clock.advance(301);
    let stale = send(&guard, "POST", &key, Some(&nonce)).await;
    // The proof's iat is old too; set the clock back for iat but not for the nonce.
    let rejection = stale.unwrap_err();
    assert!(matches!(rejection.error(), Some(DpopError::UseDpopNonce(NonceRejection::Stale))), "{rejection:?}");
    assert!(rejection.dpop_nonce().is_some());
    let foreign = NonceIssuer::new(key_foreign()).clock(clock.clone()).issue().unwrap();
    let rejection = send(&guard, "POST", &key, Some(&foreign)).await.unwrap_err();
    assert_eq!(rejection.error(), Some(&DpopError::UseDpopNonce(NonceRejection::Invalid)));
}

fn key_foreign() -> NonceKey {
    NonceKey::new(1, [99; 32])
}

#[tokio::test]
async fn a_nonce_past_half_its_life_is_replaced_on_success() {
    let clock = ManualClock::at(NOW);
    let guard = nonce_guard(&clock, NoncePolicy::Always);
    let key = DpopKey::generate().unwrap();
    let nonce = guard.verifier().nonces().unwrap().issue().unwrap();
    clock.advance(200);
    let auth = send_at(&guard, "POST", &key, Some(&nonce), NOW + 200).await.unwrap();
    let headers: Vec<_> = auth.response_headers().collect();
    assert_eq!(headers.len(), 2);
    assert_eq!(headers[1], ("cache-control", "no-store"));
    let next = headers[0].1;
    assert_eq!(headers[0].0, "dpop-nonce");
    assert_ne!(next, nonce);
    guard.verifier().nonces().unwrap().check(Some(next)).unwrap();
}

#[tokio::test]
async fn a_policy_can_require_nonces_for_some_requests_only() {
    let clock = ManualClock::at(NOW);
    let guard = nonce_guard(&clock, NoncePolicy::when(|method, _path| method == "POST"));
    let key = DpopKey::generate().unwrap();
    send(&guard, "GET", &key, None).await.unwrap();
    let rejection = send(&guard, "POST", &key, None).await.unwrap_err();
    assert_eq!(rejection.error(), Some(&DpopError::UseDpopNonce(NonceRejection::Missing)));
}

#[test]
fn a_policy_needs_an_issuer() {
    let err = DpopGuard::builder().proof_only().nonce_policy(NoncePolicy::Always).build().unwrap_err();
    assert_eq!(err, ConfigError::NoncePolicyWithoutIssuer);
}
