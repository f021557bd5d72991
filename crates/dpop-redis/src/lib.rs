//! A Redis / Valkey [`ReplayStore`] for `dpop-core`: replay protection shared by every replica.
//!
//! With one in-memory store per process, a proof accepted by replica A can be replayed to
//! replica B. [`RedisReplayStore`] records every accepted proof in one Redis (or Valkey) server
//! that all replicas share, so a proof is accepted once across the whole deployment.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use dpop_core::DpopVerifier;
//! use dpop_redis::RedisReplayStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisReplayStore::builder()
//!     .prefix("my-api:dpop:")
//!     .timeout(Duration::from_millis(100))
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! let verifier = DpopVerifier::builder().replay_store(store).build()?;
//! # let _ = verifier;
//! # Ok(())
//! # }
//! ```
//!
//! # What it sends
//!
//! One command per proof, atomic on the server: `SET <prefix><hex proof id> 1 NX PX <ttl ms>`.
//! `OK` means the proof is fresh ([`Insertion::Inserted`]), nil means it was seen before
//! ([`Insertion::AlreadyPresent`]). The key is the hex form of
//! [`ReplayKey::proof_id`](dpop_core::replay::ReplayKey::proof_id), a SHA-256 over the key
//! thumbprint and `jti`: bytes from the client never form a Redis key. Redis expires each key
//! itself, so nothing needs sweeping.
//!
//! # Failures are rejections
//!
//! Every operation has a deadline ([`DEFAULT_TIMEOUT`], see
//! [`RedisReplayStoreBuilder::timeout`]). A timeout, a connection error, an error reply or a
//! reply of the wrong shape is [`ReplayStoreError::Unavailable`] (the verifier answers 503
//! `temporarily_unavailable`) and a `tracing::error!` event: a store that cannot answer never
//! lets a proof through.
//!
//! A timed-out `SET` may still have reached Redis. The proof is then recorded although it was
//! rejected, and sending the same proof again is answered as a replay: clients sign a new
//! proof for every attempt anyway (RFC 9449 §4.1).
//!
//! # Connection and recovery
//!
//! The store talks over one multiplexed connection ([`redis::aio::ConnectionManager`]) shared
//! by all clones of the store; concurrent operations are pipelined on it. When Redis is down or
//! the connection breaks, every operation fails within the timeout: during an outage each one
//! waits on the shared reconnection attempt (a short exponential backoff, at most one second
//! between attempts), so it usually takes the whole timeout and is reported as a timeout. The
//! store recovers by itself once Redis answers again.
//!
//! A connection can also die silently (a network partition, a stateful firewall that forgot
//! it, a hung server): requests then time out without any error, and the connection manager
//! alone would keep it. So after three failed operations in a row the store discards its
//! connection and opens a new one, at most once a second.
//!
//! **Redis down at start-up.** [`RedisReplayStoreBuilder::connect`] fails on a bad URL (or
//! configuration), but not when the server is unreachable: it tries once, logs a
//! `tracing::warn!` if that fails, and returns a store that keeps reconnecting and rejects
//! proofs until Redis is back. A replica thus starts, and serves 503s for DPoP requests, while
//! Redis is briefly away. To fail fast instead (or for a readiness probe), call
//! [`RedisReplayStore::ping`] after connecting.
//!
//! The store needs a Tokio runtime: build it and use it inside one.
//!
//! # Crypto backend
//!
//! The features `aws-lc-rs` (default), `ring` and `rustcrypto` pick `dpop-core`'s signature
//! backend, as in the `dpop-guard` facade.

#![forbid(unsafe_code)]

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use dpop_core::replay::{Insertion, ReplayFuture, ReplayKey, ReplayStore, ReplayStoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{Client, Cmd, ConnectionAddr, IntoConnectionInfo, Value};

/// The default key prefix: keys are `dpop:jti:<64 hex digits>`.
pub const DEFAULT_PREFIX: &str = "dpop:jti:";

/// The default deadline for one store operation, connection wait included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// Consecutive failed operations after which the connection is replaced.
const REPLACE_AFTER_FAILURES: u32 = 3;
/// The connection is replaced at most this often.
const MIN_REPLACE_INTERVAL: Duration = Duration::from_secs(1);
/// Deadline of one TCP connect and handshake.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Backoff between reconnect attempts: from this...
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// ...doubling up to this.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Attempts in one reconnect round; the next failed operation starts another round.
const RECONNECT_ATTEMPTS: usize = 4;
/// Redis refuses expiries that overflow its clock; no replay TTL comes near this.
const MAX_TTL_MS: u64 = (i64::MAX / 4) as u64;

/// A [`ReplayStore`] on Redis or Valkey, shared by every replica that uses the same server and
/// prefix. Cheap to clone: clones share one connection.
///
/// Build it with [`RedisReplayStore::builder`] or [`RedisReplayStore::connect`].
#[derive(Clone)]
pub struct RedisReplayStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Connection parameters, kept to open a replacement connection.
    client: Client,
    manager_config: ConnectionManagerConfig,
    connection: RwLock<Connection>,
    /// Failed operations in a row, on any connection.
    failures: AtomicU32,
    prefix: String,
    timeout: Duration,
}

struct Connection {
    manager: ConnectionManager,
    /// Incremented on each replacement, so that late failures of an old connection cannot
    /// replace the new one.
    generation: u64,
    opened: Instant,
}

impl RedisReplayStore {
    /// Configures a store: prefix [`DEFAULT_PREFIX`], timeout [`DEFAULT_TIMEOUT`].
    pub fn builder() -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder { prefix: DEFAULT_PREFIX.to_owned(), timeout: DEFAULT_TIMEOUT }
    }

    /// A store with the default prefix and timeout on the server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, `valkey://…`, `redis+unix:///path`).
    ///
    /// Succeeds while the server is down: see [`RedisReplayStoreBuilder::connect`].
    ///
    /// # Errors
    ///
    /// [`ConnectError`] for a URL that does not parse or is not supported, or outside a Tokio
    /// runtime.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::builder().connect(url).await
    }

    /// The prefix of every key this store writes.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The deadline of one operation.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The Redis key that records `key`: the prefix and the 64 hex digits of its proof id.
    #[must_use]
    pub fn redis_key(&self, key: &ReplayKey) -> String {
        let mut name = String::with_capacity(self.inner.prefix.len() + 64);
        name.push_str(&self.inner.prefix);
        for byte in key.proof_id() {
            // Writing to a String cannot fail.
            let _ = write!(name, "{byte:02x}");
        }
        name
    }

    /// Checks that Redis answers a `PING` within the timeout, connecting if needed.
    ///
    /// For start-up checks and readiness probes; inserts do not need it.
    ///
    /// # Errors
    ///
    /// [`UnavailableError`] when Redis does not answer in time or answers with an error.
    pub async fn ping(&self) -> Result<(), UnavailableError> {
        self.run(redis::cmd("PING")).await.map(|_| ())
    }

    async fn insert(&self, key: ReplayKey, ttl: Duration) -> Result<Insertion, UnavailableError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.redis_key(&key)).arg(1).arg("NX").arg("PX").arg(ttl_millis(ttl));
        let (reply, generation) = self.send(&cmd).await?;
        match reply {
            Value::Okay => Ok(Insertion::Inserted),
            Value::SimpleString(status) if status == "OK" => Ok(Insertion::Inserted),
            Value::Nil => Ok(Insertion::AlreadyPresent),
            other => Err(self.fail(generation, UnavailableError::new(Kind::UnexpectedReply, describe(&other), None))),
        }
    }

    async fn run(&self, cmd: Cmd) -> Result<Value, UnavailableError> {
        self.send(&cmd).await.map(|(reply, _)| reply)
    }

    /// Sends one command within the timeout; failures are logged and counted.
    async fn send(&self, cmd: &Cmd) -> Result<(Value, u64), UnavailableError> {
        if tokio::runtime::Handle::try_current().is_err() {
            // Not counted: replacing the connection needs the runtime too.
            let error = UnavailableError::new(Kind::Connection, "not polled inside a Tokio runtime".to_owned(), None);
            tracing::error!(reason = %error, "Redis replay store operation failed");
            return Err(error);
        }
        let (mut manager, generation) = self.inner.current();
        let reply = tokio::time::timeout(self.inner.timeout, cmd.query_async::<Value>(&mut manager)).await;
        match reply {
            Ok(Ok(value)) => {
                self.inner.succeeded();
                Ok((value, generation))
            }
            Ok(Err(error)) => {
                let kind = if error.kind() == redis::ErrorKind::Io { Kind::Connection } else { Kind::Redis };
                let message = error.to_string();
                Err(self.fail(generation, UnavailableError::new(kind, message, Some(Box::new(error)))))
            }
            Err(_elapsed) => Err(self.fail(
                generation,
                UnavailableError::new(Kind::Timeout, format!("no reply within {:?}", self.inner.timeout), None),
            )),
        }
    }

    fn fail(&self, generation: u64, error: UnavailableError) -> UnavailableError {
        tracing::error!(
            prefix = %self.inner.prefix,
            kind = ?error.kind(),
            reason = %error,
            "Redis replay store operation failed"
        );
        self.inner.failed(generation);
        error
    }
}

impl Inner {
    fn current(&self) -> (ConnectionManager, u64) {
        let connection = self.connection.read().unwrap_or_else(PoisonError::into_inner);
        (connection.manager.clone(), connection.generation)
    }

    fn succeeded(&self) {
        // Read first: the common case stays a shared cache line.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure; replaces the connection after too many in a row.
    fn failed(&self, generation: u64) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if failures < REPLACE_AFTER_FAILURES {
            return;
        }
        let due = |connection: &Connection| {
            connection.generation == generation && connection.opened.elapsed() >= MIN_REPLACE_INTERVAL
        };
        // Checked under the shared lock first: during an outage most failures find it not due.
        if !due(&self.connection.read().unwrap_or_else(PoisonError::into_inner)) {
            return;
        }
        let mut connection = self.connection.write().unwrap_or_else(PoisonError::into_inner);
        if !due(&connection) {
            return;
        }
        let manager = match ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager_config.clone()) {
            Ok(manager) => manager,
            Err(error) => {
                tracing::error!(%error, "Redis replay store could not replace its connection");
                return;
            }
        };
        *connection =
            Connection { manager: manager.clone(), generation: generation.wrapping_add(1), opened: Instant::now() };
        drop(connection);
        self.failures.store(0, Ordering::Relaxed);
        tracing::warn!(failures, "Redis replay store replaced its connection after consecutive failures");
        // Open the new connection now rather than inside the next operation's deadline.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let timeout = CONNECTION_TIMEOUT.saturating_mul(2);
            runtime.spawn(async move {
                let mut manager = manager;
                let _ = tokio::time::timeout(timeout, redis::cmd("PING").query_async::<Value>(&mut manager)).await;
            });
        }
    }
}

impl ReplayStore for RedisReplayStore {
    fn insert_if_absent(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture<'_> {
        Box::pin(
            async move { self.insert(key, ttl).await.map_err(|error| ReplayStoreError::Unavailable(Box::new(error))) },
        )
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The address and database only: never the username or password.
        let info = self.inner.client.get_connection_info();
        let server = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
            ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
            other => other.to_string(),
        };
        f.debug_struct("RedisReplayStore")
            .field("server", &server)
            .field("db", &info.redis_settings().db())
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A reply, shortened for a log line.
fn describe(reply: &Value) -> String {
    const MAX_CHARS: usize = 80;
    let mut text = format!("{reply:?}");
    if let Some((cut, _)) = text.char_indices().nth(MAX_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Rounds up to whole milliseconds (the record lives *at least* `ttl`), at least 1 ms.
fn ttl_millis(ttl: Duration) -> u64 {
    let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let millis = if ttl.subsec_nanos().is_multiple_of(1_000_000) { millis } else { millis.saturating_add(1) };
    millis.clamp(1, MAX_TTL_MS)
}

/// Builds a [`RedisReplayStore`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisReplayStoreBuilder {
    prefix: String,
    timeout: Duration,
}

impl RedisReplayStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_PREFIX`]). Replicas that must reject each
    /// other's replays use the same prefix on the same server; services that must not see
    /// each other's proofs use different ones.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The deadline of one operation, waiting for a connection included (default
    /// [`DEFAULT_TIMEOUT`]). Past it the proof is rejected as
    /// [`ReplayStoreError::Unavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the store for the server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, `valkey://…`, `redis+unix:///path`;
    /// `rediss://` needs TLS support that this crate does not enable).
    ///
    /// It tries to connect once, within the timeout. If the server is unreachable, that is
    /// logged with `tracing::warn!` and the store is returned all the same: it reconnects on
    /// its own, and rejects proofs as unavailable until then. Call
    /// [`RedisReplayStore::ping`] to require a live server.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] for a URL that does not parse or is not supported, a zero timeout, or
    /// when not called inside a Tokio runtime.
    pub async fn connect(self, url: &str) -> Result<RedisReplayStore, ConnectError> {
        if self.timeout.is_zero() {
            return Err(ConnectError::ZeroTimeout);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConnectError::NoRuntime);
        }
        let info = url.into_connection_info().map_err(ConnectError::url)?;
        let tcp = TcpSettings::default().set_nodelay(true);
        let client = Client::open(info.set_tcp_settings(tcp)).map_err(ConnectError::url)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            // The store's own timeout bounds every operation.
            .set_response_timeout(None)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
            .map_err(ConnectError::url)?;
        let store = RedisReplayStore {
            inner: Arc::new(Inner {
                client,
                manager_config,
                connection: RwLock::new(Connection { manager, generation: 0, opened: Instant::now() }),
                failures: AtomicU32::new(0),
                prefix: self.prefix,
                timeout: self.timeout,
            }),
        };
        match store.ping().await {
            Ok(()) => tracing::debug!(?store, "Redis replay store connected"),
            Err(error) => tracing::warn!(
                ?store,
                %error,
                "Redis replay store: server not reachable yet; proofs are rejected until it is"
            ),
        }
        Ok(store)
    }
}

/// Why a store could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL does not parse, names an unsupported scheme, or has invalid parameters.
    /// The cause never repeats the URL (it may hold a password).
    InvalidUrl(Box<dyn StdError + Send + Sync>),
    /// The timeout is zero: every operation would fail.
    ZeroTimeout,
    /// Not called inside a Tokio runtime, which the connection needs.
    NoRuntime,
}

impl ConnectError {
    fn url(error: redis::RedisError) -> Self {
        Self::InvalidUrl(Box::new(error))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(cause) => write!(f, "invalid Redis URL: {cause}"),
            Self::ZeroTimeout => f.write_str("the Redis replay store timeout must not be zero"),
            Self::NoRuntime => f.write_str("the Redis replay store needs a Tokio runtime"),
        }
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::InvalidUrl(cause) => Some(&**cause),
            Self::ZeroTimeout | Self::NoRuntime => None,
        }
    }
}

/// Why an operation failed: the cause inside [`ReplayStoreError::Unavailable`], which can be
/// downcast to this type.
#[derive(Debug)]
pub struct UnavailableError {
    kind: UnavailableKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

type Kind = UnavailableKind;

/// The class of an [`UnavailableError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnavailableKind {
    /// No reply within the timeout (the server is slow or unreachable, or still connecting).
    Timeout,
    /// The connection failed or could not be opened.
    Connection,
    /// Redis answered with an error (`OOM`, `READONLY`, `NOAUTH`…).
    Redis,
    /// Redis answered something other than `OK` or nil.
    UnexpectedReply,
}

impl UnavailableError {
    fn new(kind: UnavailableKind, message: String, source: Option<Box<dyn StdError + Send + Sync>>) -> Self {
        Self { kind, message, source }
    }

    /// What went wrong.
    #[must_use]
    pub const fn kind(&self) -> UnavailableKind {
        self.kind
    }
}

impl fmt::Display for UnavailableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            UnavailableKind::Timeout => "Redis timed out",
            UnavailableKind::Connection => "Redis connection failed",
            UnavailableKind::Redis => "Redis returned an error",
            UnavailableKind::UnexpectedReply => "unexpected reply from Redis",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl StdError for UnavailableError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(Duration::from_secs(301)), 301_000);
        assert_eq!(ttl_millis(Duration::from_micros(1_500)), 2);
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL_MS);
    }
}
