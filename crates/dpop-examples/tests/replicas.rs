//! Several server instances behind one public origin sharing one Redis, as replicas behind a load
//! balancer: a proof passes once across all of them, a store that cannot answer never lets a
//! proof through, and server nonces issued by one replica are accepted by the others.
//!
//! Needs Redis at 127.0.0.1:6379. Without it the tests are skipped (with a reason on stderr),
//! or fail when `DPOP_GUARD_REQUIRE_REDIS` is set (to anything but empty or `0`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dpop_guard::replay::ReplayKey;
use dpop_guard::{DpopGuard, DpopVerifier, NoncePolicy, nonce::NonceIssuer, nonce::NonceKey};
use dpop_redis::RedisReplayStore;
use dpop_test_support::{REDIS_ADDR, REDIS_URL, redis_or_skip};
use support::{Client, Framework, RawResponse, TestServer, send};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, watch};

/// The origin clients use; every replica checks `htu` against it, whatever port it listens on.
const ORIGIN: &str = "https://mcp.example.com";
/// A store deadline generous enough for a loaded machine: these tests are not about timeouts.
const RELAXED_TIMEOUT: Duration = Duration::from_secs(2);
/// The challenge for a replayed proof.
const REPLAYED: &str =
    r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof has already been used", algs="ES256""#;

// ---------------------------------------------------------------------------------------------
// Redis: the skip rule, key prefixes, direct access.

/// A key prefix no other test (or test run) uses.
fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let random = RandomState::new().hash_one((nanos, std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    format!("dpop-guard-replicas:{test}:{random:016x}:")
}

/// A store of its own (its own connection) on `url` with `prefix`.
async fn store_at(url: &str, prefix: &str, timeout: Duration) -> RedisReplayStore {
    RedisReplayStore::builder().prefix(prefix).timeout(timeout).connect(url).await.unwrap()
}

/// A store of its own on the shared Redis.
async fn store(prefix: &str) -> RedisReplayStore {
    store_at(REDIS_URL, prefix, RELAXED_TIMEOUT).await
}

/// A connection of the test's own, to look at what the stores wrote.
async fn direct() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Keys under `prefix`.
async fn keys(prefix: &str) -> Vec<String> {
    let mut keys = all_keys(prefix).await;
    keys.retain(|key| !key.contains("}:q")); // the store's per-key quota counters
    keys
}

/// Every key under `prefix`, quota counters included.
async fn all_keys(prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut direct().await).await.unwrap();
    keys.sort();
    keys
}

/// Deletes the keys under `prefix` (they would expire anyway; this keeps Redis tidy).
async fn cleanup(prefix: &str) {
    let keys = all_keys(prefix).await;
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut direct().await).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Replicas.

/// A replica's guard: the public origin, `store`, and optionally server nonces on every request.
fn guard(store: RedisReplayStore, nonces: Option<NonceIssuer>) -> DpopGuard {
    let mut verifier = DpopVerifier::builder().replay_store(store);
    let policy = if let Some(issuer) = nonces {
        verifier = verifier.nonces(issuer);
        NoncePolicy::Always
    } else {
        NoncePolicy::Never
    };
    let builder = support::guard_builder().verifier(verifier.build().unwrap()).public_origin(ORIGIN);
    builder.nonce_policy(policy).build().unwrap()
}

/// Starts a replica of `framework` with a store of its own on the shared Redis.
async fn replica(framework: Framework, prefix: &str) -> TestServer {
    framework.start(guard(store(prefix).await, None)).await
}

/// Two axum replicas and one actix replica, each with its own store, all on `prefix`.
async fn three_replicas(prefix: &str) -> [TestServer; 3] {
    [
        replica(Framework::Axum, prefix).await,
        replica(Framework::Axum, prefix).await,
        replica(Framework::Actix, prefix).await,
    ]
}

fn total_handler_runs(servers: &[TestServer]) -> usize {
    servers.iter().map(TestServer::handler_runs).sum()
}

/// The `error` member of a JSON error body.
fn json_error(response: &RawResponse) -> String {
    let body: serde_json::Value =
        serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("not a JSON body ({e}): {:?}", response.body));
    body["error"].as_str().unwrap_or_default().to_owned()
}

fn assert_replayed(response: &RawResponse, which: &str) {
    assert_eq!(response.status, 401, "{which}: {response:?}");
    assert_eq!(response.all("www-authenticate"), [REPLAYED], "{which}");
    assert_eq!(json_error(response), "invalid_dpop_proof", "{which}");
}

fn assert_unavailable(response: &RawResponse, which: &str) {
    assert_eq!(response.status, 503, "{which}: {response:?}");
    assert_eq!(json_error(response), "temporarily_unavailable", "{which}: {response:?}");
    assert!(response.all("www-authenticate").is_empty(), "{which}: a 503 is not a challenge: {response:?}");
}

/// Test 1's scenario: a proof accepted by replica A is a replay at B and at C. Returns the
/// client and the `jti` of the proof.
async fn accepted_once_across_three_replicas(prefix: &str) -> (Client, String) {
    let servers = three_replicas(prefix).await;
    let client = Client::new(ORIGIN.to_owned());
    let jti = format!("replicas-{:016x}", RandomState::new().hash_one(prefix));
    let proof = client.key.proof("POST", &client.url("/mcp")).access_token(&client.token).jti(&jti).sign().unwrap();
    let request = client.with_proof("POST", "/mcp", &proof);

    let first = send(servers[0].addr, &request).await;
    assert_eq!(first.status, 200, "A: {first:?}");
    assert_eq!(first.body, format!("dpop {}", client.key.thumbprint()));
    assert_replayed(&send(servers[1].addr, &request).await, "B (axum)");
    assert_replayed(&send(servers[2].addr, &request).await, "C (actix)");
    // Back at A too: A's own earlier acceptance is in the shared store as well.
    assert_replayed(&send(servers[0].addr, &request).await, "A again");

    assert_eq!(servers[0].handler_runs(), 1);
    assert_eq!(total_handler_runs(&servers), 1, "the handler ran exactly once over all replicas");
    (client, jti)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_accepted_by_one_replica_is_a_replay_at_the_others() {
    if !redis_or_skip("a_proof_accepted_by_one_replica_is_a_replay_at_the_others").await {
        return;
    }
    let prefix = unique_prefix("replay");
    accepted_once_across_three_replicas(&prefix).await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_proof_sent_64_times_at_once_to_three_replicas_passes_once() {
    const SUBMISSIONS: usize = 64;
    if !redis_or_skip("one_proof_sent_64_times_at_once_to_three_replicas_passes_once").await {
        return;
    }
    let prefix = unique_prefix("concurrent");
    let servers = three_replicas(&prefix).await;
    let addrs: Vec<SocketAddr> = servers.iter().map(|server| server.addr).collect();
    let client = Client::new(ORIGIN.to_owned());
    let request = Arc::new(client.valid("POST", "/mcp"));
    let barrier = Arc::new(Barrier::new(SUBMISSIONS));
    let tasks: Vec<_> = (0..SUBMISSIONS)
        .map(|i| {
            let (addr, request, barrier) = (addrs[i % addrs.len()], Arc::clone(&request), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                send(addr, &request).await
            })
        })
        .collect();
    let mut statuses = Vec::with_capacity(SUBMISSIONS);
    for task in tasks {
        let response = task.await.unwrap();
        if response.status == 401 {
            assert_eq!(response.all("www-authenticate"), [REPLAYED]);
        }
        statuses.push(response.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), SUBMISSIONS - 1, "{statuses:?}");
    assert_eq!(total_handler_runs(&servers), 1);
    assert_eq!(keys(&prefix).await.len(), 1, "one record for one proof");
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_a_503_never_a_pass() {
    if !redis_or_skip("an_unreachable_redis_is_a_503_never_a_pass").await {
        return;
    }
    // A port nothing listens on: bound, then released.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("redis://127.0.0.1:{closed_port}");
    let prefix = unique_prefix("unreachable");
    for framework in Framework::ALL {
        // Connecting succeeds (the store keeps trying); every proof is then refused.
        let store = store_at(&url, &prefix, dpop_redis::DEFAULT_TIMEOUT).await;
        assert!(store.ping().await.is_err(), "{framework:?}: nothing listens on {url}");
        let server = framework.start(guard(store, None)).await;
        let client = Client::new(ORIGIN.to_owned());
        for attempt in 0..3 {
            let response = send(server.addr, &client.valid("POST", "/mcp")).await;
            assert_unavailable(&response, &format!("{framework:?}, attempt {attempt}"));
        }
        assert_eq!(server.handler_runs(), 0, "{framework:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy in front of Redis that can be cut and restored.

/// A proxy on 127.0.0.1 forwarding to [`REDIS_ADDR`]. While cut it closes every open
/// connection and drops new ones as soon as they are accepted. Its tasks end with the test's
/// runtime.
struct Proxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    /// Forwarding tasks still running.
    live: Arc<AtomicUsize>,
}

/// Counts a forwarding task as live until it is dropped.
struct LiveConnection(Arc<AtomicUsize>);

impl LiveConnection {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(live))
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Proxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let live = Arc::new(AtomicUsize::new(0));
        let (state, counter) = (up.subscribe(), Arc::clone(&live));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*state.borrow() {
                    drop(client);
                    continue;
                }
                // Counted before the task exists, so `cut` waits for it too.
                let connection = LiveConnection::new(&counter);
                tokio::spawn(forward(client, state.clone(), connection));
            }
        });
        Self { addr, up, live }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Closes every connection and refuses new ones; returns once no byte can pass any more.
    async fn cut(&self) {
        self.up.send_replace(false);
        for _ in 0..1_000 {
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("proxy: connections still open after the cut");
    }

    /// Forwards again.
    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// Forwards one connection both ways until either side closes or the proxy is cut.
async fn forward(client: TcpStream, mut state: watch::Receiver<bool>, _live: LiveConnection) {
    let Ok(upstream) = TcpStream::connect(REDIS_ADDR).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
    tokio::select! {
        // Checked first on every wake-up: a cut made while connecting upstream forwards nothing.
        biased;
        _ = state.wait_for(|up| !*up) => {}
        _ = tokio::io::copy(&mut client_rx, &mut upstream_tx) => {}
        _ = tokio::io::copy(&mut upstream_rx, &mut client_tx) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_503_while_redis_is_cut_off_and_recovers_by_itself() {
    // Recovery is designed to take about a second (reconnect backoff of at most 1 s, stale
    // connections replaced at most once a second); this bound leaves room for a loaded machine.
    const RECOVERY_ATTEMPTS: usize = 100;
    const PAUSE: Duration = Duration::from_millis(100);
    if !redis_or_skip("a_replica_serves_503_while_redis_is_cut_off_and_recovers_by_itself").await {
        return;
    }

    let prefix = unique_prefix("recovery");
    let proxy = Proxy::start().await;
    let server = Framework::Axum.start(guard(store_at(&proxy.url(), &prefix, RELAXED_TIMEOUT).await, None)).await;
    let client = Client::new(ORIGIN.to_owned());

    let up = send(server.addr, &client.valid("POST", "/mcp")).await;
    assert_eq!(up.status, 200, "through the proxy: {up:?}");
    assert_eq!(server.handler_runs(), 1);

    proxy.cut().await;
    for attempt in 0..3 {
        let response = send(server.addr, &client.valid("POST", "/mcp")).await;
        assert_unavailable(&response, &format!("cut off, attempt {attempt}"));
    }
    assert_eq!(server.handler_runs(), 1, "no handler ran while Redis was cut off");

    proxy.restore();
    let mut seen = Vec::new();
    for _ in 0..RECOVERY_ATTEMPTS {
        let response = send(server.addr, &client.valid("POST", "/mcp")).await;
        seen.push(response.status);
        match response.status {
            200 => break,
            503 => assert_unavailable(&response, "recovering"),
            _ => panic!("while recovering, only 503 or 200: {response:?}"),
        }
        tokio::time::sleep(PAUSE).await;
    }
    assert_eq!(seen.last(), Some(&200), "no recovery after {RECOVERY_ATTEMPTS} attempts: {seen:?}");
    assert_eq!(server.handler_runs(), 2);
    assert_eq!(keys(&prefix).await.len(), 2, "the two accepted proofs, and only them, are recorded");
    cleanup(&prefix).await;
}

// ---------------------------------------------------------------------------------------------
// Nonces.

/// The shared nonce key of the deployment's configuration.
const SHARED_SECRET: [u8; 32] = *b"replicas-share-this-nonce-secret";
const OTHER_SECRET: [u8; 32] = *b"another-deployment-nonce-secret!";

/// A replica requiring nonces on every request, its issuer built from `secret` (as each
/// process would from its configuration: not a clone of another replica's issuer).
async fn nonce_replica(prefix: &str, secret: [u8; 32]) -> TestServer {
    let issuer = NonceIssuer::new(NonceKey::new(1, secret));
    Framework::Axum.start(guard(store(prefix).await, Some(issuer))).await
}

fn assert_use_nonce(response: &RawResponse, which: &str) -> String {
    assert_eq!(response.status, 401, "{which}: {response:?}");
    let challenge = response.all("www-authenticate");
    assert_eq!(challenge.len(), 1, "{which}: {challenge:?}");
    assert!(challenge[0].starts_with(r#"DPoP error="use_dpop_nonce""#), "{which}: {challenge:?}");
    assert_eq!(json_error(response), "use_dpop_nonce", "{which}");
    let nonces = response.all("dpop-nonce");
    assert_eq!(nonces.len(), 1, "{which}: {response:?}");
    nonces[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_from_one_replica_is_accepted_by_another_with_the_same_key() {
    if !redis_or_skip("a_nonce_from_one_replica_is_accepted_by_another_with_the_same_key").await {
        return;
    }
    let prefix = unique_prefix("nonces");
    let a = nonce_replica(&prefix, SHARED_SECRET).await;
    let b = nonce_replica(&prefix, SHARED_SECRET).await;
    let foreign = nonce_replica(&prefix, OTHER_SECRET).await;
    let client = Client::new(ORIGIN.to_owned());
    let url = client.url("/mcp");
    let with_nonce = |nonce: &str| {
        let proof = client.key.proof("POST", &url).access_token(&client.token).nonce(nonce).sign().unwrap();
        client.with_proof("POST", "/mcp", &proof)
    };

    // A asks for a nonce; B accepts A's nonce.
    let nonce = assert_use_nonce(&send(a.addr, &client.valid("POST", "/mcp")).await, "A without a nonce");
    let retry = with_nonce(&nonce);
    let response = send(b.addr, &retry).await;
    assert_eq!(response.status, 200, "B with A's nonce: {response:?}");
    // The proof is spent everywhere, nonce or not.
    assert_replayed(&send(a.addr, &retry).await, "the retry replayed to A");

    // A replica with another key refuses A's nonce, and offers its own.
    let own = assert_use_nonce(&send(foreign.addr, &with_nonce(&nonce)).await, "another key, A's nonce");
    assert_ne!(own, nonce);
    let response = send(foreign.addr, &with_nonce(&own)).await;
    assert_eq!(response.status, 200, "another key, its own nonce: {response:?}");

    assert_eq!((a.handler_runs(), b.handler_runs(), foreign.handler_runs()), (0, 1, 1));
    cleanup(&prefix).await;
}

// ---------------------------------------------------------------------------------------------
// Expiry.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_records_expire_within_the_replay_ttl() {
    if !redis_or_skip("replay_records_expire_within_the_replay_ttl").await {
        return;
    }
    let prefix = unique_prefix("expiry");
    let (client, jti) = accepted_once_across_three_replicas(&prefix).await;

    // The record of that proof, named independently of the replicas' stores.
    let probe = store(&prefix).await;
    let name = probe.redis_key(&ReplayKey::new(&client.key.thumbprint(), &jti));
    assert_eq!(keys(&prefix).await, std::slice::from_ref(&name), "one record: replays write nothing");

    // The replicas' verifiers keep the default limits: 300 s window, 300 s skew, 1 s margin.
    let ttl = guard(probe, None).verifier().replay_ttl();
    assert_eq!(ttl, Duration::from_secs(601));
    let pttl: i64 = redis::cmd("PTTL").arg(&name).query_async(&mut direct().await).await.unwrap();
    assert!(pttl > 0, "the record must expire (PTTL {pttl}: -1 = no expiry, -2 = missing)");
    let max = i64::try_from(ttl.as_millis()).unwrap();
    assert!(pttl <= max, "PTTL {pttl} ms exceeds the replay TTL {max} ms");
    cleanup(&prefix).await;
}
