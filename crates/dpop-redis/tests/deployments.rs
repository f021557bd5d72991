//! The store against throw-away `redis-server` processes started by the test: eviction
//! policies (read with `CONFIG GET`, or `INFO` where `CONFIG` is refused), TLS with a CA made
//! at test time, and a three-master Cluster.
//!
//! Without `redis-server` these tests are skipped (with a reason on stderr), or fail when
//! `DPOP_GUARD_REQUIRE_REDIS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::servers::{self, TestCa};
use common::{NO_HANG, RELAXED_TIMEOUT, TTL, client_key, key, unavailable_kind};
use dpop_core::replay::ReplayStore;
use dpop_core::replay::{Insertion, ReplayStoreError};
use dpop_redis::{ConnectError, RedisReplayStore, RedisReplayStoreBuilder, UnavailableKind};

fn builder() -> RedisReplayStoreBuilder {
    RedisReplayStore::builder().timeout(RELAXED_TIMEOUT)
}

#[tokio::test]
async fn an_evicting_policy_is_a_start_up_error_unless_accepted() {
    require_redis_server!();
    for policy in ["allkeys-lru", "volatile-lru", "volatile-ttl", "allkeys-random"] {
        let server = servers::plain(&["--maxmemory-policy", policy]);
        let error = builder().connect(&server.url()).await.expect_err("an evicting policy is refused");
        match &error {
            ConnectError::EvictingPolicy { policy: found } => assert_eq!(found, policy),
            other => panic!("{policy}: {other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains(policy) && message.contains("accept_evicting_policy"), "{message}");

        let store = builder().accept_evicting_policy(true).connect(&server.url()).await.unwrap();
        assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
        assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    }
    // The same server with noeviction is fine.
    let server = servers::plain(&["--maxmemory-policy", "noeviction"]);
    let store = builder().connect(&server.url()).await.unwrap();
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
}

#[tokio::test]
async fn the_policy_is_read_from_info_where_config_is_refused() {
    require_redis_server!();
    // Managed Redis often disables CONFIG.
    let evicting = servers::plain(&["--rename-command", "CONFIG", "", "--maxmemory-policy", "volatile-ttl"]);
    match builder().connect(&evicting.url()).await {
        Err(ConnectError::EvictingPolicy { policy }) => assert_eq!(policy, "volatile-ttl"),
        other => panic!("{other:?}"),
    }
    let fine = servers::plain(&["--rename-command", "CONFIG", ""]);
    let store = builder().connect(&fine.url()).await.unwrap();
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
}

#[tokio::test]
async fn an_unreadable_policy_is_refused_unless_accepted() {
    require_redis_server!();
    let server = servers::plain(&["--rename-command", "CONFIG", "", "--rename-command", "INFO", ""]);
    let error = builder().connect(&server.url()).await.expect_err("an unknown policy is refused");
    assert!(matches!(error, ConnectError::UnknownPolicy { .. }), "{error:?}");
    assert!(error.to_string().contains("accept_evicting_policy"), "{error}");
    let store = builder().accept_evicting_policy(true).connect(&server.url()).await.unwrap();
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
}

#[tokio::test]
async fn an_evicting_policy_found_on_reconnect_refuses_every_proof() {
    require_redis_server!();
    let mut server = servers::plain(&[]);
    let port = server.port();
    let store = RedisReplayStore::builder().timeout(Duration::from_millis(200)).connect(&server.url()).await.unwrap();
    assert_eq!(store.insert_if_absent(key("before"), TTL).await.unwrap(), Insertion::Inserted);

    // Redis restarts with an evicting policy (a failover to a differently configured server).
    server.kill();
    let _restarted = servers::plain_on(port, &["--maxmemory-policy", "allkeys-lru"]);
    let start = Instant::now();
    let mut jti = 0;
    loop {
        jti += 1;
        let outcome =
            tokio::time::timeout(NO_HANG, store.insert_if_absent(key(&format!("after-{jti}")), TTL)).await.unwrap();
        let error = outcome.expect_err("never an insertion on an evicting server");
        if unavailable_kind(&error) == UnavailableKind::EvictingPolicy {
            assert!(error.to_string().contains("allkeys-lru"), "{error}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the policy was not checked on reconnect: {error}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.is_circuit_open());
    // It stays refused: the probe keeps finding the same policy.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let error = store.insert_if_absent(key("later"), TTL).await.unwrap_err();
    assert_eq!(unavailable_kind(&error), UnavailableKind::EvictingPolicy);
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    require_redis_server!();
    let ca = TestCa::new();
    let server = servers::tls(&ca);
    let url = format!("rediss://127.0.0.1:{}", server.port());

    let store = builder().prefix("tls:").tls_root_certificate_pem(ca.ca_pem.clone()).connect(&url).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    assert!(format!("{store:?}").contains("rediss://"));

    // The name in the URL must be in the certificate too.
    let by_name = format!("rediss://localhost:{}", server.port());
    let store = builder().prefix("tls:").tls_root_certificate_pem(ca.ca_pem.clone()).connect(&by_name).await.unwrap();
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::AlreadyPresent);

    // Another CA's roots (or the system's) do not trust this server: nothing gets through.
    let stranger = TestCa::new();
    for wrong in [builder().tls_root_certificate_pem(stranger.ca_pem.clone()), builder()] {
        let store = wrong.prefix("tls:").connect(&url).await.unwrap();
        assert!(store.ping().await.is_err());
        let error = store.insert_if_absent(key("b"), TTL).await.expect_err("an untrusted server is never used");
        unavailable_kind(&error);
    }
    // Plain text to a TLS port is no answer either.
    let plain = builder().connect(&format!("redis://127.0.0.1:{}", server.port())).await.unwrap();
    plain.insert_if_absent(key("c"), TTL).await.unwrap_err();
}

#[tokio::test]
async fn cluster_inserts_replays_and_quotas() {
    require_redis_server!();
    let cluster = servers::cluster([&[], &[], &[]]);
    let store = builder().prefix("c:").per_key_quota(Some(3)).connect_cluster(cluster.urls()).await.unwrap();
    store.ping().await.unwrap();
    // Many client keys: their hash tags spread over the three masters' slots.
    for client in 0..30u8 {
        for i in 0..3 {
            let proof = client_key(client, &format!("p{i}"));
            assert_eq!(store.insert_if_absent(proof, TTL).await.unwrap(), Insertion::Inserted, "{client}/{i}");
            assert_eq!(store.insert_if_absent(proof, TTL).await.unwrap(), Insertion::AlreadyPresent);
        }
        let over = store.insert_if_absent(client_key(client, "p3"), TTL).await;
        assert!(matches!(over, Err(ReplayStoreError::QuotaExceeded)), "{client}: {over:?}");
    }
    // A second replica, connected through one node only, shares everything.
    let replica = builder().prefix("c:").per_key_quota(Some(3)).connect_cluster([&cluster.urls()[2]]).await.unwrap();
    assert_eq!(replica.insert_if_absent(client_key(5, "p0"), TTL).await.unwrap(), Insertion::AlreadyPresent);
    // Every master holds some records.
    for port in &cluster.ports {
        let mut node = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let size: i64 = redis::cmd("DBSIZE").query_async(&mut node).await.unwrap();
        assert!(size > 0, "node {port} holds no records");
    }
}

#[tokio::test]
async fn cluster_with_one_evicting_master_is_refused() {
    require_redis_server!();
    let cluster = servers::cluster([&[], &["--maxmemory-policy", "volatile-lfu"], &[]]);
    match builder().connect_cluster(cluster.urls()).await {
        Err(ConnectError::EvictingPolicy { policy }) => assert_eq!(policy, "volatile-lfu"),
        other => panic!("{other:?}"),
    }
    let store = builder().accept_evicting_policy(true).connect_cluster(cluster.urls()).await.unwrap();
    assert_eq!(store.insert_if_absent(key("a"), TTL).await.unwrap(), Insertion::Inserted);
}
