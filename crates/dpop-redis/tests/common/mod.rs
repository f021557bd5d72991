//! Shared test helpers: the "is Redis there?" gate, unique key prefixes, direct Redis access,
//! and a fault-injecting TCP proxy in front of Redis.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod servers;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dpop_core::Thumbprint;
use dpop_core::replay::{ReplayKey, ReplayStoreError};
use dpop_redis::{RedisReplayStore, UnavailableError, UnavailableKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use dpop_test_support::{REDIS_ADDR, REDIS_URL, redis_or_skip};
/// TTL of records written by tests that do not test expiry: leftovers of a failed test go away.
pub const TTL: Duration = Duration::from_secs(60);
/// Generous deadline for tests that are not about timeouts (a loaded CI machine is slow).
pub const RELAXED_TIMEOUT: Duration = Duration::from_secs(2);
/// Outer bound on any single operation: an error is fine, a hang is not.
pub const NO_HANG: Duration = Duration::from_secs(10);

/// Skips the calling test (returns from it) when Redis is not there; see [`redis_or_skip`].
#[macro_export]
macro_rules! require_redis {
    () => {
        if !common::redis_or_skip(&common::test_name({
            fn here() {}
            std::any::type_name_of_val(&here)
        }))
        .await
        {
            return;
        }
    };
}

/// `store::some_test::{{closure}}::here` → `store::some_test`.
pub fn test_name(path: &str) -> String {
    path.trim_end_matches("::here").trim_end_matches("::{{closure}}").to_owned()
}

/// What kind of outage an `Unavailable` refusal reports (panics on any other outcome).
pub fn unavailable_kind(error: &ReplayStoreError) -> UnavailableKind {
    match error {
        ReplayStoreError::Unavailable(cause) => {
            cause.downcast_ref::<UnavailableError>().expect("the cause is an UnavailableError").kind()
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A key prefix no other test (or test run) uses.
pub fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let random = RandomState::new().hash_one((nanos, std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    format!("dpop-redis-test:{test}:{random:016x}:")
}

/// A replay key for test proof `jti` of a fixed client key.
pub fn key(jti: &str) -> ReplayKey {
    client_key(7, jti)
}

/// A replay key for test proof `jti` of client key number `client`.
pub fn client_key(client: u8, jti: &str) -> ReplayKey {
    ReplayKey::new(&Thumbprint::from_bytes([client; 32]), jti)
}

/// The record's key name computed independently of the store:
/// prefix + `{` hex(first 16 bytes of the client id) `}:` hex(proof id).
pub fn expected_name(prefix: &str, key: &ReplayKey) -> String {
    let client: String = key.client_id()[..16].iter().map(|b| format!("{b:02x}")).collect();
    let proof: String = key.proof_id().iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{{{client}}}:{proof}")
}

/// A store on the real Redis with `prefix` and a relaxed timeout.
pub async fn store(prefix: &str) -> RedisReplayStore {
    RedisReplayStore::builder().prefix(prefix).timeout(RELAXED_TIMEOUT).connect(REDIS_URL).await.unwrap()
}

/// A connection of the test's own, to look at what the store wrote.
pub async fn direct() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Keys under `prefix`.
pub async fn keys(prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut direct().await).await.unwrap();
    keys.sort();
    keys
}

/// Deletes the keys under `prefix`.
pub async fn cleanup(prefix: &str) {
    let keys = keys(prefix).await;
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut direct().await).await.unwrap();
    }
}

/// What the proxy does with a connection it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Connect to Redis and forward both ways.
    Forward,
    /// Close it at once.
    Refuse,
    /// Keep it open, read nothing, send nothing.
    Blackhole,
}

#[derive(Clone, Copy, Debug)]
struct Control {
    accept: Accept,
    /// Delay before each chunk from the client is forwarded (a slow Redis).
    delay: Duration,
    /// Connections with a smaller id are closed.
    cut_below: u64,
    /// Connections with a smaller id swallow what the client sends and never answer.
    freeze_below: u64,
}

/// A TCP proxy on 127.0.0.1 in front of [`REDIS_ADDR`] that can cut, refuse, blackhole,
/// freeze or slow down connections. Its tasks end with the test's runtime.
pub struct Proxy {
    addr: SocketAddr,
    control: watch::Sender<Control>,
    next_id: Arc<AtomicU64>,
}

impl Proxy {
    /// A proxy in front of [`REDIS_ADDR`].
    pub async fn start() -> Self {
        Self::start_to(REDIS_ADDR.to_owned()).await
    }

    /// A proxy in front of `upstream` (`host:port`).
    pub async fn start_to(upstream: String) -> Self {
        let upstream: Arc<str> = upstream.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (control, _) =
            watch::channel(Control { accept: Accept::Forward, delay: Duration::ZERO, cut_below: 0, freeze_below: 0 });
        let next_id = Arc::new(AtomicU64::new(0));
        let rx = control.subscribe();
        let ids = next_id.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = ids.fetch_add(1, Ordering::SeqCst);
                let control = rx.clone();
                let accept = control.borrow().accept;
                match accept {
                    Accept::Refuse => drop(client),
                    Accept::Blackhole => {
                        tokio::spawn(hold(id, client, control));
                    }
                    Accept::Forward => {
                        tokio::spawn(forward(id, client, control, upstream.clone()));
                    }
                }
            }
        });
        Self { addr, control, next_id }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// What happens to connections accepted from now on.
    pub fn accept(&self, accept: Accept) {
        self.control.send_modify(|c| c.accept = accept);
    }

    /// Slows every forwarded chunk, on open connections too.
    pub fn delay(&self, delay: Duration) {
        self.control.send_modify(|c| c.delay = delay);
    }

    /// Closes every open connection.
    pub fn cut(&self) {
        let below = self.next_id.load(Ordering::SeqCst);
        self.control.send_modify(|c| c.cut_below = below);
    }

    /// Makes every open connection silently dead: it stays open but nothing gets through.
    pub fn freeze(&self) {
        let below = self.next_id.load(Ordering::SeqCst);
        self.control.send_modify(|c| c.freeze_below = below);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.next_id.load(Ordering::SeqCst)
    }
}

/// Resolves when connection `id` must close (or the proxy is gone).
async fn cut(id: u64, mut control: watch::Receiver<Control>) {
    loop {
        if control.borrow_and_update().cut_below > id {
            return;
        }
        if control.changed().await.is_err() {
            return;
        }
    }
}

async fn hold(id: u64, client: TcpStream, control: watch::Receiver<Control>) {
    cut(id, control).await;
    drop(client);
}

async fn forward(id: u64, client: TcpStream, control: watch::Receiver<Control>, upstream: Arc<str>) {
    let Ok(upstream) = TcpStream::connect(&*upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
    let settings = control.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_rx.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            let Control { delay, freeze_below, .. } = *settings.borrow();
            if freeze_below > id {
                continue;
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            upstream_tx.write_all(&buf[..n]).await?;
        }
    };
    let down = tokio::io::copy(&mut upstream_rx, &mut client_tx);
    tokio::select! {
        _ = up => {}
        _ = down => {}
        () = cut(id, control) => {}
    }
}
