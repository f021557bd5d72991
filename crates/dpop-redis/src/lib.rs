//! A Redis / Valkey [`ReplayStore`] for `dpop-core`: replay protection shared by every replica.
//!
//! With one in-memory store per process, a proof accepted by replica A can be replayed to
//! replica B. [`RedisReplayStore`] records every accepted proof in one Redis (or Valkey)
//! deployment that all replicas share, so a proof is accepted once across the whole fleet.
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
//! One script call per proof (`EVALSHA`, loaded on first use), atomic on the server. It
//! records the proof with `SET <record key> 1 NX PX <ttl ms>` and counts it against the
//! client key's quota (see below), and answers *inserted*, *already present* or *quota
//! exceeded* ([`Insertion::Inserted`], [`Insertion::AlreadyPresent`],
//! [`ReplayStoreError::QuotaExceeded`]). Redis expires every key itself: nothing needs
//! sweeping.
//!
//! Keys (see [`RedisReplayStore::redis_key`] and [`RedisReplayStore::quota_key`]):
//!
//! ```text
//! <prefix>{<client>}:<proof>          the record of one proof, value "1", PX = ttl
//! <prefix>{<client>}:q<width ms>      the client key's quota counter (a small hash)
//! ```
//!
//! `<proof>` is the 64 hex digits of
//! [`ReplayKey::proof_id`](dpop_core::replay::ReplayKey::proof_id) (SHA-256 over the key
//! thumbprint and `jti`), `<client>` the first 32 hex digits of the client key's thumbprint
//! ([`ReplayKey::client_id`](dpop_core::replay::ReplayKey::client_id)): bytes from the client
//! never form a Redis key. `{<client>}` is a Redis Cluster hash tag, so a record and its
//! counter live in one slot and one script can touch both. Keys start with the prefix, so an
//! ACL key pattern (`~my-api:dpop:*`) or `SCAN MATCH` covers them; the prefix therefore must
//! not contain `{` or `}`.
//!
//! # Eviction would re-open replays
//!
//! Every record carries a TTL, so any `maxmemory-policy` but `noeviction` (`volatile-*` and
//! `allkeys-*` alike) may evict live records under memory pressure, and an evicted proof is
//! accepted again. [`RedisReplayStoreBuilder::connect`] therefore reads the policy
//! (`CONFIG GET maxmemory-policy`, or `INFO memory` where managed Redis refuses `CONFIG`; on a
//! Cluster, every master) and fails with [`ConnectError::EvictingPolicy`] unless it is
//! `noeviction`, or with [`ConnectError::UnknownPolicy`] if it cannot be read. With
//! `noeviction`, a full Redis refuses writes (`OOM`), which the store reports as unavailable:
//! the verifier answers 503, and no replay gets through.
//!
//! [`RedisReplayStoreBuilder::accept_evicting_policy`] turns both errors off, for operators
//! who size memory so that eviction never happens in practice and accept that if it does,
//! evicted proofs can be replayed until their `iat` window closes.
//!
//! The policy is read again whenever the store re-establishes its connection after an outage
//! (before it accepts proofs again) and every [`POLICY_RECHECK_INTERVAL`] while it runs (a
//! `CONFIG SET`, a failover to a differently configured server). An evicting or unreadable
//! policy found then makes the store refuse every proof as unavailable (fail closed), with a
//! `tracing::error!` event, until the policy is fixed.
//!
//! # Per-key quota
//!
//! One client key (one thumbprint) may hold at most [`RedisReplayStoreBuilder::per_key_quota`]
//! live records (default [`DEFAULT_PER_KEY_QUOTA`]); past it, proofs of that key are refused
//! with [`ReplayStoreError::QuotaExceeded`] (the verifier answers 429) while other keys are
//! unaffected. Without it, one key could fill Redis and turn every other client's requests
//! into 503s.
//!
//! A record lives `ttl`, so live records per key are the key's request rate times `ttl`: the
//! quota is a rate limit measured over one `ttl`. The script counts a key's inserts in
//! [`QUOTA_BUCKETS`] time buckets of `ttl / QUOTA_BUCKETS` each (fields of one small hash per
//! key, using the server's clock), and sums the buckets that may still hold live records: the
//! count covers at most `ttl × (1 + 1/QUOTA_BUCKETS)` of history, so it never undercounts live
//! records (the quota is never exceeded) and overcounts by at most one bucket.
//!
//! The default, [`DEFAULT_PER_KEY_QUOTA`] (12 million), lets one key sustain 15,000 proofs a
//! second with the verifier's default `ttl` of about 601 s (15,000 × 601 × 9/8 ≈ 10.1 million
//! counted), more than one client reaches on loopback in this project's load benchmark (about
//! 13,000 a second): an honest busy client is never locked out by default. It bounds one key
//! to roughly 1.5 GB of Redis memory. Set it to your busiest client's peak rate × `ttl` × 9/8
//! (with a margin) to protect a smaller Redis; `None` turns the quota off, leaving memory
//! bounded only by `maxmemory` (a full `noeviction` Redis refuses writes: 503 for everyone).
//!
//! Unlike the in-memory store, it gives proof-only records no smaller share: it ignores
//! [`ReplayKey::has_validated_token`](dpop_core::replay::ReplayKey::has_validated_token).
//!
//! # Failures are rejections
//!
//! Every operation has a deadline ([`DEFAULT_TIMEOUT`], see
//! [`RedisReplayStoreBuilder::timeout`]). A timeout, a connection error, an error reply or a
//! reply of the wrong shape is [`ReplayStoreError::Unavailable`] (the verifier answers 503
//! `temporarily_unavailable`) and a `tracing::error!` event: a store that cannot answer never
//! lets a proof through.
//!
//! A timed-out call may still have reached Redis. The proof is then recorded although it was
//! rejected, and sending the same proof again is answered as a replay: clients sign a new
//! proof for every attempt anyway (RFC 9449 §4.1).
//!
//! # Outages: a circuit breaker
//!
//! When the connection is known to be down (a connection error, or
//! [`TRIP_AFTER_TIMEOUTS`] timeouts in a row), the store *opens its circuit*: from then on
//! every proof is refused at once as unavailable ([`UnavailableKind::CircuitOpen`]), without
//! waiting for the timeout, so an outage costs clients a fast 503 rather than a slow one. The
//! opening is a `tracing::error!` event; each fast refusal a `tracing::debug!` event (an error
//! per request would flood the logs during an outage).
//!
//! One background probe then opens a fresh connection, sends `PING` and reads the eviction
//! policy, every 50 ms at first and at most every 500 ms. When both succeed the new connection
//! replaces the old one and the circuit closes (a `tracing::info!` event): recovery needs no
//! restart. A connection that died silently (a partition, a hung server) is caught by the
//! timeouts and replaced the same way.
//!
//! **Redis down at start-up.** [`RedisReplayStoreBuilder::connect`] fails on a bad URL or
//! configuration, or a server with an evicting policy, but not when the server is
//! unreachable: it logs a `tracing::warn!` and returns a store whose circuit is open, which
//! refuses proofs until the probe reaches Redis (and has checked its policy). A replica thus
//! starts, and serves 503s for DPoP requests, while Redis is briefly away. To fail fast
//! instead (or for a readiness probe), call [`RedisReplayStore::ping`] after connecting.
//!
//! The store needs a Tokio runtime: build it and use it inside one.
//!
//! # TLS, Cluster, Sentinel
//!
//! - **TLS**: `rediss://host:port` URLs, over rustls. Server certificates are checked against
//!   the system's roots, or only against the roots given to
//!   [`RedisReplayStoreBuilder::tls_root_certificate_pem`] (for a private CA). The rustls
//!   provider is the process default if one is installed, else the one this crate's features
//!   pick (`aws-lc-rs`, else `ring`), which it then installs as the process default; with
//!   neither feature, install one before connecting.
//! - **Redis Cluster**: [`RedisReplayStoreBuilder::connect_cluster`] with the URLs of some
//!   nodes (`redis://` or `rediss://`). The record and counter of a proof share a hash slot,
//!   so the script runs on one node; the eviction policy is read from every master.
//! - **Sentinel** is not supported. The Redis client's Sentinel support resolves the master
//!   once per connection; following a failover safely also needs the eviction check on the
//!   new master and a way to tell a demoted master from a live one, which this crate does not
//!   do yet. Managed services that expose failover behind one DNS name (`READONLY` replies on
//!   a demoted node open the circuit, and the probe reconnects by name) work with
//!   [`RedisReplayStoreBuilder::connect`].
//!
//! # Crypto backend
//!
//! The features `aws-lc-rs` (default), `ring` and `rustcrypto` pick `dpop-core`'s signature
//! backend, as in the `dpop-guard` facade, and the first two also the TLS provider.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use dpop_core::replay::{Insertion, ReplayFuture, ReplayKey, ReplayStore, ReplayStoreError};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::io::tcp::TcpSettings;
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, RedisFuture, RedisResult, Script,
    ServerErrorKind, TlsCertificates, Value,
};

/// The default key prefix: keys are `dpop:jti:{<client>}:<proof>`.
pub const DEFAULT_PREFIX: &str = "dpop:jti:";

/// The default deadline for one store operation, connection wait included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// The default number of live records one client key may hold; see the crate docs.
pub const DEFAULT_PER_KEY_QUOTA: u64 = 12_000_000;

/// Time buckets of a per-key counter, over one `ttl`.
pub const QUOTA_BUCKETS: u64 = 8;

/// Timeouts in a row after which the circuit opens (a connection error opens it at once).
pub const TRIP_AFTER_TIMEOUTS: u32 = 3;

/// How often a running store reads the eviction policy again.
pub const POLICY_RECHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Deadline of one TCP connect and handshake.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// The probe's first wait after the circuit opens...
const PROBE_MIN_INTERVAL: Duration = Duration::from_millis(50);
/// ...doubling up to this.
const PROBE_MAX_INTERVAL: Duration = Duration::from_millis(500);
/// Backoff of the connection manager's own reconnects: from this...
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// ...doubling up to this.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Attempts in one reconnect round of the connection manager.
const RECONNECT_ATTEMPTS: usize = 2;
/// Retries of a Cluster request (redirections, a node that went away) within the deadline.
const CLUSTER_RETRIES: u32 = 2;
/// Redis refuses expiries that overflow its clock; no replay TTL comes near this.
const MAX_TTL_MS: u64 = (i64::MAX / 4) as u64;
/// Hex digits of the client thumbprint in keys: 128 bits keep quota collisions out of reach.
const CLIENT_HEX_BYTES: usize = 16;

/// The insert script. KEYS: the record, the client key's counter. ARGV: ttl ms, quota (0: none),
/// bucket width ms, buckets. Returns 1 inserted, 0 already present, 2 quota exceeded.
const INSERT_SCRIPT: &str = r"
local ttl = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
if quota == 0 then
  if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ttl) then return 1 end
  return 0
end
local width = tonumber(ARGV[3])
local buckets = tonumber(ARGV[4])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local current = math.floor(ms / width)
local oldest = current - buckets
local fields = {}
for i = oldest, current do fields[#fields + 1] = string.format('%d', i) end
local live = 0
for _, count in ipairs(redis.call('HMGET', KEYS[2], unpack(fields))) do
  if count then live = live + tonumber(count) end
end
if live >= quota then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  return 2
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ttl) then return 0 end
redis.call('HINCRBY', KEYS[2], string.format('%d', current), 1)
redis.call('PEXPIRE', KEYS[2], ttl + width)
if redis.call('HLEN', KEYS[2]) > buckets + 2 then
  for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
    if tonumber(field) < oldest then redis.call('HDEL', KEYS[2], field) end
  end
end
return 1
";

/// A [`ReplayStore`] on Redis or Valkey (one server or a Cluster), shared by every replica
/// that uses the same deployment and prefix. Cheap to clone: clones share one connection.
///
/// Build it with [`RedisReplayStore::builder`] or [`RedisReplayStore::connect`].
#[derive(Clone)]
pub struct RedisReplayStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// How to open a (replacement) connection.
    target: Target,
    connection: RwLock<Connection>,
    /// Timeouts in a row, on any connection.
    timeouts: AtomicU32,
    /// The circuit: while open, every operation is refused at once.
    open: AtomicBool,
    /// Why the circuit is open.
    open_reason: Mutex<(UnavailableKind, String)>,
    /// Whether a probe task runs.
    probing: AtomicBool,
    prefix: String,
    timeout: Duration,
    per_key_quota: Option<u64>,
    accept_evicting_policy: bool,
    script: Script,
}

struct Connection {
    conn: Conn,
    /// Incremented on each replacement, so that late failures of an old connection cannot
    /// open the circuit of the new one.
    generation: u64,
}

/// How to reach Redis.
enum Target {
    Single { client: Client, config: ConnectionManagerConfig },
    Cluster { client: ClusterClient },
}

impl Target {
    /// A connection that connects on first use.
    fn open(&self) -> RedisResult<Conn> {
        match self {
            Self::Single { client, config } => {
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).map(Conn::Single)
            }
            Self::Cluster { client } => Ok(Conn::Cluster(client.get_pending_async_connection_with_config(
                ClusterConfig::new().set_connection_timeout(CONNECTION_TIMEOUT),
            ))),
        }
    }
}

/// One connection of either kind.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisReplayStore {
    /// Configures a store: prefix [`DEFAULT_PREFIX`], timeout [`DEFAULT_TIMEOUT`], per-key
    /// quota [`DEFAULT_PER_KEY_QUOTA`], evicting policies refused.
    pub fn builder() -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            per_key_quota: Some(DEFAULT_PER_KEY_QUOTA),
            accept_evicting_policy: false,
            tls_root_certificate_pem: None,
        }
    }

    /// A store with the default settings on the server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, `rediss://…`, `valkey://…`,
    /// `redis+unix:///path`).
    ///
    /// Succeeds while the server is down: see [`RedisReplayStoreBuilder::connect`].
    ///
    /// # Errors
    ///
    /// As [`RedisReplayStoreBuilder::connect`].
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

    /// The live records one client key may hold (`None`: no quota).
    #[must_use]
    pub fn per_key_quota(&self) -> Option<u64> {
        self.inner.per_key_quota
    }

    /// Whether the circuit is open: proofs are refused at once until Redis answers again.
    #[must_use]
    pub fn is_circuit_open(&self) -> bool {
        self.inner.open.load(Ordering::Acquire)
    }

    /// The Redis key that records `key`: `<prefix>{<client>}:<proof>` (see the crate docs).
    #[must_use]
    pub fn redis_key(&self, key: &ReplayKey) -> String {
        let mut name = self.client_tag(key);
        name.push(':');
        push_hex(&mut name, key.proof_id());
        name
    }

    /// The Redis key that counts `key`'s client key against its quota, for records of `ttl`:
    /// `<prefix>{<client>}:q<bucket width ms>`.
    #[must_use]
    pub fn quota_key(&self, key: &ReplayKey, ttl: Duration) -> String {
        let mut name = self.client_tag(key);
        // Writing to a String cannot fail.
        let _ = write!(name, ":q{}", bucket_width_millis(ttl_millis(ttl)));
        name
    }

    /// `<prefix>{<client>}`.
    fn client_tag(&self, key: &ReplayKey) -> String {
        let mut name = String::with_capacity(self.inner.prefix.len() + 2 * CLIENT_HEX_BYTES + 70);
        name.push_str(&self.inner.prefix);
        name.push('{');
        push_hex(&mut name, key.client_id().get(..CLIENT_HEX_BYTES).unwrap_or(key.client_id()));
        name.push('}');
        name
    }

    /// Checks that Redis answers a `PING` within the timeout.
    ///
    /// For start-up checks and readiness probes; inserts do not need it. While the circuit is
    /// open it fails at once.
    ///
    /// # Errors
    ///
    /// [`UnavailableError`] when the circuit is open, or Redis does not answer in time or
    /// answers with an error.
    pub async fn ping(&self) -> Result<(), UnavailableError> {
        let ping = redis::cmd("PING");
        self.send(|mut conn| async move { ping.query_async::<Value>(&mut conn).await }).await.map(|_| ())
    }

    async fn insert(&self, key: ReplayKey, ttl: Duration) -> Result<Insertion, ReplayStoreError> {
        let ttl_ms = ttl_millis(ttl);
        let mut invocation = self.inner.script.prepare_invoke();
        invocation
            .key(self.redis_key(&key))
            .key(self.quota_key(&key, ttl))
            .arg(ttl_ms)
            .arg(self.inner.per_key_quota.unwrap_or(0))
            .arg(bucket_width_millis(ttl_ms))
            .arg(QUOTA_BUCKETS);
        let invocation = &invocation;
        let reply = self
            .send(|mut conn| async move { invocation.invoke_async::<Value>(&mut conn).await })
            .await
            .map_err(|error| ReplayStoreError::Unavailable(Box::new(error)))?;
        match reply {
            Value::Int(1) => Ok(Insertion::Inserted),
            Value::Int(0) => Ok(Insertion::AlreadyPresent),
            Value::Int(2) => {
                // Debug, not warn: a flooding client would otherwise flood the logs too.
                tracing::debug!(prefix = %self.inner.prefix, quota = ?self.inner.per_key_quota,
                    reason = "client key over its quota", "Redis replay store refused a proof");
                Err(ReplayStoreError::QuotaExceeded)
            }
            other => {
                let error = UnavailableError::new(Kind::UnexpectedReply, describe(&other), None);
                tracing::error!(prefix = %self.inner.prefix, kind = ?error.kind(), reason = %error,
                    "Redis replay store operation failed");
                Err(ReplayStoreError::Unavailable(Box::new(error)))
            }
        }
    }

    /// Runs one operation within the timeout, unless the circuit is open; failures are
    /// logged and may open the circuit.
    async fn send<F, Fut>(&self, operation: F) -> Result<Value, UnavailableError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<Value>>,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            let error = UnavailableError::new(Kind::Connection, "not polled inside a Tokio runtime".to_owned(), None);
            tracing::error!(reason = %error, "Redis replay store operation failed");
            return Err(error);
        }
        if let Some(error) = self.inner.refusal() {
            tracing::debug!(prefix = %self.inner.prefix, reason = %error, "Redis replay store refused at once");
            return Err(error);
        }
        let (conn, generation) = self.inner.current();
        match tokio::time::timeout(self.inner.timeout, operation(conn)).await {
            Ok(Ok(value)) => {
                self.inner.succeeded();
                Ok(value)
            }
            Ok(Err(error)) => {
                let down = connection_lost(&error);
                let kind = if down { Kind::Connection } else { Kind::Redis };
                let failure = UnavailableError::new(kind, error.to_string(), Some(Box::new(error)));
                self.log_failure(&failure);
                if down {
                    self.inner.trip(generation, kind, failure.to_string());
                }
                Err(failure)
            }
            Err(_elapsed) => {
                let failure =
                    UnavailableError::new(Kind::Timeout, format!("no reply within {:?}", self.inner.timeout), None);
                self.log_failure(&failure);
                let timeouts = self.inner.timeouts.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                if timeouts >= TRIP_AFTER_TIMEOUTS {
                    self.inner.trip(generation, Kind::Timeout, format!("{timeouts} timeouts in a row"));
                }
                Err(failure)
            }
        }
    }

    fn log_failure(&self, error: &UnavailableError) {
        tracing::error!(
            prefix = %self.inner.prefix,
            kind = ?error.kind(),
            reason = %error,
            "Redis replay store operation failed"
        );
    }
}

impl Inner {
    fn current(&self) -> (Conn, u64) {
        let connection = self.connection.read().unwrap_or_else(PoisonError::into_inner);
        (connection.conn.clone(), connection.generation)
    }

    fn succeeded(&self) {
        // Read first: the common case stays a shared cache line.
        if self.timeouts.load(Ordering::Relaxed) != 0 {
            self.timeouts.store(0, Ordering::Relaxed);
        }
    }

    /// The error to answer at once while the circuit is open.
    fn refusal(&self) -> Option<UnavailableError> {
        if !self.open.load(Ordering::Acquire) {
            return None;
        }
        let (kind, reason) = self.open_reason.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let kind = if kind == Kind::EvictingPolicy { kind } else { Kind::CircuitOpen };
        Some(UnavailableError::new(kind, reason, None))
    }

    /// Opens the circuit (if `generation` is still the current connection) and starts the
    /// probe that closes it again.
    fn trip(self: &Arc<Self>, generation: u64, kind: UnavailableKind, reason: String) {
        {
            let connection = self.connection.read().unwrap_or_else(PoisonError::into_inner);
            if connection.generation != generation {
                return;
            }
        }
        self.open_circuit(kind, reason);
    }

    fn open_circuit(self: &Arc<Self>, kind: UnavailableKind, reason: String) {
        {
            let mut open_reason = self.open_reason.lock().unwrap_or_else(PoisonError::into_inner);
            if !self.open.swap(true, Ordering::AcqRel) {
                tracing::error!(prefix = %self.prefix, ?kind, %reason,
                    "Redis replay store: circuit opened, refusing proofs until Redis answers again");
            }
            *open_reason = (kind, reason);
        }
        self.spawn_probe();
    }

    fn spawn_probe(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.probing.store(false, Ordering::Release);
            return;
        };
        runtime.spawn(probe(Arc::downgrade(self)));
    }

    /// The deadline of a check on a fresh connection: connecting included.
    fn probe_timeout(&self) -> Duration {
        self.timeout.max(CONNECTION_TIMEOUT)
    }

    /// Whether `policy` lets the store accept proofs; logs why not.
    fn policy_acceptable(&self, policy: &Policy) -> Result<(), (UnavailableKind, String)> {
        match policy {
            Policy::NoEviction => Ok(()),
            Policy::Evicting(_) | Policy::Unknown(_) if self.accept_evicting_policy => Ok(()),
            Policy::Evicting(name) => Err((
                Kind::EvictingPolicy,
                format!(
                    "maxmemory-policy is {name}: it may evict replay records and re-open replays \
                     (set it to noeviction, or accept it with accept_evicting_policy(true))"
                ),
            )),
            Policy::Unknown(why) => Err((
                Kind::EvictingPolicy,
                format!(
                    "maxmemory-policy cannot be read ({why}): it may evict replay records \
                     (allow CONFIG GET or INFO, or accept it with accept_evicting_policy(true))"
                ),
            )),
        }
    }
}

/// Until the circuit closes (or the store is dropped): opens a fresh connection, checks it,
/// and installs it.
async fn probe(store: Weak<Inner>) {
    let mut interval = PROBE_MIN_INTERVAL;
    loop {
        tokio::time::sleep(interval).await;
        interval = interval.saturating_mul(2).min(PROBE_MAX_INTERVAL);
        let Some(inner) = store.upgrade() else { return };
        let conn = match inner.target.open() {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(prefix = %inner.prefix, %error, "Redis replay store probe: cannot open a connection");
                continue;
            }
        };
        let outcome = tokio::time::timeout(inner.probe_timeout(), check(conn.clone())).await;
        let policy = match outcome {
            Ok(Ok(policy)) => policy,
            Ok(Err(error)) => {
                tracing::warn!(prefix = %inner.prefix, %error, "Redis replay store probe: Redis still unavailable");
                continue;
            }
            Err(_elapsed) => {
                tracing::warn!(prefix = %inner.prefix, timeout = ?inner.probe_timeout(),
                    "Redis replay store probe: Redis still unavailable (no reply)");
                continue;
            }
        };
        if let Err((kind, reason)) = inner.policy_acceptable(&policy) {
            tracing::error!(prefix = %inner.prefix, %reason, "Redis replay store probe: Redis answers but proofs stay refused");
            *inner.open_reason.lock().unwrap_or_else(PoisonError::into_inner) = (kind, reason);
            continue;
        }
        {
            let mut connection = inner.connection.write().unwrap_or_else(PoisonError::into_inner);
            let generation = connection.generation.wrapping_add(1);
            *connection = Connection { conn, generation };
        }
        inner.timeouts.store(0, Ordering::Release);
        // Cleared before the circuit closes: a failure right after closing starts a new probe.
        inner.probing.store(false, Ordering::Release);
        inner.open.store(false, Ordering::Release);
        tracing::info!(prefix = %inner.prefix, ?policy, "Redis replay store: Redis answers again, circuit closed");
        return;
    }
}

/// While the store lives: reads the eviction policy again every [`POLICY_RECHECK_INTERVAL`]
/// and opens the circuit if it became unacceptable.
async fn watch_policy(store: Weak<Inner>) {
    loop {
        tokio::time::sleep(POLICY_RECHECK_INTERVAL).await;
        let Some(inner) = store.upgrade() else { return };
        if inner.open.load(Ordering::Acquire) {
            // The probe checks the policy before closing.
            continue;
        }
        let (conn, generation) = inner.current();
        let Ok(Ok(policy)) = tokio::time::timeout(inner.probe_timeout(), read_policy(conn)).await else {
            // Unreachable: requests notice that themselves.
            continue;
        };
        if let Err((kind, reason)) = inner.policy_acceptable(&policy) {
            inner.trip(generation, kind, reason);
        }
    }
}

/// `PING`, then the eviction policy.
async fn check(mut conn: Conn) -> RedisResult<Policy> {
    redis::cmd("PING").query_async::<Value>(&mut conn).await?;
    read_policy(conn).await
}

/// What the server's `maxmemory-policy` means for replay records.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Policy {
    /// `noeviction` (on every master): records are never evicted.
    NoEviction,
    /// Another policy (the first one found that is not `noeviction`).
    Evicting(String),
    /// Neither `CONFIG GET` nor `INFO memory` told it; why.
    Unknown(String),
}

/// Reads `maxmemory-policy` with `CONFIG GET`, else from `INFO memory`; on a Cluster from
/// every master. Transport errors are errors; refusals and odd replies make it unknown.
async fn read_policy(mut conn: Conn) -> RedisResult<Policy> {
    let mut config = redis::cmd("CONFIG");
    config.arg("GET").arg("maxmemory-policy");
    let mut info = redis::cmd("INFO");
    info.arg("memory");
    let (config_reply, info_reply) = match &mut conn {
        Conn::Single(manager) => {
            let config_reply = config.query_async::<Value>(manager).await;
            let config_reply = config_reply.map(|reply| vec![reply]);
            if let Some(policies) = answered(&config_reply, config_policy) {
                return Ok(judge(policies));
            }
            let info_reply = info.query_async::<Value>(manager).await.map(|reply| vec![reply]);
            (config_reply, info_reply)
        }
        Conn::Cluster(cluster) => {
            let masters = || RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
            let config_reply = cluster.route_command(config, masters()).await.map(per_node);
            if let Some(policies) = answered(&config_reply, config_policy) {
                return Ok(judge(policies));
            }
            let info_reply = cluster.route_command(info, masters()).await.map(per_node);
            (config_reply, info_reply)
        }
    };
    for reply in [&config_reply, &info_reply] {
        if let Err(error) = reply
            && connection_lost(error)
        {
            return Err(error.clone());
        }
    }
    if let Some(policies) = answered(&info_reply, info_policy) {
        return Ok(judge(policies));
    }
    let why = |reply: &RedisResult<Vec<Value>>| match reply {
        Ok(replies) => format!("reply {}", replies.first().map_or_else(String::new, describe)),
        Err(error) => error.to_string(),
    };
    Ok(Policy::Unknown(format!("CONFIG GET: {}; INFO memory: {}", why(&config_reply), why(&info_reply))))
}

/// The policy of every node, if each reply holds one.
fn answered(reply: &RedisResult<Vec<Value>>, parse: fn(&Value) -> Option<String>) -> Option<Vec<String>> {
    let replies = reply.as_ref().ok()?;
    if replies.is_empty() {
        return None;
    }
    replies.iter().map(parse).collect()
}

fn judge(policies: Vec<String>) -> Policy {
    match policies.into_iter().find(|policy| policy != "noeviction") {
        None => Policy::NoEviction,
        Some(policy) => Policy::Evicting(policy),
    }
}

/// A multi-node reply (node address → reply) as the list of replies.
fn per_node(reply: Value) -> Vec<Value> {
    match reply {
        Value::Map(nodes) => nodes.into_iter().map(|(_, reply)| reply).collect(),
        other => vec![other],
    }
}

/// `CONFIG GET maxmemory-policy`: `[name, value]` (RESP2) or `{name: value}` (RESP3).
fn config_policy(reply: &Value) -> Option<String> {
    let value = match reply {
        Value::Array(items) => match items.as_slice() {
            [name, value] if text(name)?.eq_ignore_ascii_case("maxmemory-policy") => value,
            _ => return None,
        },
        Value::Map(pairs) => match pairs.as_slice() {
            [(name, value)] if text(name)?.eq_ignore_ascii_case("maxmemory-policy") => value,
            _ => return None,
        },
        _ => return None,
    };
    text(value).map(|policy| policy.trim().to_ascii_lowercase())
}

/// The `maxmemory_policy:` line of `INFO memory`.
fn info_policy(reply: &Value) -> Option<String> {
    let info = text(reply)?;
    info.lines()
        .find_map(|line| line.trim().strip_prefix("maxmemory_policy:"))
        .map(|policy| policy.trim().to_ascii_lowercase())
        .filter(|policy| !policy.is_empty())
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// Whether `error` means the connection (not just this command) failed.
fn connection_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            redis::ErrorKind::ClusterConnectionNotFound
                | redis::ErrorKind::Server(
                    ServerErrorKind::ReadOnly | ServerErrorKind::ClusterDown | ServerErrorKind::MasterDown
                )
        )
}

impl ReplayStore for RedisReplayStore {
    fn insert_if_absent(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture<'_> {
        Box::pin(self.insert(key, ttl))
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses and database only: never the username or password.
        let mut debug = f.debug_struct("RedisReplayStore");
        match &self.inner.target {
            Target::Single { client, .. } => {
                let info = client.get_connection_info();
                debug.field("server", &server_name(info)).field("db", &info.redis_settings().db());
            }
            Target::Cluster { .. } => {
                debug.field("server", &"cluster");
            }
        }
        debug
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field("per_key_quota", &self.inner.per_key_quota)
            .field("circuit_open", &self.is_circuit_open())
            .finish_non_exhaustive()
    }
}

/// `scheme://host:port` of a connection, without credentials.
fn server_name(info: &ConnectionInfo) -> String {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
        ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
        other => other.to_string(),
    }
}

fn push_hex(name: &mut String, bytes: &[u8]) {
    // Two digits per byte without the formatting machinery: this runs twice per request.
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            name.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
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

/// One quota bucket: `ttl / QUOTA_BUCKETS`, rounded up, so the buckets cover at least `ttl`.
fn bucket_width_millis(ttl_ms: u64) -> u64 {
    ttl_ms.div_ceil(QUOTA_BUCKETS).max(1)
}

/// Installs a rustls crypto provider as the process default if none is, for `rediss://`.
fn ensure_tls_provider() -> Result<(), ConnectError> {
    if rustls::crypto::CryptoProvider::get_default().is_some() {
        return Ok(());
    }
    #[cfg(feature = "aws-lc-rs")]
    let provider = Some(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    let provider = Some(rustls::crypto::ring::default_provider());
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    let provider: Option<rustls::crypto::CryptoProvider> = None;
    match provider {
        // Losing a race with another installer is fine: a provider is installed either way.
        Some(provider) => {
            let _ = provider.install_default();
            Ok(())
        }
        None => Err(ConnectError::Tls(
            "no rustls CryptoProvider: enable the aws-lc-rs or ring feature, or install one as the \
             process default before connecting"
                .into(),
        )),
    }
}

/// Builds a [`RedisReplayStore`].
#[derive(Clone)]
#[must_use]
pub struct RedisReplayStoreBuilder {
    prefix: String,
    timeout: Duration,
    per_key_quota: Option<u64>,
    accept_evicting_policy: bool,
    tls_root_certificate_pem: Option<Vec<u8>>,
}

impl fmt::Debug for RedisReplayStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("per_key_quota", &self.per_key_quota)
            .field("accept_evicting_policy", &self.accept_evicting_policy)
            .field("tls_root_certificate_pem", &self.tls_root_certificate_pem.as_ref().map(Vec::len))
            .finish()
    }
}

impl RedisReplayStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_PREFIX`]). Replicas that must reject each
    /// other's replays use the same prefix on the same server; services that must not see
    /// each other's proofs use different ones. It must not contain `{` or `}` (they would
    /// change the Cluster hash tag).
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

    /// The live records one client key may hold (default `Some(`[`DEFAULT_PER_KEY_QUOTA`]`)`);
    /// past it the key's proofs are refused with [`ReplayStoreError::QuotaExceeded`]. `None`
    /// turns the quota off. See the crate docs for how it is counted and how to size it.
    pub fn per_key_quota(mut self, quota: Option<u64>) -> Self {
        self.per_key_quota = quota;
        self
    }

    /// Accepts a server whose `maxmemory-policy` may evict replay records (anything but
    /// `noeviction`), or whose policy cannot be read (default `false`: such a server is a
    /// [`ConnectError`], and a running store refuses proofs when it finds one).
    ///
    /// **Dangerous**: an evicted record is a proof that can be replayed, for as long as the
    /// verifier would still accept its `iat`. Only for servers sized so that eviction never
    /// happens, where that risk is accepted.
    pub fn accept_evicting_policy(mut self, accept: bool) -> Self {
        self.accept_evicting_policy = accept;
        self
    }

    /// Trusts only these root certificates (PEM, one or more) for `rediss://` servers,
    /// instead of the system's: for a private CA.
    pub fn tls_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificate_pem = Some(pem.into());
        self
    }

    /// Builds the store for the server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS, `valkey://…`,
    /// `redis+unix:///path`).
    ///
    /// It tries to connect once and reads the server's eviction policy (see the crate docs).
    /// If the server is unreachable, that is logged with `tracing::warn!` and the store is
    /// returned with its circuit open: it refuses proofs as unavailable until it reaches
    /// Redis and has checked the policy. Call [`RedisReplayStore::ping`] to require a live
    /// server.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] for a URL that does not parse or is not supported, a bad setting, a
    /// TLS setup that fails, a server whose eviction policy may evict replay records or
    /// cannot be read (unless accepted), or when not called inside a Tokio runtime.
    pub async fn connect(self, url: &str) -> Result<RedisReplayStore, ConnectError> {
        self.validate()?;
        let info = url.into_connection_info().map_err(ConnectError::url)?;
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let info = info.set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = match (&self.tls_root_certificate_pem, tls) {
            (_, true) => {
                ensure_tls_provider()?;
                let certificates =
                    TlsCertificates { client_tls: None, root_cert: self.tls_root_certificate_pem.clone() };
                Client::build_with_tls(info, certificates).map_err(ConnectError::tls)?
            }
            (Some(_), false) => return Err(ConnectError::Tls("a TLS root certificate needs a rediss:// URL".into())),
            (None, false) => Client::open(info).map_err(ConnectError::url)?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            // The store's own timeout bounds every operation.
            .set_response_timeout(None)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        self.finish(Target::Single { client, config }).await
    }

    /// Builds the store for a Redis Cluster, given the URLs of some of its nodes (all
    /// `redis://` or all `rediss://`; the others are discovered). As [`Self::connect`]
    /// otherwise: the eviction policy is read from every master.
    ///
    /// # Errors
    ///
    /// As [`Self::connect`]; also for an empty list.
    pub async fn connect_cluster<I, S>(self, urls: I) -> Result<RedisReplayStore, ConnectError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.validate()?;
        let mut nodes = Vec::new();
        for url in urls {
            nodes.push(url.as_ref().into_connection_info().map_err(ConnectError::url)?);
        }
        if nodes.is_empty() {
            return Err(ConnectError::InvalidUrl("no Redis Cluster node URL given".into()));
        }
        let tls = nodes.iter().filter(|node| matches!(node.addr(), ConnectionAddr::TcpTls { .. })).count();
        if tls != 0 && tls != nodes.len() {
            return Err(ConnectError::InvalidUrl("mixed redis:// and rediss:// Cluster node URLs".into()));
        }
        let mut builder = ClusterClient::builder(nodes)
            .connection_timeout(CONNECTION_TIMEOUT)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .tcp_settings(TcpSettings::default().set_nodelay(true));
        match (&self.tls_root_certificate_pem, tls != 0) {
            (_, true) => {
                ensure_tls_provider()?;
                builder = builder
                    .certs(TlsCertificates { client_tls: None, root_cert: self.tls_root_certificate_pem.clone() });
            }
            (Some(_), false) => return Err(ConnectError::Tls("a TLS root certificate needs rediss:// URLs".into())),
            (None, false) => {}
        }
        let client = builder.build().map_err(ConnectError::url)?;
        self.finish(Target::Cluster { client }).await
    }

    fn validate(&self) -> Result<(), ConnectError> {
        if let Some(pem) = &self.tls_root_certificate_pem {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject as _;
            let roots = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>();
            match roots {
                Ok(roots) if !roots.is_empty() => {}
                Ok(_) => return Err(ConnectError::Tls("no certificate in the TLS root certificate PEM".into())),
                Err(error) => return Err(ConnectError::Tls(format!("TLS root certificate PEM: {error}").into())),
            }
        }
        if self.timeout.is_zero() {
            return Err(ConnectError::ZeroTimeout);
        }
        if self.per_key_quota == Some(0) {
            return Err(ConnectError::ZeroQuota);
        }
        if self.prefix.contains(['{', '}']) {
            return Err(ConnectError::InvalidPrefix);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConnectError::NoRuntime);
        }
        Ok(())
    }

    async fn finish(self, target: Target) -> Result<RedisReplayStore, ConnectError> {
        let conn = target.open().map_err(ConnectError::url)?;
        let inner = Arc::new(Inner {
            target,
            connection: RwLock::new(Connection { conn: conn.clone(), generation: 0 }),
            timeouts: AtomicU32::new(0),
            open: AtomicBool::new(false),
            open_reason: Mutex::new((Kind::CircuitOpen, String::new())),
            probing: AtomicBool::new(false),
            prefix: self.prefix,
            timeout: self.timeout,
            per_key_quota: self.per_key_quota,
            accept_evicting_policy: self.accept_evicting_policy,
            script: Script::new(INSERT_SCRIPT),
        });
        let store = RedisReplayStore { inner };
        let inner = &store.inner;
        match tokio::time::timeout(inner.probe_timeout(), check(conn)).await {
            Ok(Ok(policy)) => match inner.policy_acceptable(&policy) {
                Ok(()) => {
                    if policy == Policy::NoEviction {
                        tracing::debug!(?store, "Redis replay store connected");
                    } else {
                        tracing::warn!(
                            ?store,
                            ?policy,
                            "Redis replay store connected to a server that may evict replay records (accepted)"
                        );
                    }
                }
                Err((_, reason)) => {
                    return Err(match policy {
                        Policy::Evicting(policy) => ConnectError::EvictingPolicy { policy },
                        _ => ConnectError::UnknownPolicy { reason },
                    });
                }
            },
            Ok(Err(error)) => {
                tracing::warn!(?store, %error,
                    "Redis replay store: server not reachable yet; proofs are rejected until it is");
                inner.open_circuit(Kind::Connection, format!("not reachable at start-up: {error}"));
            }
            Err(_elapsed) => {
                tracing::warn!(
                    ?store,
                    "Redis replay store: server not reachable yet (no reply); proofs are rejected until it is"
                );
                inner.open_circuit(Kind::Timeout, "no reply at start-up".to_owned());
            }
        }
        if !inner.accept_evicting_policy {
            tokio::spawn(watch_policy(Arc::downgrade(inner)));
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
    /// The TLS setup failed (a root certificate that does not parse, no crypto provider, a
    /// root certificate without a `rediss://` URL).
    Tls(Box<dyn StdError + Send + Sync>),
    /// The timeout is zero: every operation would fail.
    ZeroTimeout,
    /// The per-key quota is zero: every proof would be refused (use `None` for no quota).
    ZeroQuota,
    /// The prefix contains `{` or `}`.
    InvalidPrefix,
    /// The server's `maxmemory-policy` may evict replay records; see
    /// [`RedisReplayStoreBuilder::accept_evicting_policy`].
    EvictingPolicy {
        /// The policy the server reported (on a Cluster, the first one found).
        policy: String,
    },
    /// The server's `maxmemory-policy` could not be read; see
    /// [`RedisReplayStoreBuilder::accept_evicting_policy`].
    UnknownPolicy {
        /// What was tried and what came back.
        reason: String,
    },
    /// Not called inside a Tokio runtime, which the connection needs.
    NoRuntime,
}

impl ConnectError {
    fn url(error: RedisError) -> Self {
        Self::InvalidUrl(Box::new(error))
    }

    fn tls(error: RedisError) -> Self {
        Self::Tls(Box::new(error))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(cause) => write!(f, "invalid Redis URL: {cause}"),
            Self::Tls(cause) => write!(f, "Redis TLS setup failed: {cause}"),
            Self::ZeroTimeout => f.write_str("the Redis replay store timeout must not be zero"),
            Self::ZeroQuota => f.write_str("the Redis replay store per-key quota must not be zero (None: no quota)"),
            Self::InvalidPrefix => f.write_str("the Redis replay store prefix must not contain '{' or '}'"),
            Self::EvictingPolicy { policy } => write!(
                f,
                "Redis maxmemory-policy is {policy}: it may evict replay records, and an evicted proof \
                 can be replayed; set maxmemory-policy to noeviction, or accept the risk with \
                 RedisReplayStoreBuilder::accept_evicting_policy(true)"
            ),
            Self::UnknownPolicy { reason } => write!(
                f,
                "Redis maxmemory-policy cannot be read ({reason}); allow CONFIG GET or INFO, or accept \
                 a possibly evicting policy with RedisReplayStoreBuilder::accept_evicting_policy(true)"
            ),
            Self::NoRuntime => f.write_str("the Redis replay store needs a Tokio runtime"),
        }
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::InvalidUrl(cause) | Self::Tls(cause) => Some(&**cause),
            _ => None,
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
    /// Redis answered with an error (`OOM`, `NOPERM`…).
    Redis,
    /// Redis answered something the store does not expect.
    UnexpectedReply,
    /// Refused at once: the circuit is open after connection failures (see the crate docs).
    CircuitOpen,
    /// Refused at once: the server's eviction policy may evict replay records, or cannot be
    /// read, and that was not accepted.
    EvictingPolicy,
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
            UnavailableKind::CircuitOpen => "Redis circuit open",
            UnavailableKind::EvictingPolicy => "Redis eviction policy refused",
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

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        let mut name = String::from("p:");
        push_hex(&mut name, &[0x00, 0x0f, 0xa5, 0xff, 0x10]);
        assert_eq!(name, "p:000fa5ff10");
    }

    #[test]
    fn buckets_cover_the_ttl() {
        assert_eq!(bucket_width_millis(601_000), 75_125);
        assert!(bucket_width_millis(1_001) * QUOTA_BUCKETS >= 1_001);
        assert_eq!(bucket_width_millis(1), 1);
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn config_get_replies() {
        assert_eq!(
            config_policy(&Value::Array(vec![bulk("maxmemory-policy"), bulk("noeviction")])).as_deref(),
            Some("noeviction")
        );
        assert_eq!(
            config_policy(&Value::Map(vec![(bulk("maxmemory-policy"), bulk("allkeys-lru"))])).as_deref(),
            Some("allkeys-lru")
        );
        // Empty (the parameter is unknown) or another parameter: not an answer.
        assert_eq!(config_policy(&Value::Array(vec![])), None);
        assert_eq!(config_policy(&Value::Array(vec![bulk("maxmemory"), bulk("0")])), None);
        assert_eq!(config_policy(&Value::Int(1)), None);
    }

    #[test]
    fn info_memory_replies() {
        let info = "# Memory\r\nused_memory:1\r\nmaxmemory_policy:volatile-ttl\r\nmem_fragmentation_ratio:1\r\n";
        assert_eq!(info_policy(&bulk(info)).as_deref(), Some("volatile-ttl"));
        assert_eq!(info_policy(&bulk("# Memory\r\nused_memory:1\r\n")), None);
        assert_eq!(info_policy(&bulk("maxmemory_policy:\r\n")), None);
    }

    #[test]
    fn every_node_must_be_noeviction() {
        assert_eq!(judge(vec!["noeviction".into(), "noeviction".into()]), Policy::NoEviction);
        assert_eq!(judge(vec!["noeviction".into(), "volatile-lru".into()]), Policy::Evicting("volatile-lru".into()));
        let replies: RedisResult<Vec<Value>> =
            Ok(vec![Value::Array(vec![bulk("maxmemory-policy"), bulk("noeviction")]), Value::Array(vec![])]);
        assert_eq!(answered(&replies, config_policy), None, "one node without an answer: no answer");
        assert_eq!(answered(&Ok(vec![]), config_policy), None);
    }
}
