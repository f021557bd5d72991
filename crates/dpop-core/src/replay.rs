//! Replay protection (RFC 9449 §11.1): each proof (`jkt`, `jti`) is accepted once.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::clock::{Clock, SystemClock};
use crate::crypto;
use crate::jwk::Thumbprint;

/// The fixed-size identity of one proof: SHA-256 over the key thumbprint and `jti`.
///
/// Untrusted bytes never form a store key: `jti` only enters through the hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    proof: [u8; 32],
    client: [u8; 32],
}

impl ReplayKey {
    /// The key for the proof `jti` signed by the key with thumbprint `jkt`.
    #[must_use]
    pub fn new(jkt: &Thumbprint, jti: &str) -> Self {
        let proof = crypto::sha256_concat(&[jkt.as_bytes(), jti.as_bytes()]);
        Self { proof, client: *jkt.as_bytes() }
    }

    /// Identifies the proof; the store key.
    #[must_use]
    pub const fn proof_id(&self) -> &[u8; 32] {
        &self.proof
    }

    /// Identifies the client key (its thumbprint), for per-key quotas.
    #[must_use]
    pub const fn client_id(&self) -> &[u8; 32] {
        &self.client
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayKey").finish_non_exhaustive()
    }
}

/// What an insert found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insertion {
    /// The key was absent and is now recorded: the proof is fresh.
    Inserted,
    /// The key was already recorded: the proof is a replay.
    AlreadyPresent,
}

/// Why a store could not answer. Every variant leads to a rejection.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayStoreError {
    /// The store holds as many live entries as it may.
    Full,
    /// This client key holds as many live entries as one key may.
    QuotaExceeded,
    /// The store failed or timed out.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for ReplayStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("replay store is full"),
            Self::QuotaExceeded => f.write_str("replay store quota for this key is exhausted"),
            Self::Unavailable(cause) => write!(f, "replay store unavailable: {cause}"),
        }
    }
}

impl std::error::Error for ReplayStoreError {}

/// The future a [`ReplayStore`] returns.
pub type ReplayFuture<'a> = Pin<Box<dyn Future<Output = Result<Insertion, ReplayStoreError>> + Send + 'a>>;

/// Records proofs that were accepted, so that none is accepted twice.
///
/// Implementations must make [`insert_if_absent`](ReplayStore::insert_if_absent) atomic: two
/// concurrent calls with the same key must not both see [`Insertion::Inserted`].
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` for at least `ttl` unless it is already recorded.
    fn insert_if_absent(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture<'_>;
}

impl<S: ReplayStore + ?Sized> ReplayStore for Arc<S> {
    fn insert_if_absent(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture<'_> {
        (**self).insert_if_absent(key, ttl)
    }
}

/// Expired entries removed per insert; more than one, so removal outpaces insertion.
const EXPIRED_PER_INSERT: usize = 16;

/// Default number of live entries an [`InMemoryReplayStore`] holds.
pub const DEFAULT_CAPACITY: usize = 1_000_000;
/// Default number of live entries one client key may hold.
pub const DEFAULT_PER_KEY_QUOTA: usize = 10_000;

/// A bounded in-memory [`ReplayStore`] for one instance. Clones share the same entries.
///
/// When full it refuses new proofs ([`ReplayStoreError::Full`]) instead of forgetting live
/// ones; one key may hold at most its quota so a single client cannot fill it for others.
/// Expired entries leave in insertion order, from a queue: never a scan of the whole map.
#[derive(Clone)]
pub struct InMemoryReplayStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Proof id (truncated: 128 bits keep collisions out of reach) → client id.
    entries: DashMap<[u8; 16], u64>,
    /// Client id (truncated thumbprint) → live entries.
    per_client: DashMap<u64, usize>,
    /// (expiry, proof id) in insertion order. TTLs are equal for one verifier, so this is
    /// also expiry order; a later-expiring head only delays the ones behind it.
    expiry: Mutex<VecDeque<(u64, [u8; 16])>>,
    len: AtomicUsize,
    capacity: usize,
    per_key_quota: usize,
    clock: Arc<dyn Clock>,
}

impl InMemoryReplayStore {
    /// A store with [`DEFAULT_CAPACITY`], [`DEFAULT_PER_KEY_QUOTA`] and the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a store.
    pub fn builder() -> InMemoryReplayStoreBuilder {
        InMemoryReplayStoreBuilder {
            capacity: DEFAULT_CAPACITY,
            per_key_quota: DEFAULT_PER_KEY_QUOTA,
            clock: Arc::new(SystemClock),
        }
    }

    /// Live entries (expired ones may still count until the next insert removes them).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether the store holds no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, key: &ReplayKey, ttl: Duration) -> Result<Insertion, ReplayStoreError> {
        let now = self.inner.clock.now();
        // A few per insert keep pace with expiry (entries expire in the order they came) without
        // ever stalling one request on a long backlog; only a refusal pays for a full sweep.
        self.inner.remove_expired(now, EXPIRED_PER_INSERT);
        match self.try_insert(key, ttl, now) {
            Err(ReplayStoreError::Full | ReplayStoreError::QuotaExceeded) => {
                self.inner.remove_expired(now, usize::MAX);
                self.try_insert(key, ttl, now)
            }
            outcome => outcome,
        }
    }

    fn try_insert(&self, key: &ReplayKey, ttl: Duration, now: u64) -> Result<Insertion, ReplayStoreError> {
        let inner = &*self.inner;

        let proof = truncate16(key.proof_id());
        if inner.entries.contains_key(&proof) {
            return Ok(Insertion::AlreadyPresent);
        }
        // Reserve room before inserting so concurrent inserts cannot overshoot the capacity.
        if inner.len.fetch_add(1, Ordering::AcqRel) >= inner.capacity {
            inner.len.fetch_sub(1, Ordering::AcqRel);
            return Err(ReplayStoreError::Full);
        }
        let client = truncate8(key.client_id());
        let quota_ok = {
            let mut count = inner.per_client.entry(client).or_insert(0);
            if *count >= inner.per_key_quota {
                false
            } else {
                *count += 1;
                true
            }
        };
        if !quota_ok {
            inner.len.fetch_sub(1, Ordering::AcqRel);
            return Err(ReplayStoreError::QuotaExceeded);
        }
        // The map's shard lock must be released before the queue lock is taken:
        // `remove_expired` takes them in the other order.
        let inserted = match inner.entries.entry(proof) {
            Entry::Occupied(_) => false,
            Entry::Vacant(vacant) => {
                vacant.insert(client);
                true
            }
        };
        if !inserted {
            inner.release(client);
            return Ok(Insertion::AlreadyPresent);
        }
        let expires = now.saturating_add(ttl.as_secs());
        inner.lock_expiry().push_back((expires, proof));
        Ok(Insertion::Inserted)
    }
}

impl Inner {
    /// Removes up to `limit` expired entries, oldest first.
    fn remove_expired(&self, now: u64, limit: usize) {
        let mut queue = self.lock_expiry();
        for _ in 0..limit {
            let Some(&(expires, proof)) = queue.front() else { break };
            if expires > now {
                break;
            }
            queue.pop_front();
            if let Some((_, client)) = self.entries.remove(&proof) {
                self.release(client);
            }
        }
    }

    /// Gives back one entry's share of the capacity and of its client's quota.
    fn release(&self, client: u64) {
        self.len.fetch_sub(1, Ordering::AcqRel);
        if let Entry::Occupied(mut count) = self.per_client.entry(client) {
            *count.get_mut() = count.get().saturating_sub(1);
            if *count.get() == 0 {
                count.remove();
            }
        }
    }

    fn lock_expiry(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, [u8; 16])>> {
        // The queue stays consistent even if a holder panicked: every push and pop is whole.
        self.expiry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn truncate16(id: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(id.get(..16).unwrap_or(&[0u8; 16]));
    out
}

fn truncate8(id: &[u8; 32]) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(id.get(..8).unwrap_or(&[0u8; 8]));
    u64::from_le_bytes(out)
}

impl Default for InMemoryReplayStore {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayStore for InMemoryReplayStore {
    fn insert_if_absent(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture<'_> {
        let result = self.insert(&key, ttl);
        Box::pin(std::future::ready(result))
    }
}

impl fmt::Debug for InMemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryReplayStore")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .field("per_key_quota", &self.inner.per_key_quota)
            .finish_non_exhaustive()
    }
}

/// Builds an [`InMemoryReplayStore`].
#[derive(Clone)]
#[must_use]
pub struct InMemoryReplayStoreBuilder {
    capacity: usize,
    per_key_quota: usize,
    clock: Arc<dyn Clock>,
}

impl InMemoryReplayStoreBuilder {
    /// The most live entries the store holds (default [`DEFAULT_CAPACITY`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most live entries one client key may hold (default [`DEFAULT_PER_KEY_QUOTA`]).
    pub fn per_key_quota(mut self, quota: usize) -> Self {
        self.per_key_quota = quota;
        self
    }

    /// The clock that decides expiry (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the store.
    pub fn build(self) -> InMemoryReplayStore {
        InMemoryReplayStore {
            inner: Arc::new(Inner {
                entries: DashMap::new(),
                per_client: DashMap::new(),
                expiry: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
                capacity: self.capacity,
                per_key_quota: self.per_key_quota,
                clock: self.clock,
            }),
        }
    }
}

impl fmt::Debug for InMemoryReplayStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryReplayStoreBuilder")
            .field("capacity", &self.capacity)
            .field("per_key_quota", &self.per_key_quota)
            .finish_non_exhaustive()
    }
}
