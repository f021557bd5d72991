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
//! refuses, and the guard answers with `Retry-After` (a refusal is never an acceptance). The
//! limits all derive from one capacity `C` (default [`DEFAULT_CAPACITY`], 2,000,000). A record
//! is *validated* when the request's access token was validated and found bound to the proof's
//! key ([`ReplayKey::with_validated_token`]; the guard says so), *proof-only* otherwise
//! ([`ReplayKey::new`]: a proof-only guard, the token endpoint, a verifier used on its own).
//!
//! | limit | for | default | refusal | status |
//! |---|---|---|---|---|
//! | the store holds `C` live entries | every record | 2,000,000 | [`ReplayStoreError::Full`] | 503 |
//! | one key holds its quota `Q` | every record | `C / 2` = 1,000,000 | [`ReplayStoreError::QuotaExceeded`] | 429 |
//! | the store is above its high-water mark `C − C/4` and the key holds `C/4 ÷ 64` or more | every record | 1,500,000 and 7,812 | [`ReplayStoreError::QuotaExceeded`] | 429 |
//! | proof-only records hold their share `P = C − C/2`, or the store is at its high-water mark | proof-only | 1,000,000 or 1,500,000 | [`ReplayStoreError::Full`] | 503 |
//! | proof-only records hold more than `P − P/4` and the key holds `C/4 ÷ 64` or more | proof-only | 750,000 and 7,812 | [`ReplayStoreError::QuotaExceeded`] | 429 |
//!
//! - **A busy honest client is not locked out.** One key may hold `Q` entries: with the
//!   default, 15,000 proofs/s (this project's load benchmark on one key, which validates its
//!   tokens) for 66 s, or `Q / 301 s` ≈ 3,300 proofs/s for ever. A key past its quota is
//!   throttled, not shut out: its own oldest entries expire every second and make room for as
//!   many new ones. A client sustaining more than `C / 2 / 301 s` proofs/s on one key needs a
//!   larger `C` (`capacity ≥ 2 × rate × (max_age + 1 s)`).
//! - **One client cannot exhaust the store.** One key stops at `C / 2`, below the high-water
//!   mark; any number of busy keys together stop at the mark (`3C/4`): the last quarter of the
//!   capacity is a reserve that only keys holding few entries (fewer than 7,812 by default, a
//!   client below ≈ 26 proofs/s) may use. A flood from one key, or from a few, leaves every
//!   other client served.
//! - **Fresh keys are the global bound.** A flood of proofs from ever new keys looks, entry by
//!   entry, like many small clients: only a capacity stops it. Each entry costs the attacker one
//!   signature and the server one verification (the store is written last, after every other
//!   check). Behind a guard that validates access tokens only requests with a valid token bound
//!   to the key write at all: fresh keys then need fresh tokens from the authorization server,
//!   and only `C` stops them. A proof-only guard on a public endpoint has no such gate: its
//!   records stop at their share `P`, with 503 for proof-only requests once it is reached;
//!   size `C` to twice what the server can verify in 601 s if they must never be refused (a
//!   server verifying 15,000 proofs/s: 18 million).
//!
//! # Validated records come first
//!
//! Guards built without a store of their own share one store per process, so a proof-only
//! endpoint and one that validates tokens write to the same entries. Proof-only records may
//! hold only their share `P`, half of the capacity, and never the reserve above the high-water
//! mark; within `P` they have the same structure as the whole store (busy keys stop at
//! `P − P/4`, the rest is for keys holding few entries), so a server with proof-only endpoints
//! alone keeps the guarantees above at half the scale. Validated records may use the whole
//! capacity. A flood of fresh keys through a proof-only endpoint therefore cannot fill the
//! store for validated clients: it leaves them the other half, exactly what a one-key flood
//! leaves them (the default quota is half too): busy validated keys together keep `C/4` below
//! the high-water mark, and the reserve above it serves validated keys holding few entries.
//! Why half: a larger share would leave validated clients less than a one-key flood does; a
//! smaller one would throttle a proof-only server's single busy key sooner than `3C/8`
//! (750,000 entries by default, 2,500 proofs/s for ever).
//!
//! Memory: about 78 bytes per live entry (the `replay_memory` example of this crate measures the
//! resident memory of 1,000,000 entries from 1,000 keys), so the default capacity costs at most
//! about 160 MB, and only while that many proofs are live; an empty store costs a few kilobytes.
//!
//! # Many cores
//!
//! Entries live in shards, chosen by a keyed hash of the proof. Each shard has one lock over its
//! entries, its expiry index and its own counts (its entries, its proof-only entries, the
//! entries of each client key in it), and enforces its share of every limit: of `n` shards,
//! shard `i` gets `⌊L / n⌋` of a limit `L`, plus one if `i < L mod n`, so the shares of every
//! limit add up to exactly the whole (the small-key threshold's share is at least one). An
//! insert takes one shard lock and touches nothing shared beyond it: no global counter, no
//! per-key counter of its own, so two inserts of one client key meet only when their proofs
//! fall in the same shard; shards are aligned so that no two share a cache line. A thread holds
//! at most one shard lock at a time and no other lock ([`len`](InMemoryReplayStore::len) takes
//! them one after another): there is no lock order to get wrong.
//!
//! **What the shares keep exact.** No shard exceeds its share, so the store never holds more
//! than `C` entries, one key never more than `Q`, proof-only records never more than `P`; every
//! refusal is a refusal, whichever shard decided it.
//!
//! **What they approximate.** The keyed hash spreads a key's proofs evenly over the shards, but
//! not exactly: a key reaches its share in its fullest shard a little before it holds `Q` in
//! all, and the first `Full` comes a little before `C` entries (other shards still accept until
//! they are full too). The gap is a few standard deviations of a share, about `3 × √share`
//! entries per shard: under 3 % of the limit while a shard's share is at least 16,384 entries.
//!
//! **How many shards.** Thirty-two per core, so that two threads seldom want one lock at once
//! (a lock found taken may put the thread to sleep, far dearer than the insert), but at most
//! `min(C, Q) / 16,384` (and 1,024), and at least one. The default store has 61 shards from
//! 2 cores on (a share of the default quota is 16,393 entries), 32 on one core. A store whose
//! capacity or quota is below 32,768 has one shard, and its limits hold entry for entry as the
//! table above says.
//!
//! Expiry is filed by the second an entry expires (an ordered map of seconds per shard), so a
//! long-lived record never holds back short-lived ones behind it; each insert removes up to
//! [`EXPIRED_PER_INSERT`] expired entries of its shard, and a refusal first sweeps every expired
//! entry of its shard (the only one whose counts decided it), then decides again. The
//! `replay_concurrency` bench of this crate measures inserts into the default store from 1 to 8
//! threads, on one client key and on many.

use std::collections::hash_map::Entry;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher as _, Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::crypto;
use crate::error::ConfigError;
use crate::proof::jwk::Thumbprint;

/// The fixed-size identity of one proof: SHA-256 over the key thumbprint and `jti`; and the
/// class of its record, proof-only or [validated](Self::with_validated_token).
///
/// Untrusted bytes never form a store key: `jti` only enters through the hash. Equality and
/// hashing are the proof's: two keys of one proof are equal whatever their class.
#[derive(Clone, Copy)]
pub struct ReplayKey {
    proof: [u8; 32],
    client: [u8; 32],
    validated_token: bool,
}

impl ReplayKey {
    /// The key for the proof `jti` signed by the key with thumbprint `jkt`, recorded as
    /// proof-only: nothing says the request's access token was validated.
    #[must_use]
    pub fn new(jkt: &Thumbprint, jti: &str) -> Self {
        let proof = crypto::sha256_concat(&[jkt.as_bytes(), jti.as_bytes()]);
        Self { proof, client: *jkt.as_bytes(), validated_token: false }
    }

    /// This key, for a request whose access token was validated and found bound to the proof's
    /// key (RFC 9449 §6): [`InMemoryReplayStore`] lets such records use its whole capacity,
    /// proof-only ones half of it (see the [module documentation](self)). Say so only after
    /// both checks; [`DpopGuard`](crate::DpopGuard) does.
    #[must_use]
    pub const fn with_validated_token(mut self) -> Self {
        self.validated_token = true;
        self
    }

    /// Whether the record is for a validated access token bound to the proof's key
    /// ([`with_validated_token`](Self::with_validated_token)); `false` for a proof-only record.
    #[must_use]
    pub const fn has_validated_token(&self) -> bool {
        self.validated_token
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

impl PartialEq for ReplayKey {
    fn eq(&self, other: &Self) -> bool {
        self.proof == other.proof && self.client == other.client
    }
}

impl Eq for ReplayKey {}

impl Hash for ReplayKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.proof.hash(state);
        self.client.hash(state);
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayKey").field("validated_token", &self.validated_token).finish_non_exhaustive()
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
/// Proof-only records may hold the capacity less the capacity ÷ this: half, rounded up.
const PROOF_ONLY_DIVISOR: usize = 2;

/// Shards per core, so that threads seldom meet on one lock.
const SHARDS_PER_CORE: usize = 32;
/// The least share of the smaller of the capacity and the per-key quota a shard may have: below
/// it, a key's entries spread too unevenly over the shards for the shares to add up to the
/// global limits closely (see the module documentation).
const MIN_SHARD_SHARE: usize = 16_384;
/// The most shards a store has, whatever the core count.
const MAX_SHARDS: usize = 1_024;

/// A bounded in-memory [`ReplayStore`] for one instance. Clones share the same entries.
///
/// When a limit is reached it refuses new proofs instead of forgetting live ones: see the
/// [module documentation](self) for the limits, whom they refuse, and the memory they cost.
#[derive(Clone)]
pub struct InMemoryReplayStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Each with its share of the limits, its entries and its counts.
    shards: Box<[Mutex<Shard>]>,
    /// Picks a proof's shard; keyed, so that no one can aim proofs at one shard.
    shard_hasher: RandomState,
    /// The whole store's limits; each shard enforces its share of them.
    limits: Limits,
    clock: Arc<dyn Clock>,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    capacity: usize,
    per_key_quota: usize,
    /// Above this many entries, only keys holding fewer than `small_key` may insert, and no
    /// proof-only record.
    high_water: usize,
    small_key: usize,
    /// The most proof-only entries.
    proof_only: usize,
    /// Above this many proof-only entries, only keys holding fewer than `small_key` may add one.
    proof_only_high_water: usize,
}

impl Limits {
    fn new(capacity: usize, per_key_quota: usize) -> Self {
        let reserve = capacity / RESERVE_DIVISOR;
        let proof_only = capacity - capacity / PROOF_ONLY_DIVISOR;
        Self {
            capacity,
            per_key_quota,
            high_water: capacity - reserve,
            small_key: (reserve / SMALL_KEY_DIVISOR).max(1),
            proof_only,
            proof_only_high_water: proof_only - proof_only / RESERVE_DIVISOR,
        }
    }

    /// Shard `index`'s share of these limits when there are `shards`: the shares of each limit
    /// but the small-key threshold add up to the whole exactly.
    fn share(&self, shards: usize, index: usize) -> Self {
        let share = |limit: usize| share(limit, shards, index);
        Self {
            capacity: share(self.capacity),
            per_key_quota: share(self.per_key_quota),
            high_water: share(self.high_water),
            // A key holding few entries holds few in every shard; never zero, or a shard would
            // refuse every key above its mark.
            small_key: share(self.small_key).max(1),
            proof_only: share(self.proof_only),
            proof_only_high_water: share(self.proof_only_high_water),
        }
    }

    /// How many shards a store with these limits has: [`SHARDS_PER_CORE`] per core, but no
    /// more than leave each shard [`MIN_SHARD_SHARE`] of the smaller of the capacity and the
    /// quota, and at least one (then the limits hold entry for entry).
    fn shards(&self, cores: usize) -> usize {
        let most = (self.capacity.min(self.per_key_quota) / MIN_SHARD_SHARE).min(MAX_SHARDS);
        cores.saturating_mul(SHARDS_PER_CORE).min(most).max(1)
    }
}

/// Shard `index`'s share of `limit` over `shards`: the quotient, plus one for the first
/// `limit mod shards` shards.
fn share(limit: usize, shards: usize, index: usize) -> usize {
    let shards = shards.max(1);
    limit / shards + usize::from(index < limit % shards)
}

/// Whose an entry is, in one word as the client id alone was: the client id (the thumbprint's
/// first 64 bits as a little-endian integer, less the top bit: 63 bits keep quota collisions out
/// of reach) and, in the top bit, whether the record is for a validated token.
#[derive(Clone, Copy)]
struct Owner(u64);

impl Owner {
    const VALIDATED_TOKEN: u64 = 1 << 63;

    fn of(key: &ReplayKey) -> Self {
        let class = if key.has_validated_token() { Self::VALIDATED_TOKEN } else { 0 };
        Self((truncate8(key.client_id()) & !Self::VALIDATED_TOKEN) | class)
    }

    /// The client id, for the per-key counts.
    const fn client(self) -> u64 {
        self.0 & !Self::VALIDATED_TOKEN
    }

    const fn validated_token(self) -> bool {
        self.0 & Self::VALIDATED_TOKEN != 0
    }
}

/// One shard: its proofs, when they expire, and its counts, all under its lock.
///
/// Aligned to two cache lines, so that no two shards share one: a shard's lock and counts move
/// between cores only when inserts of both land in that shard.
#[repr(align(128))]
struct Shard {
    /// Proof id (truncated: 128 bits keep collisions out of reach) → its owner.
    entries: HashMap<[u8; 16], Owner>,
    /// The earliest second in `expiry` (`u64::MAX` when empty): most inserts find nothing
    /// expired without reading the index, which other cores' inserts keep writing.
    earliest: u64,
    /// Expiry second → the proofs expiring then.
    expiry: BTreeMap<u64, Vec<[u8; 16]>>,
    counts: Counts,
    /// This shard's share of the store's limits.
    limits: Limits,
}

/// A shard's counts beside its number of entries.
#[derive(Default)]
struct Counts {
    /// Client id → its live entries in the shard.
    per_client: HashMap<u64, usize>,
    /// Proof-only entries in the shard.
    proof_only: usize,
}

impl Counts {
    fn add(&mut self, owner: Owner) {
        let held = self.per_client.entry(owner.client()).or_insert(0);
        *held = held.saturating_add(1);
        if !owner.validated_token() {
            self.proof_only = self.proof_only.saturating_add(1);
        }
    }

    fn release(&mut self, owner: Owner) {
        if !owner.validated_token() {
            self.proof_only = self.proof_only.saturating_sub(1);
        }
        if let Entry::Occupied(mut held) = self.per_client.entry(owner.client()) {
            *held.get_mut() = held.get().saturating_sub(1);
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

impl Shard {
    fn new(limits: Limits) -> Self {
        Self { entries: HashMap::new(), earliest: u64::MAX, expiry: BTreeMap::new(), counts: Counts::default(), limits }
    }

    /// Whether `owner` may add an entry, by this shard's share of the limits.
    fn admits(&self, owner: Owner) -> Result<(), ReplayStoreError> {
        let (len, limits) = (self.entries.len(), &self.limits);
        if len >= limits.capacity {
            return Err(ReplayStoreError::Full);
        }
        let held = self.counts.per_client.get(&owner.client()).copied().unwrap_or(0);
        let small = held < limits.small_key;
        if held >= limits.per_key_quota || (len >= limits.high_water && !small) {
            return Err(ReplayStoreError::QuotaExceeded);
        }
        if !owner.validated_token() {
            // Proof-only records: their own share, never the reserve above the mark, and the
            // same structure within their share as the whole has.
            if self.counts.proof_only >= limits.proof_only || len >= limits.high_water {
                return Err(ReplayStoreError::Full);
            }
            if self.counts.proof_only >= limits.proof_only_high_water && !small {
                return Err(ReplayStoreError::QuotaExceeded);
            }
        }
        Ok(())
    }

    /// Files `proof` of `owner`, just entered in `entries`, to expire at `expires` and in the
    /// counts; [`admits`](Self::admits) said yes.
    fn file(&mut self, proof: [u8; 16], owner: Owner, expires: u64) {
        self.expiry.entry(expires).or_default().push(proof);
        self.earliest = self.earliest.min(expires);
        self.counts.add(owner);
    }

    /// Removes up to `limit` entries that expired by `now`, earliest first.
    fn remove_expired(&mut self, now: u64, limit: usize) {
        if self.earliest > now {
            return;
        }
        let mut removed = 0;
        while removed < limit {
            let Some(mut bucket) = self.expiry.first_entry() else { break };
            if *bucket.key() > now {
                break;
            }
            let proofs = bucket.get_mut();
            while removed < limit {
                let Some(proof) = proofs.pop() else { break };
                if let Some(owner) = self.entries.remove(&proof) {
                    self.counts.release(owner);
                }
                removed += 1;
            }
            if proofs.is_empty() {
                bucket.remove();
            }
        }
        self.earliest = self.expiry.first_key_value().map_or(u64::MAX, |(second, _)| *second);
    }
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
        let shards = limits.shards(cores);
        InMemoryReplayStore {
            inner: Arc::new(Inner {
                shards: (0..shards).map(|index| Mutex::new(Shard::new(limits.share(shards, index)))).collect(),
                shard_hasher: RandomState::new(),
                limits,
                clock,
            }),
        }
    }

    /// Configures a store.
    pub fn builder() -> InMemoryReplayStoreBuilder {
        InMemoryReplayStoreBuilder { capacity: DEFAULT_CAPACITY, per_key_quota: None, clock: Arc::new(SystemClock) }
    }

    /// Live entries (expired ones may still count until an insert removes them): the sum over
    /// the shards, each read under its lock in turn, so only a snapshot while inserts run.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|shard| lock(shard).entries.len()).sum()
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
        let owner = Owner::of(key);
        let mut guard = lock(inner.shard(&proof)?);
        let shard = &mut *guard;
        // A few per insert keep pace with expiry without ever stalling one request on a backlog.
        shard.remove_expired(now, EXPIRED_PER_INSERT);
        // Decided before the lookup, so that one lookup finds the proof or the place for it.
        let admitted = shard.admits(owner);
        match shard.entries.entry(proof) {
            Entry::Occupied(_) => return Ok(Insertion::AlreadyPresent),
            Entry::Vacant(vacant) if admitted.is_ok() => {
                vacant.insert(owner);
            }
            Entry::Vacant(_) => {
                // Only a refusal pays for a sweep, of this shard alone (its counts alone
                // decided), then decides once more. The sweep removes entries, never this proof's
                // (it was absent).
                shard.remove_expired(now, usize::MAX);
                shard.admits(owner)?;
                shard.entries.insert(proof, owner);
            }
        }
        // Under the shard lock since the lookup: no other insert of this proof, and no other
        // change to the counts that admitted it, can come in between.
        shard.file(proof, owner, expires);
        Ok(Insertion::Inserted)
    }
}

impl Inner {
    fn shard(&self, proof: &[u8; 16]) -> Result<&Mutex<Shard>, ReplayStoreError> {
        let count = self.shards.len() as u64;
        let index = usize::try_from(self.shard_hasher.hash_one(proof) % count.max(1)).unwrap_or(0);
        self.shards.get(index).ok_or_else(|| ReplayStoreError::Unavailable("replay store has no shard".into()))
    }
}

/// The per-key quota of a store of `capacity` unless set: half of it.
const fn default_quota(capacity: usize) -> usize {
    capacity.div_ceil(2)
}

/// Locks a shard. Lock order: a thread holds at most one shard lock at a time, and no other.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_thirty_two_per_core_while_each_keeps_a_large_share_of_the_quota_and_capacity() {
        let default = Limits::new(DEFAULT_CAPACITY, default_quota(DEFAULT_CAPACITY));
        assert_eq!(default.shards(1), 32);
        // A share of the default quota stays at 16,384 or more: 61 shards from 2 cores on.
        assert_eq!(default.shards(2), 61);
        assert_eq!(default.shards(1_000), 61);
        // Small limits, or a small quota in a large store: one shard, exact limits.
        assert_eq!(Limits::new(10, 3).shards(64), 1);
        assert_eq!(Limits::new(20_000, 10_000).shards(64), 1);
        assert_eq!(Limits::new(65_534, 32_767).shards(64), 1);
        assert_eq!(Limits::new(65_536, 32_768).shards(64), 2);
        assert_eq!(Limits::new(DEFAULT_CAPACITY, 20_000).shards(64), 1);
        // No quota to speak of: the capacity decides; never more than the most.
        assert_eq!(Limits::new(1 << 20, usize::MAX).shards(64), 64);
        assert_eq!(Limits::new(usize::MAX, usize::MAX).shards(usize::MAX), MAX_SHARDS);
        assert_eq!(Limits::new(1, 1).shards(0), 1);
    }

    #[test]
    fn the_shares_of_each_limit_add_up_to_the_limit() {
        for (capacity, quota, shards) in [(1_000_003, 500_002, 7), (2_000_000, 1_000_000, 61), (131_072, 65_536, 4)] {
            let whole = Limits::new(capacity, quota);
            let parts: Vec<Limits> = (0..shards).map(|index| whole.share(shards, index)).collect();
            assert_eq!(parts.iter().map(|p| p.capacity).sum::<usize>(), whole.capacity);
            assert_eq!(parts.iter().map(|p| p.per_key_quota).sum::<usize>(), whole.per_key_quota);
            assert_eq!(parts.iter().map(|p| p.high_water).sum::<usize>(), whole.high_water);
            assert_eq!(parts.iter().map(|p| p.small_key).sum::<usize>(), whole.small_key);
            // Shares differ by one at most.
            let (least, most) = (parts.iter().map(|p| p.capacity).min(), parts.iter().map(|p| p.capacity).max());
            assert!(most.unwrap() - least.unwrap() <= 1);
        }
        // One shard: the limits themselves.
        let whole = Limits::new(10, 3);
        let one = whole.share(1, 0);
        assert_eq!(
            (one.capacity, one.per_key_quota, one.high_water, one.small_key),
            (whole.capacity, whole.per_key_quota, whole.high_water, whole.small_key)
        );
    }
}
