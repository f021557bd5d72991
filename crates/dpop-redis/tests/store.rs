//! `RedisReplayStore` against the real Redis at 127.0.0.1:6379: semantics, keys, TTLs, sharing
//! between replicas, concurrency, an unreachable server, and the verifier end to end.
//!
//! Without Redis these tests are skipped (with a reason on stderr), or fail when
//! `DPOP_GUARD_REQUIRE_REDIS` is set. Each test writes under its own random prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    NO_HANG, REDIS_URL, RELAXED_TIMEOUT, TTL, cleanup, client_key, direct, expected_name, key, keys, store,
    unavailable_kind,
};
use dpop_core::replay::{Insertion, ReplayKey, ReplayStoreError};
use dpop_core::{DpopError, DpopKey, DpopVerifier, ProofRequest, replay::ReplayStore};
use dpop_redis::{
    ConnectError, DEFAULT_PER_KEY_QUOTA, DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisReplayStore, UnavailableKind,
};
use tokio::sync::Barrier;

/// A `redis://` URL on a loopback port where nothing listens.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn insert_then_insert_again_is_already_present() {
    require_redis!();
    let prefix = common::unique_prefix("insert-twice");
    let store = store(&prefix).await;

    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    assert_eq!(store.insert_if_absent(key("b"), TTL).await.unwrap(), Insertion::Inserted);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn records_get_the_ttl_and_expire() {
    require_redis!();
    let prefix = common::unique_prefix("ttl");
    let store = store(&prefix).await;
    let mut redis = direct().await;

    let long = key("long");
    store.insert_if_absent(long, TTL).await.unwrap();
    let pttl: i64 = redis::cmd("PTTL").arg(store.redis_key(&long)).query_async(&mut redis).await.unwrap();
    let ttl_ms = i64::try_from(TTL.as_millis()).unwrap();
    assert!(pttl > 0 && pttl <= ttl_ms, "PTTL {pttl} not in (0, {ttl_ms}]");

    let short = key("short");
    assert_eq!(store.insert_if_absent(short, Duration::from_millis(200)).await.unwrap(), Insertion::Inserted);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let exists: i64 = redis::cmd("EXISTS").arg(store.redis_key(&short)).query_async(&mut redis).await.unwrap();
    assert_eq!(exists, 0, "the record outlived its TTL");
    // Once expired, the proof id is free again (the verifier's iat window excludes it by then).
    assert_eq!(store.insert_if_absent(short, Duration::from_millis(200)).await.unwrap(), Insertion::Inserted);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn writes_the_record_and_the_quota_counter_under_the_prefix_and_nothing_else() {
    require_redis!();
    let prefix = common::unique_prefix("prefix");
    let store = store(&prefix).await;
    assert_eq!(store.prefix(), prefix);
    let proof = key("prefixed");

    store.insert_if_absent(proof, TTL).await.unwrap();

    let name = expected_name(&prefix, &proof);
    assert_eq!(store.redis_key(&proof), name);
    let counter = store.quota_key(&proof, TTL);
    assert!(counter.starts_with(&prefix), "{counter}");
    let mut expected = vec![name.clone(), counter.clone()];
    expected.sort();
    assert_eq!(keys(&prefix).await, expected);
    // Record and counter share the Cluster hash tag: the client part, in braces.
    let tag = |key: &str| key[key.find('{').unwrap()..=key.find('}').unwrap()].to_owned();
    assert_eq!(tag(&name), tag(&counter));
    assert_eq!(tag(&name).len(), 2 + 32);
    // The proof id appears in no other key: one record, under its prefix.
    let hex = name.rsplit(':').next().unwrap();
    assert_eq!(hex.len(), 64);
    let with_id: Vec<String> =
        redis::cmd("KEYS").arg(format!("*{hex}*")).query_async(&mut direct().await).await.unwrap();
    assert_eq!(with_id, vec![name.clone()]);
    // The value is a constant: nothing from the proof is stored.
    let value: String = redis::cmd("GET").arg(&name).query_async(&mut direct().await).await.unwrap();
    assert_eq!(value, "1");
    // The counter lives about as long as the records it counts, no longer.
    let pttl: i64 = redis::cmd("PTTL").arg(&counter).query_async(&mut direct().await).await.unwrap();
    let ttl_ms = i64::try_from(TTL.as_millis()).unwrap();
    assert!(pttl > ttl_ms && pttl <= ttl_ms + ttl_ms / 8 + 1, "counter PTTL {pttl}");
    cleanup(&prefix).await;
}

#[tokio::test]
async fn without_a_quota_only_the_record_is_written() {
    require_redis!();
    let prefix = common::unique_prefix("no-quota");
    let store = RedisReplayStore::builder()
        .prefix(&prefix)
        .per_key_quota(None)
        .timeout(RELAXED_TIMEOUT)
        .connect(REDIS_URL)
        .await
        .unwrap();
    assert_eq!(store.per_key_quota(), None);
    let proof = key("alone");
    assert_eq!(store.insert_if_absent(proof, TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(store.insert_if_absent(proof, TTL).await.unwrap(), Insertion::AlreadyPresent);
    assert_eq!(keys(&prefix).await, vec![expected_name(&prefix, &proof)]);
    // No quota: one key may hold any number of records.
    for i in 0..50 {
        assert_eq!(store.insert_if_absent(key(&format!("many-{i}")), TTL).await.unwrap(), Insertion::Inserted);
    }
    cleanup(&prefix).await;
}

async fn quota_store(prefix: &str, quota: u64) -> RedisReplayStore {
    RedisReplayStore::builder()
        .prefix(prefix)
        .per_key_quota(Some(quota))
        .timeout(RELAXED_TIMEOUT)
        .connect(REDIS_URL)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flood_from_one_key_is_refused_while_other_keys_go_on() {
    require_redis!();
    let prefix = common::unique_prefix("quota");
    const QUOTA: u64 = 5;
    let store = quota_store(&prefix, QUOTA).await;
    let flooder = 1;
    for i in 0..QUOTA {
        let outcome = store.insert_if_absent(client_key(flooder, &format!("flood-{i}")), TTL).await.unwrap();
        assert_eq!(outcome, Insertion::Inserted, "proof {i} is within the quota");
    }
    for i in QUOTA..QUOTA + 20 {
        let outcome = store.insert_if_absent(client_key(flooder, &format!("flood-{i}")), TTL).await;
        assert!(matches!(outcome, Err(ReplayStoreError::QuotaExceeded)), "proof {i}: {outcome:?}");
        // Refused proofs are not recorded.
        let exists: i64 = redis::cmd("EXISTS")
            .arg(store.redis_key(&client_key(flooder, &format!("flood-{i}"))))
            .query_async(&mut direct().await)
            .await
            .unwrap();
        assert_eq!(exists, 0);
    }
    // A replay of a recorded proof is still a replay, not a quota refusal.
    assert_eq!(store.insert_if_absent(client_key(flooder, "flood-0"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    // Other keys are not affected.
    for client in [2, 3] {
        for i in 0..QUOTA {
            let outcome = store.insert_if_absent(client_key(client, &format!("other-{i}")), TTL).await.unwrap();
            assert_eq!(outcome, Insertion::Inserted);
        }
    }
    // Another replica with the same prefix sees the same count.
    let replica = quota_store(&prefix, QUOTA).await;
    let outcome = replica.insert_if_absent(client_key(flooder, "via-replica"), TTL).await;
    assert!(matches!(outcome, Err(ReplayStoreError::QuotaExceeded)), "{outcome:?}");
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_holds_under_concurrency() {
    require_redis!();
    let prefix = common::unique_prefix("quota-race");
    const QUOTA: u64 = 10;
    let stores = [quota_store(&prefix, QUOTA).await, quota_store(&prefix, QUOTA).await];
    let outcomes = race(&stores, |i| client_key(9, &format!("race-{i}"))).await;
    assert_eq!(outcomes, Outcomes { inserted: 10, present: 0, over_quota: RACERS - 10 });
    cleanup(&prefix).await;
}

/// Tasks that insert at the same moment, half through each of two replicas' stores.
const RACERS: usize = 64;

/// What the racers got.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcomes {
    inserted: usize,
    present: usize,
    over_quota: usize,
}

/// Runs [`RACERS`] inserts of `key_of(task)` at once, alternating between `stores`; any other
/// outcome than inserted, already present or over quota fails the test.
async fn race(stores: &[RedisReplayStore; 2], key_of: impl Fn(usize) -> ReplayKey) -> Outcomes {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut handles = Vec::with_capacity(RACERS);
    for (i, store) in stores.iter().cycle().take(RACERS).enumerate() {
        let (store, barrier, key) = (store.clone(), barrier.clone(), key_of(i));
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store.insert_if_absent(key, TTL).await
        }));
    }
    let mut outcomes = Outcomes::default();
    for handle in handles {
        match handle.await.unwrap() {
            Ok(Insertion::Inserted) => outcomes.inserted += 1,
            Ok(Insertion::AlreadyPresent) => outcomes.present += 1,
            Err(ReplayStoreError::QuotaExceeded) => outcomes.over_quota += 1,
            Err(error) => panic!("store error under concurrency: {error}"),
        }
    }
    outcomes
}

#[tokio::test]
async fn the_quota_frees_up_as_records_expire() {
    require_redis!();
    let prefix = common::unique_prefix("quota-expiry");
    let store = quota_store(&prefix, 3).await;
    let ttl = Duration::from_millis(400);
    for i in 0..3 {
        assert_eq!(store.insert_if_absent(client_key(4, &format!("a-{i}")), ttl).await.unwrap(), Insertion::Inserted);
    }
    assert!(matches!(store.insert_if_absent(client_key(4, "a-3"), ttl).await, Err(ReplayStoreError::QuotaExceeded)));
    // Once the records are gone (ttl, plus one bucket of ttl / 8 at most), so is their count.
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(store.insert_if_absent(client_key(4, "a-3"), ttl).await.unwrap(), Insertion::Inserted);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn default_prefix_and_timeout() {
    require_redis!();
    let store = RedisReplayStore::connect(REDIS_URL).await.unwrap();
    assert_eq!(store.prefix(), DEFAULT_PREFIX);
    assert_eq!(store.timeout(), DEFAULT_TIMEOUT);
    assert_eq!(store.per_key_quota(), Some(DEFAULT_PER_KEY_QUOTA));
    assert!(!store.is_circuit_open());
    assert!(store.redis_key(&key("x")).starts_with("dpop:jti:{"));
    store.ping().await.unwrap();
}

#[tokio::test]
async fn two_replicas_share_one_redis() {
    require_redis!();
    let prefix = common::unique_prefix("replicas");
    // Two stores, two connections: as two server replicas would have.
    let a = store(&prefix).await;
    let b = store(&prefix).await;

    assert_eq!(a.insert_if_absent(key("shared"), TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(b.insert_if_absent(key("shared"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    assert_eq!(b.insert_if_absent(key("from-b"), TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(a.insert_if_absent(key("from-b"), TTL).await.unwrap(), Insertion::AlreadyPresent);

    // Another prefix is another namespace.
    let other = store(&common::unique_prefix("replicas-other")).await;
    assert_eq!(other.insert_if_absent(key("shared"), TTL).await.unwrap(), Insertion::Inserted);
    cleanup(&prefix).await;
    cleanup(other.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_of_one_key_across_replicas_insert_once() {
    require_redis!();
    let prefix = common::unique_prefix("race");
    let stores = [store(&prefix).await, store(&prefix).await];
    let outcomes = race(&stores, |_| key("contended")).await;
    assert_eq!(outcomes, Outcomes { inserted: 1, present: RACERS - 1, over_quota: 0 });
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_closed_port_is_unavailable_not_a_hang() {
    // Needs no Redis: nothing listens on the port.
    let store = RedisReplayStore::builder()
        .connect(&closed_port_url().await)
        .await
        .expect("building the store does not need the server");

    for jti in ["a", "b", "c", "d"] {
        let result = tokio::time::timeout(NO_HANG, store.insert_if_absent(key(jti), TTL))
            .await
            .expect("the store answered instead of hanging");
        let error = result.expect_err("no server, no insertion");
        let kind = unavailable_kind(&error);
        assert!(
            matches!(kind, UnavailableKind::Connection | UnavailableKind::Timeout | UnavailableKind::CircuitOpen),
            "{kind:?}"
        );
    }
    let ping = tokio::time::timeout(NO_HANG, store.ping()).await.unwrap();
    assert!(ping.is_err());
}

#[tokio::test]
async fn construction_errors() {
    assert!(matches!(RedisReplayStore::connect("not a url").await, Err(ConnectError::InvalidUrl(_))));
    assert!(matches!(RedisReplayStore::connect("http://127.0.0.1:6379").await, Err(ConnectError::InvalidUrl(_))));
    // A root certificate that does not parse, or a good one without TLS: refused up front.
    assert!(matches!(
        RedisReplayStore::builder()
            .tls_root_certificate_pem("not a certificate")
            .connect("rediss://127.0.0.1:6379")
            .await,
        Err(ConnectError::Tls(_))
    ));
    assert!(matches!(
        RedisReplayStore::builder()
            .tls_root_certificate_pem(common::servers::TestCa::new().ca_pem)
            .connect(REDIS_URL)
            .await,
        Err(ConnectError::Tls(_))
    ));
    assert!(matches!(
        RedisReplayStore::builder().per_key_quota(Some(0)).connect(REDIS_URL).await,
        Err(ConnectError::ZeroQuota)
    ));
    for prefix in ["a{b:", "a}b:"] {
        assert!(matches!(
            RedisReplayStore::builder().prefix(prefix).connect(REDIS_URL).await,
            Err(ConnectError::InvalidPrefix)
        ));
    }
    assert!(matches!(
        RedisReplayStore::builder().connect_cluster(Vec::<String>::new()).await,
        Err(ConnectError::InvalidUrl(_))
    ));
    assert!(matches!(
        RedisReplayStore::builder().connect_cluster(["redis://127.0.0.1:1", "rediss://127.0.0.1:2"]).await,
        Err(ConnectError::InvalidUrl(_))
    ));
    assert!(matches!(
        RedisReplayStore::builder().timeout(Duration::ZERO).connect(REDIS_URL).await,
        Err(ConnectError::ZeroTimeout)
    ));
    // An error about a URL with a password does not repeat the password.
    let error = RedisReplayStore::connect("redis://user:s3cret-pw@127.0.0.1:6379/notanumber").await.unwrap_err();
    assert!(!error.to_string().contains("s3cret-pw"), "{error}");
    assert!(!format!("{error:?}").contains("s3cret-pw"), "{error:?}");
}

#[test]
fn connect_outside_a_tokio_runtime_is_an_error() {
    // A bare executor: no Tokio runtime, so no connection task can be spawned.
    let result = futures_lite_block_on(RedisReplayStore::connect(REDIS_URL));
    assert!(matches!(result, Err(ConnectError::NoRuntime)));
}

/// Polls a future to completion on this thread, outside any Tokio runtime.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

#[tokio::test]
async fn debug_shows_no_password() {
    // The server need not be up for this: a closed port with credentials in the URL.
    let port = closed_port_url().await;
    let url = port.replace("redis://", "redis://admin:s3cret-pw@");
    let store =
        RedisReplayStore::builder().prefix("p:").timeout(Duration::from_millis(50)).connect(&url).await.unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains("s3cret-pw"), "{debug}");
    assert!(!debug.contains("admin"), "{debug}");
    assert!(debug.contains("127.0.0.1"), "{debug}");
    assert!(debug.contains("p:"), "{debug}");
    let builder = format!("{:?}", RedisReplayStore::builder());
    assert!(builder.contains("dpop:jti:"), "{builder}");
}

const URL: &str = "https://api.example.com/orders";

#[tokio::test]
async fn through_the_verifier() {
    require_redis!();
    let prefix = common::unique_prefix("verifier");
    let verifier = DpopVerifier::builder().replay_store(store(&prefix).await).build().unwrap();
    // Replica B: its own store instance and connection, the same Redis and prefix.
    let replica = DpopVerifier::builder().replay_store(store(&prefix).await).build().unwrap();
    let request = ProofRequest::new("POST", URL);
    let client = DpopKey::generate().unwrap();

    let proof = client.proof("POST", URL).sign().unwrap();
    let verified = verifier.verify([proof.as_bytes()], &request).await.unwrap();
    assert_eq!(verified.thumbprint(), &client.thumbprint());
    assert_eq!(verifier.verify([proof.as_bytes()], &request).await.unwrap_err(), DpopError::Replayed);
    assert_eq!(replica.verify([proof.as_bytes()], &request).await.unwrap_err(), DpopError::Replayed);

    // The other way round: accepted by B, replayed to A.
    let second = client.proof("POST", URL).sign().unwrap();
    replica.verify([second.as_bytes()], &request).await.unwrap();
    assert_eq!(verifier.verify([second.as_bytes()], &request).await.unwrap_err(), DpopError::Replayed);

    // Both proofs reached Redis: two records and their client key's counter.
    assert_eq!(keys(&prefix).await.len(), 3);

    // A store that cannot answer rejects, it never accepts.
    let down = DpopVerifier::builder()
        .replay_store(
            RedisReplayStore::builder().prefix(prefix.clone()).connect(&closed_port_url().await).await.unwrap(),
        )
        .build()
        .unwrap();
    let third = client.proof("POST", URL).sign().unwrap();
    let rejected = tokio::time::timeout(NO_HANG, down.verify([third.as_bytes()], &request)).await.unwrap().unwrap_err();
    assert_eq!(rejected, DpopError::ReplayStoreUnavailable);
    assert_eq!(rejected.code().as_str(), "temporarily_unavailable");
    cleanup(&prefix).await;
}
