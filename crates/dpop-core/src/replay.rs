//! Replay protection (RFC 9449 §11.1): each proof (`jkt`, `jti`) is accepted once.
//!
//! # How long a record lives
//!
//! A proof is accepted only while its `iat` is inside the verifier's window, so its record need
//! live only until `iat` leaves it: [`DpopVerifier::record`](crate::DpopVerifier::record) asks
//! for `iat + max_age + 1 s − now` (the second covers the whole-second clock), never less than
//! 1 s. With the default ±300 s window, a proof issued now is kept 301 s, one issued at the
//! future edge of the skew 601 s ([`DpopVerifier::replay_ttl`](crate::DpopVerifier::replay_ttl),
//! the longest). Live entries of one client are therefore its rate × about 301 s.
//!
//! # The in-memory store: limits and who they refuse
//!
//! [`InMemoryReplayStore`] never forgets a live entry to make room: when a limit is reached it
//! refuses, and the guard answers with `Retry-After` (a refusal is never an acceptance). Three
//! limits, all derived from one capacity `C` (default [`DEFAULT_CAPACITY`], 2,000,000):
//!
//! | limit | default | refusal | status |
//! |---|---|---|---|
//! | the store holds `C` live entries | 2,000,000 | [`ReplayStoreError::Full`] | 503 |
//! | one key holds its quota `Q` | `C / 2` = 1,000,000 | [`ReplayStoreError::QuotaExceeded`] | 429 |
//! | the store is above its high-water mark `C − C/4` and the key holds `C/4 ÷ 64` or more | 1,500,000 and 7,812 | [`ReplayStoreError::QuotaExceeded`] | 429 |
//!
//! - **A busy honest client is not locked out.** One key may hold `Q` entries: with the
//!   default, 15,000 proofs/s (this project's load benchmark on one key) for 66 s, or
//!   `Q / 301 s` ≈ 3,300 proofs/s for ever. A key past its quota is throttled, not shut out:
//!   its own oldest entries expire every second and make room for as many new ones. A client
//!   sustaining more than `C / 2 / 301 s` proofs/s on one key needs a larger `C`
//!   (`capacity ≥ 2 × rate × (max_age + 1 s)`).
//! - **One client cannot exhaust the store.** One key stops at `C / 2`, below the high-water
//!   mark; any number of busy keys together stop at the mark (`3C/4`): the last quarter of the
//!   capacity is a reserve that only keys holding few entries (fewer than 7,812 by default, a
//!   client below ≈ 26 proofs/s) may use. A flood from one key, or from a few, leaves every
//!   other client served.
//! - **Fresh keys are the global bound.** A flood of proofs from ever new keys looks, entry by
//!   entry, like many small clients: only the capacity stops it, with 503 for everyone once it
//!   is reached. Each entry costs the attacker one signature and the server one verification
//!   (the store is written last, after every other check), and behind a guard that validates
//!   access tokens only requests with a valid token bound to the key write at all: fresh keys
//!   then need fresh tokens from the authorization server. A proof-only guard on a public
//!   endpoint has no such gate: size `C` to what the server can verify in 601 s if it must
//!   never fill (a server verifying 15,000 proofs/s: 9 million entries).
//!
//! Memory: about 70 bytes per live entry (the `replay_memory` example of this crate measures the
//! resident memory of 1,000,000 entries from 1,000 keys), so the default capacity costs at most
//! about 140 MB, and only while that many proofs are live; an empty store costs a few kilobytes.
//!
//! # Many cores
//!
//! Entries live in shards (four per core, at least 8), chosen by a keyed hash of the proof, each
//! with its own lock over its map and its expiry index; an insert takes one shard lock, the
//! per-key counter of its client and one atomic for the global count. Expiry is filed by the
//! second an entry expires (an ordered map of seconds per shard), so a long-lived record never
//! holds back short-lived ones behind it; each insert removes up to [`EXPIRED_PER_INSERT`]
//! expired entries of its shard, and a refusal first sweeps every shard. The
//! `replay_concurrency` bench of this crate measures inserts from 1 to 8 threads.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::clock::{Clock, SystemClock};
use crate::crypto;
use crate::error::ConfigError;
use crate::proof::jwk::Thumbprint;

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

/// Expired entries an insert removes from its shard; more than one, so removal outpaces
/// insertion.
pub const EXPIRED_PER_INSERT: usize = 16;

/// Default number of live entries an [`InMemoryReplayStore`] holds; the per-key quota defaults
/// to half of the capacity.
pub const DEFAULT_CAPACITY: usize = 2_000_000;

/// The share of the capacity above the high-water mark: a reserve for keys holding few entries.
const RESERVE_DIVISOR: usize = 4;
/// A key may use the reserve while it holds fewer than the reserve ÷ this.
const SMALL_KEY_DIVISOR: usize = 64;

/// A bounded in-memory [`ReplayStore`] for one instance. Clones share the same entries.
///
/// When a limit is reached it refuses new proofs instead of forgetting live ones: see the
/// [module documentation](self) for the limits, whom they refuse, and the memory they cost.
#[derive(Clone)]
pub struct InMemoryReplayStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    /// Picks a proof's shard; keyed, so that no one can aim proofs at one shard.
    shard_hasher: RandomState,
    /// Client id (truncated thumbprint) → live entries.
    per_client: DashMap<u64, usize>,
    /// Live entries plus those being admitted, over every shard.
    len: AtomicUsize,
    limits: Limits,
    clock: Arc<dyn Clock>,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    capacity: usize,
    per_key_quota: usize,
    /// Above this many entries, only keys holding fewer than `small_key` may insert.
    high_water: usize,
    small_key: usize,
}

impl Limits {
    fn new(capacity: usize, per_key_quota: usize) -> Self {
        let reserve = capacity / RESERVE_DIVISOR;
        Self {
            capacity,
            per_key_quota,
            high_water: capacity - reserve,
            small_key: (reserve / SMALL_KEY_DIVISOR).max(1),
        }
    }

    /// Whether a key holding `held` entries may add one to a store holding `len` (the others
    /// checked already: `len` is below the capacity).
    fn admits(&self, held: usize, len: usize) -> bool {
        held < self.per_key_quota && (len < self.high_water || held < self.small_key)
    }
}

/// One shard: its proofs and when they expire.
#[derive(Default)]
struct Shard {
    /// Proof id (truncated: 128 bits keep collisions out of reach) → client id.
    entries: HashMap<[u8; 16], u64>,
    /// Expiry second → the proofs expiring then.
    expiry: BTreeMap<u64, Vec<[u8; 16]>>,
}

impl InMemoryReplayStore {
    /// A store with [`DEFAULT_CAPACITY`], a per-key quota of half of it, and the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// The default limits on `clock`.
    pub(crate) fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::from_parts(Limits::new(DEFAULT_CAPACITY, default_quota(DEFAULT_CAPACITY)), clock)
    }

    fn from_parts(limits: Limits, clock: Arc<dyn Clock>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let shards = cores.saturating_mul(4).clamp(8, 1024);
        InMemoryReplayStore {
            inner: Arc::new(Inner {
                shards: (0..shards).map(|_| Mutex::default()).collect(),
                shard_hasher: RandomState::new(),
                per_client: DashMap::new(),
                len: AtomicUsize::new(0),
                limits,
                clock,
            }),
        }
    }

    /// Configures a store.
    pub fn builder() -> InMemoryReplayStoreBuilder {
        InMemoryReplayStoreBuilder { capacity: DEFAULT_CAPACITY, per_key_quota: None, clock: Arc::new(SystemClock) }
    }

    /// Live entries (expired ones may still count until an insert removes them).
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
        let inner = &*self.inner;
        let now = inner.clock.now();
        // Whole seconds, rounded up: an entry lives at least `ttl`.
        let ttl_secs = ttl.as_secs().saturating_add(u64::from(ttl.subsec_nanos() > 0));
        let expires = now.saturating_add(ttl_secs);
        let proof = truncate16(key.proof_id());
        let client = truncate8(key.client_id());
        let shard = inner.shard(&proof)?;
        match inner.try_insert(shard, proof, client, expires, now) {
            // Only a refusal pays for a sweep of every shard, then tries once more.
            Err(ReplayStoreError::Full | ReplayStoreError::QuotaExceeded) => {
                inner.remove_all_expired(now);
                inner.try_insert(shard, proof, client, expires, now)
            }
            outcome => outcome,
        }
    }
}

impl Inner {
    fn shard(&self, proof: &[u8; 16]) -> Result<&Mutex<Shard>, ReplayStoreError> {
        let count = self.shards.len() as u64;
        let index = usize::try_from(self.shard_hasher.hash_one(proof) % count.max(1)).unwrap_or(0);
        self.shards.get(index).ok_or_else(|| ReplayStoreError::Unavailable("replay store has no shard".into()))
    }

    fn try_insert(
        &self,
        shard: &Mutex<Shard>,
        proof: [u8; 16],
        client: u64,
        expires: u64,
        now: u64,
    ) -> Result<Insertion, ReplayStoreError> {
        let mut shard = lock(shard);
        // A few per insert keep pace with expiry without ever stalling one request on a backlog.
        self.remove_expired(&mut shard, now, EXPIRED_PER_INSERT);
        if shard.entries.contains_key(&proof) {
            return Ok(Insertion::AlreadyPresent);
        }
        // Under the shard lock: no other insert of this proof can pass the check above meanwhile.
        self.admit(client)?;
        shard.entries.insert(proof, client);
        shard.expiry.entry(expires).or_default().push(proof);
        Ok(Insertion::Inserted)
    }

    /// Takes one entry's share of the capacity and of its client's quota, or refuses.
    fn admit(&self, client: u64) -> Result<(), ReplayStoreError> {
        // Reserve before checking, so that concurrent inserts cannot overshoot the capacity.
        let len = self.len.fetch_add(1, Ordering::AcqRel);
        if len >= self.limits.capacity {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(ReplayStoreError::Full);
        }
        match self.per_client.entry(client) {
            Entry::Vacant(vacant) => {
                vacant.insert(1);
            }
            Entry::Occupied(mut held) => {
                if !self.limits.admits(*held.get(), len) {
                    self.len.fetch_sub(1, Ordering::AcqRel);
                    return Err(ReplayStoreError::QuotaExceeded);
                }
                *held.get_mut() += 1;
            }
        }
        Ok(())
    }

    /// Removes up to `limit` entries of `shard` that expired by `now`, earliest first.
    fn remove_expired(&self, shard: &mut Shard, now: u64, limit: usize) {
        let mut removed = 0;
        while removed < limit {
            let Some(mut bucket) = shard.expiry.first_entry() else { break };
            if *bucket.key() > now {
                break;
            }
            let proofs = bucket.get_mut();
            while removed < limit {
                let Some(proof) = proofs.pop() else { break };
                if let Some(client) = shard.entries.remove(&proof) {
                    self.release(client);
                }
                removed += 1;
            }
            if proofs.is_empty() {
                bucket.remove();
            }
        }
    }

    fn remove_all_expired(&self, now: u64) {
        for shard in &self.shards {
            self.remove_expired(&mut lock(shard), now, usize::MAX);
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
}

/// The per-key quota of a store of `capacity` unless set: half of it.
const fn default_quota(capacity: usize) -> usize {
    capacity.div_ceil(2)
}

/// Locks a shard. Lock order: a shard, then a `per_client` entry, never the other way.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A shard stays consistent even if a holder panicked: every change to it is whole.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
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
            .field("limits", &self.inner.limits)
            .field("shards", &self.inner.shards.len())
            .finish_non_exhaustive()
    }
}

/// Builds an [`InMemoryReplayStore`].
#[derive(Clone)]
#[must_use]
pub struct InMemoryReplayStoreBuilder {
    capacity: usize,
    /// `None`: half of the capacity.
    per_key_quota: Option<usize>,
    clock: Arc<dyn Clock>,
}

impl InMemoryReplayStoreBuilder {
    /// The most live entries the store holds (default [`DEFAULT_CAPACITY`]); the high-water
    /// mark and the reserve follow from it.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most live entries one client key may hold (default: half of the capacity).
    pub fn per_key_quota(mut self, quota: usize) -> Self {
        self.per_key_quota = Some(quota);
        self
    }

    /// The clock that decides expiry (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the store.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for a zero capacity or a zero per-key quota: such a store
    /// would refuse every proof.
    pub fn build(self) -> Result<InMemoryReplayStore, ConfigError> {
        if self.capacity == 0 {
            return Err(ConfigError::ZeroLimit("replay store capacity"));
        }
        let per_key_quota = self.per_key_quota.unwrap_or_else(|| default_quota(self.capacity));
        if per_key_quota == 0 {
            return Err(ConfigError::ZeroLimit("replay store per_key_quota"));
        }
        Ok(InMemoryReplayStore::from_parts(Limits::new(self.capacity, per_key_quota), self.clock))
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
