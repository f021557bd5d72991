//! Replay protection (RFC 9449 §11.1): the in-memory store and the verifier's use of stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, METHOD, NOW, TOKEN, URL};
use dpop_core::replay::{DEFAULT_CAPACITY, EXPIRED_PER_INSERT};
use dpop_core::replay::{Insertion, ReplayFuture, ReplayKey, ReplayStoreError};
use dpop_core::{
    ConfigError, DpopError, DpopGuard, DpopKey, DpopVerifier, ProofRequest, clock::ManualClock,
    replay::InMemoryReplayStore, replay::ReplayStore,
};
use tokio::sync::Barrier;

/// Proof `jti` of one client key, recorded as validated. The limits most tests here pin are the
/// whole store's, which only validated records may use; proof-only records have their own share
/// (tested further down).
fn key(jti: &str) -> ReplayKey {
    let thumbprint = dpop_core::Thumbprint::from_bytes([1; 32]);
    ReplayKey::new(&thumbprint, jti).with_validated_token()
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
    let store = InMemoryReplayStore::builder().capacity(2).per_key_quota(2).build().unwrap();
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
    let store = InMemoryReplayStore::builder().capacity(1).clock(clock.clone()).build().unwrap();
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
    const BACKLOG: usize = 2_000;
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().capacity(BACKLOG).clock(clock.clone()).build().unwrap();
    for i in 0..BACKLOG {
        store.insert_if_absent(client_key(i as u64, "old"), TTL).await.unwrap();
    }
    clock.advance(TTL.as_secs());
    // One insert removes a bounded number of the expired entries, not all of them...
    store.insert_if_absent(client_key(0, "new-0"), TTL).await.unwrap();
    assert!(store.len() > BACKLOG - EXPIRED_PER_INSERT, "{}", store.len());
    // ...and a full store sweeps every expired entry before it would refuse.
    for i in 1..BACKLOG {
        store.insert_if_absent(client_key(i as u64, "new"), TTL).await.unwrap();
    }
    assert_eq!(store.len(), BACKLOG);
    let refused = store.insert_if_absent(client_key(BACKLOG as u64, "one-too-many"), TTL).await;
    assert!(matches!(refused, Err(ReplayStoreError::Full)), "{refused:?}");
}

/// Proof `jti` of client key number `client`, recorded as validated (see [`key`]).
fn client_key(client: u64, jti: &str) -> ReplayKey {
    proof_only_key(client, jti).with_validated_token()
}

/// Proof `jti` of client key number `client`, recorded as proof-only.
fn proof_only_key(client: u64, jti: &str) -> ReplayKey {
    let mut thumbprint = [0xAA; 32];
    thumbprint[..8].copy_from_slice(&client.to_le_bytes());
    ReplayKey::new(&dpop_core::Thumbprint::from_bytes(thumbprint), jti)
}

#[test]
fn a_store_that_would_refuse_everything_is_not_built() {
    let zero_capacity = InMemoryReplayStore::builder().capacity(0).build().unwrap_err();
    assert!(matches!(zero_capacity, ConfigError::ZeroLimit(_)), "{zero_capacity:?}");
    let zero_quota = InMemoryReplayStore::builder().per_key_quota(0).build().unwrap_err();
    assert!(matches!(zero_quota, ConfigError::ZeroLimit(_)), "{zero_quota:?}");
    // The smallest store that works is built, with a quota of one entry.
    InMemoryReplayStore::builder().capacity(1).build().unwrap();
}

#[tokio::test]
async fn one_key_cannot_exhaust_the_store_for_others() {
    let store = InMemoryReplayStore::builder().capacity(100).per_key_quota(2).build().unwrap();
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
    let store = InMemoryReplayStore::builder().per_key_quota(1).clock(clock.clone()).build().unwrap();
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
    let store = InMemoryReplayStore::builder().capacity(1).clock(clock.clone()).build().unwrap();
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

#[tokio::test]
async fn a_record_lives_until_its_iat_leaves_the_window() {
    let f = Fixture::new();
    assert_eq!(f.verifier.record_ttl(NOW as i64), Duration::from_secs(301));
    assert_eq!(f.verifier.record_ttl(NOW as i64 - 100), Duration::from_secs(201));
    assert_eq!(f.verifier.record_ttl(NOW as i64 + 300), Duration::from_secs(601));
    // Never zero, even for a proof the window has just left (the clock moved meanwhile).
    assert_eq!(f.verifier.record_ttl(NOW as i64 - 10_000), Duration::from_secs(1));

    // A proof issued 100 s ago is a replay for as long as its iat is acceptable, and no longer.
    let proof = f.mutated(|_, c| c["iat"] = serde_json::json!(NOW - 100));
    f.verify(&proof).await.unwrap();
    f.clock.advance(200);
    assert_eq!(f.verify(&proof).await.unwrap_err(), DpopError::Replayed);
    f.clock.advance(1);
    assert_eq!(f.verify(&proof).await.unwrap_err(), DpopError::IssuedTooLongAgo);
}

#[tokio::test]
async fn a_proof_issued_now_frees_its_entry_after_max_age_not_the_whole_window() {
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().clock(clock.clone()).build().unwrap();
    let verifier = DpopVerifier::builder().clock(clock.clone()).replay_store(store.clone()).build().unwrap();
    let f = Fixture::with_verifier(verifier, clock.clone());
    f.verify(&f.valid()).await.unwrap();
    clock.advance(300);
    store.insert_if_absent(key("probe-300"), TTL).await.unwrap();
    assert_eq!(store.len(), 2, "the record must outlive iat + max_age");
    clock.advance(1);
    // Expired entries leave as inserts pass by: sweep with inserts until the store shrinks.
    for i in 0..1_000 {
        store.insert_if_absent(key(&format!("probe-301-{i}")), TTL).await.unwrap();
    }
    assert_eq!(store.len(), 1_001, "the record of a proof issued now must not live 601 s");
}

/// Drives one client key at `per_second` proofs a second for `seconds` of manual clock time,
/// each record living as long as the verifier asks for a proof issued now; returns the
/// refusals.
async fn drive_one_key(store: &InMemoryReplayStore, clock: &ManualClock, per_second: usize, seconds: usize) -> usize {
    let (verifier, _) = common::verifier_at(NOW);
    let ttl = verifier.record_ttl(NOW as i64);
    let mut refused = 0;
    for second in 0..seconds {
        for i in 0..per_second {
            match store.insert_if_absent(client_key(1, &format!("{}-{second}-{i}", clock_now(clock))), ttl).await {
                Ok(Insertion::Inserted) => {}
                Ok(Insertion::AlreadyPresent) => panic!("every proof is new"),
                Err(ReplayStoreError::QuotaExceeded) => refused += 1,
                Err(other) => panic!("only the key's own quota may refuse it: {other:?}"),
            }
        }
        clock.advance(1);
    }
    refused
}

fn clock_now(clock: &ManualClock) -> u64 {
    dpop_core::clock::Clock::now(clock)
}

/// The load benchmark's full rate on one key, 15,000 proofs a second, for 60 s: 900,000 live
/// entries (each lives 301 s). The default quota is half the default capacity, 1,000,000, and the
/// high-water mark three quarters, so none is refused. The same holds at 1/100 of the scale —
/// capacity 20,000 (quota 10,000), 150 proofs a second for 60 s — which this test drives entry by
/// entry; past the quota the key is throttled, and let in again as its oldest entries expire.
#[tokio::test]
async fn one_key_at_the_benchmark_rate_for_a_minute_is_never_refused() {
    const RATE: usize = 15_000;
    const SCALE: usize = 100;
    // The default quota (half the default capacity) holds a minute at the full rate.
    const { assert!(RATE * 60 <= DEFAULT_CAPACITY / 2) };

    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().capacity(DEFAULT_CAPACITY / SCALE).clock(clock.clone()).build().unwrap();
    assert_eq!(drive_one_key(&store, &clock, RATE / SCALE, 60).await, 0);
    assert_eq!(store.len(), RATE / SCALE * 60);

    // The check that makes this test able to fail: the same rate past the quota is refused...
    let over = drive_one_key(&store, &clock, RATE / SCALE, 10).await;
    assert_eq!(over, RATE / SCALE * 70 - DEFAULT_CAPACITY / SCALE / 2);
    // ...until the first second's entries expire (301 s after they came): not a lock-out.
    clock.advance(301 - 70);
    assert_eq!(drive_one_key(&store, &clock, RATE / SCALE, 1).await, 0);
}

/// The client of issue 12: one key, 17 proofs a second, for 20 minutes, on the default store.
#[tokio::test]
async fn a_busy_agent_on_the_default_store_is_never_refused() {
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().clock(clock.clone()).build().unwrap();
    assert_eq!(drive_one_key(&store, &clock, 17, 20 * 60).await, 0);
    // Live entries, and the expired ones no insert has removed yet: an expired entry stays until
    // an insert lands in its shard, about one per shard at this rate (the default store has at
    // most 61 shards), never the 20 minutes' worth.
    assert!(store.len() <= 17 * 302 + 4 * 61, "{}", store.len());
}

/// Inserts proofs of client key `client` until one is refused; returns how many were accepted
/// and the refusal.
async fn flood(store: &InMemoryReplayStore, client: u64, at_most: usize) -> (usize, Option<ReplayStoreError>) {
    for i in 0..at_most {
        if let Err(refusal) = store.insert_if_absent(client_key(client, &format!("flood-{i}")), TTL).await {
            return (i, Some(refusal));
        }
    }
    (at_most, None)
}

#[tokio::test]
async fn one_flooding_key_stops_at_its_quota_and_others_are_served() {
    // Capacity 1,000: quota 500, high-water mark 750, a reserve of 250 for keys holding < 3.
    let store = InMemoryReplayStore::builder().capacity(1_000).build().unwrap();
    let (accepted, refusal) = flood(&store, 7, 10_000).await;
    assert_eq!(accepted, 500);
    assert!(matches!(refusal, Some(ReplayStoreError::QuotaExceeded)), "{refusal:?}");
    for i in 0..100 {
        let other = store.insert_if_absent(client_key(1_000 + i, "honest"), TTL).await;
        assert_eq!(other.unwrap(), Insertion::Inserted);
    }
}

#[tokio::test]
async fn busy_keys_together_stop_at_the_high_water_mark_leaving_the_reserve_to_small_keys() {
    let store = InMemoryReplayStore::builder().capacity(1_000).build().unwrap();
    let accepted: Vec<usize> =
        [flood(&store, 1, 1_000).await, flood(&store, 2, 1_000).await, flood(&store, 3, 1_000).await]
            .into_iter()
            .map(|(accepted, refusal)| {
                assert!(matches!(refusal, Some(ReplayStoreError::QuotaExceeded)), "{refusal:?}");
                accepted
            })
            .collect();
    // Busy keys together stop at the mark, 750; past it a key may hold 3 entries at most
    // (the third key was refused as soon as it held 3).
    assert_eq!(accepted, [500, 250, 3]);
    // The rest of the reserve, 247 entries, goes to keys holding 3 at most: 82 × 3, then 1.
    for client in 100..182 {
        for jti in ["a", "b", "c", "d"] {
            let outcome = store.insert_if_absent(client_key(client, jti), TTL).await;
            match jti {
                "d" => assert!(matches!(outcome, Err(ReplayStoreError::QuotaExceeded)), "{outcome:?}"),
                _ => assert_eq!(outcome.unwrap(), Insertion::Inserted),
            }
        }
    }
    store.insert_if_absent(client_key(500, "last"), TTL).await.unwrap();
    assert_eq!(store.len(), 1_000);
    let full = store.insert_if_absent(client_key(501, "none"), TTL).await;
    assert!(matches!(full, Err(ReplayStoreError::Full)), "{full:?}");
}

/// The documented global bound: entries from ever new keys look like small clients, and only
/// the capacity stops them (each costs the sender a signature and the server a verification).
#[tokio::test]
async fn fresh_keys_are_stopped_by_the_capacity_alone() {
    let store = InMemoryReplayStore::builder().capacity(1_000).build().unwrap();
    for client in 0..1_000 {
        store.insert_if_absent(client_key(client, "fresh"), TTL).await.unwrap();
    }
    let refused = store.insert_if_absent(client_key(5_000, "late"), TTL).await;
    assert!(matches!(refused, Err(ReplayStoreError::Full)), "{refused:?}");
}

#[test]
fn not_now_refusals_carry_retry_after_and_a_key_over_its_quota_gets_429() {
    let guard = DpopGuard::proof_only();
    for (error, status) in [
        (DpopError::ReplayQuotaExceeded, 429),
        (DpopError::ReplayStoreFull, 503),
        (DpopError::ReplayStoreUnavailable, 503),
    ] {
        let reply = guard.reject(error.clone()).reply();
        assert_eq!(reply.status(), status, "{error:?}");
        let headers: Vec<(&str, &str)> = reply.headers().collect();
        assert!(headers.contains(&("retry-after", "1")), "{error:?}: {headers:?}");
        assert!(!headers.iter().any(|(name, _)| *name == "www-authenticate"), "{error:?}: {headers:?}");
        assert!(reply.body().contains("temporarily_unavailable"), "{error:?}");
    }
    // A "no" is not a "not now": no Retry-After.
    let replayed = guard.reject(DpopError::Replayed).reply();
    assert_eq!(replayed.status(), 401);
    assert!(!replayed.headers().any(|(name, _)| name == "retry-after"));
}

// ---------------------------------------------------------------------------------------------
// Several shards: each enforces its share of every limit.

/// A store with four shards whatever the machine: capacity 2^17 with its default quota 2^16
/// leaves room for exactly four shares of 16,384, and there are more shards per core than that.
const SHARDED: usize = 1 << 17;

fn sharded_store() -> InMemoryReplayStore {
    let store = InMemoryReplayStore::builder().capacity(SHARDED).build().unwrap();
    // The premise of these tests (the shard count is otherwise internal).
    assert!(format!("{store:?}").contains("shards: 4"), "{store:?}");
    store
}

/// Inserts the proofs `key(0)`, `key(1)`, … `key(attempts - 1)`, each refusal being one that
/// `refusal` expects; returns how many were accepted, and how many had been when the first
/// refusal came.
async fn insert_many(
    store: &InMemoryReplayStore,
    attempts: usize,
    key: impl Fn(usize) -> ReplayKey,
    refusal: fn(&ReplayStoreError) -> bool,
) -> (usize, Option<usize>) {
    let (mut accepted, mut first_refusal) = (0, None);
    for i in 0..attempts {
        match store.insert_if_absent(key(i), TTL).await {
            Ok(Insertion::Inserted) => accepted += 1,
            Err(error) if refusal(&error) => {
                first_refusal.get_or_insert(accepted);
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    (accepted, first_refusal)
}

/// Proofs of client key `client`.
fn of(client: u64) -> impl Fn(usize) -> ReplayKey {
    move |i| client_key(client, &format!("many-{i}"))
}

/// One proof each of new client keys, numbered from `first`.
fn fresh(first: u64) -> impl Fn(usize) -> ReplayKey {
    move |i| client_key(first + i as u64, "fresh")
}

fn is_full(error: &ReplayStoreError) -> bool {
    matches!(error, ReplayStoreError::Full)
}

fn is_quota(error: &ReplayStoreError) -> bool {
    matches!(error, ReplayStoreError::QuotaExceeded)
}

#[tokio::test]
async fn a_sharded_store_never_holds_more_than_its_capacity() {
    let store = sharded_store();
    // Twice the capacity in fresh keys: every shard is offered more than its share.
    let (accepted, first_refusal) = insert_many(&store, 2 * SHARDED, fresh(1_000_000), is_full).await;
    // Each shard stopped at its share, and the shares add up to the capacity, not more.
    assert_eq!(accepted, SHARDED);
    assert_eq!(store.len(), SHARDED);
    assert!(first_refusal.is_some());
}

#[tokio::test]
async fn one_key_never_holds_more_than_its_quota_across_shards_and_others_are_served() {
    let store = sharded_store();
    let quota = SHARDED / 2;
    let (accepted, first_refusal) = insert_many(&store, 2 * quota, of(7), is_quota).await;
    assert_eq!(accepted, quota);
    // The shares approximate the quota closely: the key's fullest shard refuses first, when the
    // key holds about 3 standard deviations of a share (3 × 128 entries) less per shard. 5 %
    // below the quota is tens of standard deviations away: this fails only if the shares are
    // far smaller than the shard count rule promises.
    let first_refusal = first_refusal.unwrap();
    assert!(first_refusal >= quota - quota / 20, "{first_refusal}");
    assert!(first_refusal < quota, "{first_refusal}");
    for client in 0..1_000 {
        assert_eq!(
            store.insert_if_absent(client_key(10_000 + client, "other"), TTL).await.unwrap(),
            Insertion::Inserted
        );
    }
}

#[tokio::test]
async fn busy_keys_stop_at_each_shards_high_water_mark_across_shards() {
    let store = sharded_store();
    // The mark is 98,304 (24,576 a shard); above it a key may hold 512 (128 a shard).
    let mut accepted = Vec::new();
    for client in [1, 2, 3] {
        let (count, first_refusal) = insert_many(&store, SHARDED, of(client), is_quota).await;
        assert!(first_refusal.is_some(), "{client}");
        accepted.push(count);
    }
    // Every shard is offered more than each share, and the shares add up exactly: the quota,
    // the rest of the mark, the small keys' threshold.
    assert_eq!(accepted, [SHARDED / 2, SHARDED * 3 / 4 - SHARDED / 2, SHARDED / 4 / 64]);
    // The reserve is left to keys holding few entries.
    for client in 0..1_000 {
        assert_eq!(
            store.insert_if_absent(client_key(10_000 + client, "small"), TTL).await.unwrap(),
            Insertion::Inserted
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Proof-only records: half of the capacity, never the reserve; validated ones the whole.

/// One proof-only proof each of new client keys, numbered from `first`.
fn fresh_proof_only(first: u64) -> impl Fn(usize) -> ReplayKey {
    move |i| proof_only_key(first + i as u64, "fresh")
}

#[tokio::test]
async fn fresh_keys_writing_proof_only_records_stop_at_half_and_validated_ones_still_insert() {
    // Capacity 1,000: proof-only records may hold 500.
    let store = InMemoryReplayStore::builder().capacity(1_000).build().unwrap();
    let (accepted, first_refusal) = insert_many(&store, 1_000, fresh_proof_only(0), is_full).await;
    // Without the share the fresh keys would take all 1,000 entries, and 503 everyone.
    assert_eq!(accepted, 500);
    assert_eq!(first_refusal, Some(500));
    // Validated records use the rest, up to the whole capacity.
    let (accepted, _) = insert_many(&store, 500, fresh(10_000), is_full).await;
    assert_eq!(accepted, 500);
    assert_eq!(store.len(), 1_000);
    // The class is not part of a proof's identity: a replay is a replay in either class.
    let again = store.insert_if_absent(proof_only_key(0, "fresh").with_validated_token(), TTL).await;
    assert_eq!(again.unwrap(), Insertion::AlreadyPresent);
    let again = store.insert_if_absent(proof_only_key(10_000, "fresh"), TTL).await;
    assert_eq!(again.unwrap(), Insertion::AlreadyPresent);
}

#[tokio::test]
async fn proof_only_records_never_take_the_reserve_left_to_validated_keys_holding_few() {
    let store = InMemoryReplayStore::builder().capacity(1_000).build().unwrap();
    // Busy validated keys fill the store to its high-water mark, 750.
    assert_eq!(flood(&store, 1, 1_000).await.0, 500);
    assert_eq!(flood(&store, 2, 1_000).await.0, 250);
    // A fresh key is small, yet its proof-only record may not enter the reserve...
    let refused = store.insert_if_absent(proof_only_key(100, "fresh"), TTL).await;
    assert!(matches!(refused, Err(ReplayStoreError::Full)), "{refused:?}");
    // ...which stays for validated keys holding few entries.
    let (accepted, _) = insert_many(&store, 250, fresh(200), is_full).await;
    assert_eq!(accepted, 250);
}

#[tokio::test]
async fn one_proof_only_key_stops_below_the_proof_only_share_leaving_it_to_others() {
    // Capacity 1,000: proof-only records hold 500 at most; above 375 only keys holding fewer than
    // 3 entries may add one.
    let store = InMemoryReplayStore::builder().capacity(1_000).build().unwrap();
    let (accepted, _) = insert_many(&store, 2_000, |i| proof_only_key(7, &format!("flood-{i}")), is_quota).await;
    // Its quota is 500: without the proof-only mark it would take the whole share.
    assert_eq!(accepted, 375);
    let (accepted, _) = insert_many(&store, 1_000, fresh_proof_only(1_000), is_full).await;
    assert_eq!(accepted, 125);
    let validated = store.insert_if_absent(client_key(5_000, "validated"), TTL).await;
    assert_eq!(validated.unwrap(), Insertion::Inserted);
}

#[tokio::test]
async fn a_sharded_store_keeps_proof_only_records_to_half_exactly() {
    let store = sharded_store();
    let (accepted, _) = insert_many(&store, 2 * SHARDED, fresh_proof_only(1_000_000), is_full).await;
    // Each shard stopped at its share of the proof-only half; the shares add up to it exactly.
    assert_eq!(accepted, SHARDED / 2);
    let (accepted, first_refusal) = insert_many(&store, 1_000, fresh(10), is_full).await;
    assert_eq!((accepted, first_refusal), (1_000, None));
}

#[tokio::test]
async fn the_verifier_records_proof_only_unless_told_the_token_was_validated() {
    // Capacity 2: one proof-only record at most (the fixture's one key may hold both entries).
    let clock = ManualClock::at(NOW);
    let store = InMemoryReplayStore::builder().capacity(2).per_key_quota(2).clock(clock.clone()).build().unwrap();
    let verifier = DpopVerifier::builder().clock(clock.clone()).replay_store(store.clone()).build().unwrap();
    let f = Fixture::with_verifier(verifier, clock);
    let request = ProofRequest::new(METHOD, URL).access_token(TOKEN);
    f.verify(&f.valid()).await.unwrap();
    // A second proof-only record does not fit...
    assert_eq!(f.verify(&f.valid()).await.unwrap_err(), DpopError::ReplayStoreFull);
    // ...a validated one does.
    let proof = f.valid();
    let checked = f.verifier.check([proof.as_bytes()], &request).unwrap();
    f.verifier.record(checked.with_validated_token()).await.unwrap();
    assert_eq!(store.len(), 2);
}
