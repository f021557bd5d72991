//! Faults between the store and Redis, injected by a TCP proxy on 127.0.0.1: a cut connection,
//! refused and blackholed reconnects, a slow server, a silently dead connection, a server down
//! at start-up. The store must answer `Unavailable` (never `Inserted`) while Redis cannot be
//! reached, never hang, and recover by itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Accept, NO_HANG, Proxy, TTL, cleanup, direct, key, keys};
use dpop_core::replay::ReplayStore;
use dpop_core::replay::{Insertion, ReplayKey, ReplayStoreError};
use dpop_redis::{RedisReplayStore, UnavailableError, UnavailableKind};

/// The store's deadline in these tests: short, so faults show quickly.
const TIMEOUT: Duration = Duration::from_millis(200);
/// How long the store may take to recover once Redis is reachable again.
const RECOVERY: Duration = Duration::from_secs(5);

async fn store_via(proxy: &Proxy, prefix: &str) -> RedisReplayStore {
    RedisReplayStore::builder().prefix(prefix).timeout(TIMEOUT).connect(&proxy.url()).await.unwrap()
}

/// One insert, bounded: a hang fails the test.
async fn insert(store: &RedisReplayStore, key: ReplayKey) -> Result<Insertion, ReplayStoreError> {
    tokio::time::timeout(NO_HANG, store.insert_if_absent(key, TTL))
        .await
        .expect("the store answered instead of hanging")
}

fn kind(error: &ReplayStoreError) -> UnavailableKind {
    match error {
        ReplayStoreError::Unavailable(cause) => {
            cause.downcast_ref::<UnavailableError>().expect("the cause is an UnavailableError").kind()
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Inserts fresh keys until one is inserted; panics if that takes longer than [`RECOVERY`].
/// Returns the number of attempts.
async fn recovers(store: &RedisReplayStore, label: &str) -> usize {
    let start = Instant::now();
    for attempt in 1.. {
        let fresh = key(&format!("{label}-recovery-{attempt}"));
        match insert(store, fresh).await {
            Ok(Insertion::Inserted) => return attempt,
            Ok(Insertion::AlreadyPresent) => panic!("a fresh key reported as present"),
            Err(error) => {
                kind(&error);
                assert!(start.elapsed() < RECOVERY, "{label}: no recovery within {RECOVERY:?}: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    unreachable!()
}

#[tokio::test]
async fn connection_cut_then_refused_then_blackholed_then_recovered() {
    require_redis!();
    let prefix = common::unique_prefix("cut");
    let proxy = Proxy::start().await;
    let store = store_via(&proxy, &prefix).await;
    assert_eq!(insert(&store, key("before")).await.unwrap(), Insertion::Inserted);

    // Redis goes away: open connections drop, new ones are refused.
    proxy.accept(Accept::Refuse);
    proxy.cut();
    let mut outage_keys = Vec::new();
    for i in 0..8 {
        let k = key(&format!("refused-{i}"));
        outage_keys.push(k);
        let error = insert(&store, k).await.expect_err("no Redis, no insertion");
        kind(&error);
    }

    // Worse: connection attempts now hang (a blackhole), and time out.
    proxy.accept(Accept::Blackhole);
    for i in 0..4 {
        let k = key(&format!("blackholed-{i}"));
        outage_keys.push(k);
        let error = insert(&store, k).await.expect_err("no Redis, no insertion");
        kind(&error);
    }

    // Redis is back: the store reconnects by itself.
    proxy.accept(Accept::Forward);
    proxy.cut(); // drop the blackholed connection attempts
    recovers(&store, "cut").await;
    assert_eq!(
        insert(&store, key("before")).await.unwrap(),
        Insertion::AlreadyPresent,
        "records from before the outage are still there"
    );
    // Nothing written during the outage.
    let mut redis = direct().await;
    for k in outage_keys {
        let exists: i64 = redis::cmd("EXISTS").arg(store.redis_key(&k)).query_async(&mut redis).await.unwrap();
        assert_eq!(exists, 0);
    }
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_slow_redis_is_unavailable_not_a_hang() {
    require_redis!();
    let prefix = common::unique_prefix("slow");
    let proxy = Proxy::start().await;
    let store = store_via(&proxy, &prefix).await;
    assert_eq!(insert(&store, key("warm")).await.unwrap(), Insertion::Inserted);

    // Every request now reaches Redis well after the store's deadline.
    proxy.delay(TIMEOUT * 4);
    let late = key("late");
    let error = insert(&store, late).await.expect_err("a late reply is no reply");
    assert_eq!(kind(&error), UnavailableKind::Timeout);

    // The late SET still lands: wait for it (on a connection of our own)...
    let name = store.redis_key(&late);
    let mut redis = direct().await;
    let start = Instant::now();
    loop {
        let exists: i64 = redis::cmd("EXISTS").arg(&name).query_async(&mut redis).await.unwrap();
        if exists == 1 {
            break;
        }
        assert!(start.elapsed() < RECOVERY, "the delayed SET never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...so the rejected proof cannot be accepted on a retry either (fail closed).
    proxy.delay(Duration::ZERO);
    let start = Instant::now();
    loop {
        match insert(&store, late).await {
            Ok(insertion) => {
                assert_eq!(insertion, Insertion::AlreadyPresent);
                break;
            }
            Err(error) => {
                kind(&error);
                assert!(start.elapsed() < RECOVERY, "no recovery: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    recovers(&store, "slow").await;
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_silently_dead_connection_is_replaced() {
    require_redis!();
    let prefix = common::unique_prefix("frozen");
    let proxy = Proxy::start().await;
    let store = store_via(&proxy, &prefix).await;
    assert_eq!(insert(&store, key("warm")).await.unwrap(), Insertion::Inserted);
    let accepted = proxy.accepted();

    // The open connection stays open but nothing gets through, ever: no error, only silence.
    // New connections work.
    proxy.freeze();
    let error = insert(&store, key("frozen-0")).await.expect_err("no reply, no insertion");
    assert_eq!(kind(&error), UnavailableKind::Timeout);

    let attempts = recovers(&store, "frozen").await;
    assert!(attempts > 1, "the first attempts met the dead connection");
    assert!(proxy.accepted() > accepted, "recovery went through a new connection");
    cleanup(&prefix).await;
}

#[tokio::test]
async fn redis_down_at_start_up_then_up() {
    require_redis!();
    let prefix = common::unique_prefix("late-start");
    let proxy = Proxy::start().await;
    proxy.accept(Accept::Refuse);

    // Building the store does not need the server...
    let store = tokio::time::timeout(NO_HANG, store_via(&proxy, &prefix)).await.unwrap();
    assert!(store.ping().await.is_err(), "ping tells the server is down");
    // ...but no proof gets through while it is down.
    for i in 0..3 {
        let error = insert(&store, key(&format!("early-{i}"))).await.expect_err("no Redis, no insertion");
        kind(&error);
    }

    proxy.accept(Accept::Forward);
    recovers(&store, "late-start").await;
    store.ping().await.unwrap();
    // One record and its counter.
    assert_eq!(keys(&prefix).await.len(), 2);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn an_outage_opens_the_circuit_refusals_do_not_wait_and_it_closes_again() {
    require_redis!();
    let prefix = common::unique_prefix("circuit");
    let proxy = Proxy::start().await;
    let store = store_via(&proxy, &prefix).await;
    assert_eq!(insert(&store, key("before")).await.unwrap(), Insertion::Inserted);
    assert!(!store.is_circuit_open());

    // Redis goes silent: open connections swallow everything, new ones hang.
    proxy.accept(Accept::Blackhole);
    proxy.freeze();
    let mut outage_keys = Vec::new();
    let mut waited = 0;
    while !store.is_circuit_open() {
        let k = key(&format!("timed-out-{waited}"));
        outage_keys.push(k);
        let error = insert(&store, k).await.expect_err("no Redis, no insertion");
        assert_eq!(kind(&error), UnavailableKind::Timeout);
        waited += 1;
        assert!(waited <= 3, "the circuit did not open after {waited} timeouts in a row");
    }
    // From now on every proof is refused without going to Redis (no Timeout: no waiting).
    for i in 0..500 {
        let k = key(&format!("refused-{i}"));
        outage_keys.push(k);
        let error = insert(&store, k).await.expect_err("no Redis, no insertion");
        assert_eq!(kind(&error), UnavailableKind::CircuitOpen, "refusal {i}: {error}");
    }
    assert!(store.ping().await.is_err());

    // Redis is back: the probe closes the circuit without a restart.
    proxy.accept(Accept::Forward);
    proxy.cut();
    recovers(&store, "circuit").await;
    assert!(!store.is_circuit_open());
    assert_eq!(insert(&store, key("before")).await.unwrap(), Insertion::AlreadyPresent);
    let mut redis = direct().await;
    for k in outage_keys {
        let exists: i64 = redis::cmd("EXISTS").arg(store.redis_key(&k)).query_async(&mut redis).await.unwrap();
        assert_eq!(exists, 0, "nothing was written during the outage");
    }
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_cut_connection_opens_the_circuit_at_once() {
    require_redis!();
    let prefix = common::unique_prefix("circuit-cut");
    let proxy = Proxy::start().await;
    let store = store_via(&proxy, &prefix).await;
    assert_eq!(insert(&store, key("before")).await.unwrap(), Insertion::Inserted);
    proxy.accept(Accept::Refuse);
    proxy.cut();
    // The first failure is the connection error itself; the circuit is then open.
    let error = insert(&store, key("first")).await.expect_err("no Redis, no insertion");
    assert!(matches!(kind(&error), UnavailableKind::Connection | UnavailableKind::CircuitOpen), "{error}");
    assert!(store.is_circuit_open());
    let error = insert(&store, key("second")).await.expect_err("no Redis, no insertion");
    assert_eq!(kind(&error), UnavailableKind::CircuitOpen);
    proxy.accept(Accept::Forward);
    recovers(&store, "circuit-cut").await;
    cleanup(&prefix).await;
}
