//! `RedisReplayStore` against the real Redis at 127.0.0.1:6379: semantics, keys, TTLs, sharing
//! between replicas, concurrency, an unreachable server, and the verifier end to end.
//!
//! Without Redis these tests are skipped (with a reason on stderr), or fail when
//! `DPOP_GUARD_REQUIRE_REDIS` is set. Each test writes under its own random prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NO_HANG, REDIS_URL, TTL, cleanup, direct, expected_name, key, keys, store};
use dpop_core::replay::{Insertion, ReplayStoreError};
use dpop_core::{DpopError, DpopKey, DpopVerifier, ProofRequest, ReplayStore};
use dpop_redis::{ConnectError, DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisReplayStore, UnavailableError, UnavailableKind};
use tokio::sync::Barrier;

/// A `redis://` URL on a loopback port where nothing listens.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("redis://127.0.0.1:{port}")
}

fn unavailable_kind(error: &ReplayStoreError) -> UnavailableKind {
    match error {
        ReplayStoreError::Unavailable(cause) => {
            cause.downcast_ref::<UnavailableError>().expect("the cause is an UnavailableError").kind()
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
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
async fn writes_one_key_under_the_prefix_and_nothing_else() {
    require_redis!();
    let prefix = common::unique_prefix("prefix");
    let store = store(&prefix).await;
    assert_eq!(store.prefix(), prefix);
    let proof = key("prefixed");

    store.insert_if_absent(proof, TTL).await.unwrap();

    let name = expected_name(&prefix, &proof);
    assert_eq!(store.redis_key(&proof), name);
    assert_eq!(keys(&prefix).await, vec![name.clone()]);
    // The proof id appears in no other key: the store wrote one key, under its prefix.
    let hex = name.strip_prefix(&prefix).unwrap();
    assert_eq!(hex.len(), 64);
    let with_id: Vec<String> =
        redis::cmd("KEYS").arg(format!("*{hex}*")).query_async(&mut direct().await).await.unwrap();
    assert_eq!(with_id, vec![name.clone()]);
    // The value is a constant: nothing from the proof is stored.
    let value: String = redis::cmd("GET").arg(&name).query_async(&mut direct().await).await.unwrap();
    assert_eq!(value, "1");
    cleanup(&prefix).await;
}

#[tokio::test]
async fn default_prefix_and_timeout() {
    require_redis!();
    let store = RedisReplayStore::connect(REDIS_URL).await.unwrap();
    assert_eq!(store.prefix(), DEFAULT_PREFIX);
    assert_eq!(store.timeout(), DEFAULT_TIMEOUT);
    assert!(store.redis_key(&key("x")).starts_with("dpop:jti:"));
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
    const TASKS: usize = 64;
    let barrier = Arc::new(Barrier::new(TASKS));

    let mut handles = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        let store = stores[i % 2].clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store.insert_if_absent(key("contended"), TTL).await
        }));
    }
    let mut inserted = 0;
    let mut present = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(Insertion::Inserted) => inserted += 1,
            Ok(Insertion::AlreadyPresent) => present += 1,
            Err(error) => panic!("store error under concurrency: {error}"),
        }
    }
    assert_eq!((inserted, present), (1, TASKS - 1));
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
        assert!(matches!(kind, UnavailableKind::Connection | UnavailableKind::Timeout), "{kind:?}");
    }
    let ping = tokio::time::timeout(NO_HANG, store.ping()).await.unwrap();
    assert!(ping.is_err());
}

#[tokio::test]
async fn construction_errors() {
    assert!(matches!(RedisReplayStore::connect("not a url").await, Err(ConnectError::InvalidUrl(_))));
    assert!(matches!(RedisReplayStore::connect("http://127.0.0.1:6379").await, Err(ConnectError::InvalidUrl(_))));
    // TLS is not compiled in: refused up front rather than failing every request.
    assert!(matches!(RedisReplayStore::connect("rediss://127.0.0.1:6379").await, Err(ConnectError::InvalidUrl(_))));
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

    // The verifier's TTL reached Redis.
    assert_eq!(keys(&prefix).await.len(), 2);

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
