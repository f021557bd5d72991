//! Replay protection (RFC 9449 §11.1): the in-memory store and the verifier's use of stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, METHOD, NOW, TOKEN, URL};
use dpop_core::replay::{Insertion, ReplayFuture, ReplayKey, ReplayStoreError};
use dpop_core::{DpopError, DpopKey, DpopVerifier, InMemoryReplayStore, ManualClock, ProofRequest, ReplayStore};
use tokio::sync::Barrier;

fn key(jti: &str) -> ReplayKey {
    let thumbprint = dpop_core::Thumbprint::from_bytes([1; 32]);
    ReplayKey::new(&thumbprint, jti)
}

const TTL: Duration = Duration::from_secs(601);

#[tokio::test]
async fn insert_then_insert_again_is_present() {
    let store = InMemoryReplayStore::new();
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    assert_eq!(store.insert_if_absent(key("b"), TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn keys_differ_by_client_key_and_jti() {
    let a = ReplayKey::new(&dpop_core::Thumbprint::from_bytes([1; 32]), "jti");
    let b = ReplayKey::new(&dpop_core::Thumbprint::from_bytes([2; 32]), "jti");
    assert_ne!(a.proof_id(), b.proof_id());
    assert_ne!(key("jti").proof_id(), key("jti2").proof_id());
    // Concatenation cannot collide across the thumbprint/jti boundary: the thumbprint is fixed size.
    assert_eq!(a.proof_id(), ReplayKey::new(&dpop_core::Thumbprint::from_bytes([1; 32]), "jti").proof_id());
}

#[tokio::test]
async fn a_full_store_refuses_instead_of_evicting() {
    let store = InMemoryReplayStore::builder().capacity(2).build();
    store.insert_if_absent(key("a"), TTL).await.unwrap();
    store.insert_if_absent(key("b"), TTL).await.unwrap();
    assert!(matches!(store.insert_if_absent(key("c"), TTL).await, Err(ReplayStoreError::Full)));
    // The live entries are still there: a replay of `a` is still caught.
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn expiry_frees_entries() {
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().capacity(1).clock(clock.clone()).build();
    store.insert_if_absent(key("a"), TTL).await.unwrap();
    assert!(matches!(store.insert_if_absent(key("b"), TTL).await, Err(ReplayStoreError::Full)));
    clock.advance(TTL.as_secs() - 1);
    assert!(matches!(store.insert_if_absent(key("b"), TTL).await, Err(ReplayStoreError::Full)));
    clock.advance(1);
    assert_eq!(store.insert_if_absent(key("b"), TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_backlog_of_expired_entries_leaves_a_few_per_insert_and_all_before_a_refusal() {
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().capacity(100).per_key_quota(1000).clock(clock.clone()).build();
    for i in 0..100 {
        store.insert_if_absent(key(&format!("old-{i}")), TTL).await.unwrap();
    }
    clock.advance(TTL.as_secs());
    // One insert removes a bounded number of the 100 expired entries, not all of them...
    store.insert_if_absent(key("new-0"), TTL).await.unwrap();
    assert!(store.len() > 50, "{}", store.len());
    // ...and a full store sweeps every expired entry before it would refuse.
    for i in 1..100 {
        store.insert_if_absent(key(&format!("new-{i}")), TTL).await.unwrap();
    }
    assert_eq!(store.len(), 100);
    assert!(matches!(store.insert_if_absent(key("one-too-many"), TTL).await, Err(ReplayStoreError::Full)));
}

#[tokio::test]
async fn one_key_cannot_exhaust_the_store_for_others() {
    let store = InMemoryReplayStore::builder().capacity(100).per_key_quota(2).build();
    let flooder = dpop_core::Thumbprint::from_bytes([7; 32]);
    store.insert_if_absent(ReplayKey::new(&flooder, "1"), TTL).await.unwrap();
    store.insert_if_absent(ReplayKey::new(&flooder, "2"), TTL).await.unwrap();
    let third = store.insert_if_absent(ReplayKey::new(&flooder, "3"), TTL).await;
    assert!(matches!(third, Err(ReplayStoreError::QuotaExceeded)));
    assert_eq!(store.insert_if_absent(key("other"), TTL).await.unwrap(), Insertion::Inserted);
}

#[tokio::test]
async fn quota_is_given_back_on_expiry() {
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().per_key_quota(1).clock(clock.clone()).build();
    store.insert_if_absent(key("1"), TTL).await.unwrap();
    assert!(matches!(store.insert_if_absent(key("2"), TTL).await, Err(ReplayStoreError::QuotaExceeded)));
    clock.advance(TTL.as_secs());
    assert_eq!(store.insert_if_absent(key("2"), TTL).await.unwrap(), Insertion::Inserted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_racing_tasks_accept_one_proof_once() {
    let f = Fixture::new();
    let proof = Arc::new(f.valid());
    let barrier = Arc::new(Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (verifier, proof, barrier) = (f.verifier.clone(), Arc::clone(&proof), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let request = ProofRequest::new(METHOD, URL).access_token(TOKEN);
                verifier.verify([proof.as_bytes()], &request).await
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(err) => assert_eq!(err, DpopError::Replayed),
        }
    }
    assert_eq!(accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_distinct_proofs_are_all_accepted() {
    let f = Arc::new(Fixture::new());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.verify(&f.valid()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

/// A store whose answer is fixed: stands in for a broken or hostile backend.
struct FixedStore(fn() -> Result<Insertion, ReplayStoreError>);

impl ReplayStore for FixedStore {
    fn insert_if_absent(&self, _key: ReplayKey, _ttl: Duration) -> ReplayFuture<'_> {
        Box::pin(std::future::ready((self.0)()))
    }
}

async fn verify_with_store(store: FixedStore) -> Result<dpop_core::VerifiedProof, DpopError> {
    let clock = ManualClock::at(NOW);
    let verifier = DpopVerifier::builder().clock(clock.clone()).replay_store(store).build().unwrap();
    let f = Fixture::with_verifier(verifier, clock);
    f.verify(&f.valid()).await
}

#[tokio::test]
async fn a_failing_store_rejects_the_proof() {
    let err = verify_with_store(FixedStore(|| Err(ReplayStoreError::Unavailable("connection refused".into()))))
        .await
        .unwrap_err();
    assert_eq!(err, DpopError::ReplayStoreUnavailable);
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn a_full_store_rejects_the_proof() {
    let err = verify_with_store(FixedStore(|| Err(ReplayStoreError::Full))).await.unwrap_err();
    assert_eq!(err, DpopError::ReplayStoreFull);
    let err = verify_with_store(FixedStore(|| Err(ReplayStoreError::QuotaExceeded))).await.unwrap_err();
    assert_eq!(err, DpopError::ReplayQuotaExceeded);
}

#[tokio::test]
async fn a_store_reporting_presence_rejects_the_proof() {
    let err = verify_with_store(FixedStore(|| Ok(Insertion::AlreadyPresent))).await.unwrap_err();
    assert_eq!(err, DpopError::Replayed);
}

#[tokio::test]
async fn the_store_keeps_proofs_for_the_whole_iat_window() {
    let f = Fixture::new();
    // ±300 s: a proof issued at the future edge stays acceptable for 600 s after arrival.
    assert_eq!(f.verifier.replay_ttl(), Duration::from_secs(601));
    let proof = f.mutated(|_, c| c["iat"] = serde_json::json!(NOW + 300));
    f.verify(&proof).await.unwrap();
    f.clock.advance(600);
    assert_eq!(f.verify(&proof).await.unwrap_err(), DpopError::Replayed);
    f.clock.advance(1);
    assert_eq!(f.verify(&proof).await.unwrap_err(), DpopError::IssuedTooLongAgo);
}

#[tokio::test]
async fn the_default_verifier_store_expires_on_the_verifier_clock() {
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().capacity(1).clock(clock.clone()).build();
    let verifier = DpopVerifier::builder().clock(clock.clone()).replay_store(store.clone()).build().unwrap();
    let f = Fixture::with_verifier(verifier, clock.clone());
    f.verify(&f.valid()).await.unwrap();
    assert_eq!(f.verify(&f.valid()).await.unwrap_err(), DpopError::ReplayStoreFull);
    clock.advance(601);
    let key = DpopKey::generate().unwrap();
    let fresh = key.proof(METHOD, URL).access_token(TOKEN).issued_at((NOW + 601) as i64).sign().unwrap();
    f.verifier.verify([fresh.as_bytes()], &ProofRequest::new(METHOD, URL).access_token(TOKEN)).await.unwrap();
    assert_eq!(store.len(), 1);
}
