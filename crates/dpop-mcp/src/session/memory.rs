//! [`InMemorySessionStore`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Binding, SessionFuture, SessionKey, SessionOwner, SessionStore, SessionStoreError};

/// How many live sessions an [`InMemorySessionStore`] holds by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How long a binding lives without a request by default: 30 minutes, longer than rmcp's
/// default session keep-alive (5 minutes), so a session rmcp still serves is never refused
/// for an expired binding.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Session bindings in this process's memory: for one server instance (use
/// `RedisSessionStore`, feature `redis`, for several).
///
/// Bounded: at most `capacity` live bindings, each a fixed size (digests, not the session id
/// or the subject). A binding expires after `idle_timeout` without a request in its session
/// and is then removed. When the store is full of live bindings, a new session is refused
/// ([`SessionStoreError::Full`], the layer answers `503`): a live binding is never evicted,
/// because an evicted binding would turn its session into one nobody can use (refused as
/// unknown), or, worse, one any caller could claim. One owner (key and subject) may hold at
/// most half of the capacity ([`with_per_owner_quota`](Self::with_per_owner_quota) to change
/// it); its next session is refused ([`SessionStoreError::OwnerQuotaExceeded`], `429`), so one
/// caller opening sessions in a loop cannot shut everyone else out.
///
/// ```
/// use std::time::Duration;
///
/// use dpop_mcp::{InMemorySessionStore, SessionBindingLayer};
///
/// let store = InMemorySessionStore::new(10_000, Duration::from_secs(15 * 60));
/// let layer = SessionBindingLayer::new(store);
/// # let _ = layer;
/// ```
#[derive(Debug)]
pub struct InMemorySessionStore {
    sessions: Mutex<Sessions>,
    capacity: usize,
    per_owner_quota: usize,
    idle_timeout: Duration,
}

#[derive(Debug, Default)]
struct Sessions {
    by_key: HashMap<SessionKey, Entry>,
    /// Live bindings per owner; owners with none are removed.
    per_owner: HashMap<SessionOwner, usize>,
    /// Every binding by last use (with a sequence number for ties): the oldest first.
    by_last_use: BTreeMap<(Instant, u64), SessionKey>,
    sequence: u64,
}

#[derive(Debug)]
struct Entry {
    owner: SessionOwner,
    last_use: (Instant, u64),
}

impl Default for InMemorySessionStore {
    /// [`DEFAULT_CAPACITY`] sessions, [`DEFAULT_IDLE_TIMEOUT`].
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY, DEFAULT_IDLE_TIMEOUT)
    }
}

impl InMemorySessionStore {
    /// A store of at most `capacity` live bindings that expire after `idle_timeout` without a
    /// request.
    #[must_use]
    pub fn new(capacity: usize, idle_timeout: Duration) -> Self {
        Self {
            sessions: Mutex::new(Sessions::default()),
            capacity,
            per_owner_quota: capacity.div_ceil(2),
            idle_timeout,
        }
    }

    /// This store, letting one owner hold at most `quota` live bindings (default: half of the
    /// capacity).
    #[must_use]
    pub fn with_per_owner_quota(mut self, quota: usize) -> Self {
        self.per_owner_quota = quota;
        self
    }

    /// How many bindings the store holds (expired ones included until the next operation).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether the store holds no binding.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The store's state. A panic elsewhere while holding the lock cannot leave it
    /// inconsistent (every operation's writes come after its checks), so a poisoned lock is
    /// used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bind_at(&self, session: SessionKey, owner: &SessionOwner, now: Instant) -> Result<Binding, SessionStoreError> {
        let mut sessions = self.lock();
        sessions.expire(now, self.idle_timeout);
        if sessions.by_key.contains_key(&session) {
            return Ok(Binding::AlreadyBound);
        }
        if sessions.by_key.len() >= self.capacity {
            return Err(SessionStoreError::Full { capacity: self.capacity });
        }
        if sessions.per_owner.get(owner).copied().unwrap_or(0) >= self.per_owner_quota {
            return Err(SessionStoreError::OwnerQuotaExceeded { quota: self.per_owner_quota });
        }
        let last_use = sessions.stamp(now);
        sessions.by_last_use.insert(last_use, session);
        sessions.by_key.insert(session, Entry { owner: owner.clone(), last_use });
        *sessions.per_owner.entry(owner.clone()).or_insert(0) += 1;
        Ok(Binding::New)
    }

    fn owner_at(&self, session: SessionKey, now: Instant) -> Option<SessionOwner> {
        let mut sessions = self.lock();
        sessions.expire(now, self.idle_timeout);
        let last_use = sessions.stamp(now);
        let Sessions { by_key, by_last_use, .. } = &mut *sessions;
        let entry = by_key.get_mut(&session)?;
        by_last_use.remove(&entry.last_use);
        by_last_use.insert(last_use, session);
        entry.last_use = last_use;
        Some(entry.owner.clone())
    }

    fn unbind_now(&self, session: SessionKey) {
        let mut sessions = self.lock();
        if let Some(entry) = sessions.by_key.remove(&session) {
            sessions.by_last_use.remove(&entry.last_use);
            sessions.release(&entry.owner);
        }
    }
}

impl Sessions {
    /// A fresh last-use stamp.
    fn stamp(&mut self, now: Instant) -> (Instant, u64) {
        self.sequence = self.sequence.wrapping_add(1);
        (now, self.sequence)
    }

    /// Removes the bindings idle for `idle_timeout` or longer: the oldest first, so this stops
    /// at the first live one.
    fn expire(&mut self, now: Instant, idle_timeout: Duration) {
        while let Some(entry) = self.by_last_use.first_entry() {
            if now.saturating_duration_since(entry.key().0) < idle_timeout {
                break;
            }
            let session = entry.remove();
            if let Some(expired) = self.by_key.remove(&session) {
                self.release(&expired.owner);
            }
        }
    }

    /// One binding of `owner` fewer.
    fn release(&mut self, owner: &SessionOwner) {
        if let Some(held) = self.per_owner.get_mut(owner) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.per_owner.remove(owner);
            }
        }
    }
}

impl SessionStore for InMemorySessionStore {
    fn bind<'a>(&'a self, session: SessionKey, owner: &'a SessionOwner) -> SessionFuture<'a, Binding> {
        let result = self.bind_at(session, owner, Instant::now());
        Box::pin(async move { result })
    }

    fn owner(&self, session: SessionKey) -> SessionFuture<'_, Option<SessionOwner>> {
        let owner = self.owner_at(session, Instant::now());
        Box::pin(async move { Ok(owner) })
    }

    fn unbind(&self, session: SessionKey) -> SessionFuture<'_, ()> {
        self.unbind_now(session);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn alice() -> SessionOwner {
        SessionOwner::new(Some("alice-key"), Some("alice"))
    }

    #[test]
    fn a_session_is_bound_once_to_its_first_owner() {
        let store = InMemorySessionStore::default();
        let (now, session) = (Instant::now(), SessionKey::of("s1"));
        assert_eq!(store.bind_at(session, &alice(), now).ok(), Some(Binding::New));
        let mallory = SessionOwner::new(Some("mallory-key"), Some("mallory"));
        assert_eq!(store.bind_at(session, &mallory, now).ok(), Some(Binding::AlreadyBound));
        assert_eq!(store.owner_at(session, now), Some(alice()));
        assert_eq!(store.owner_at(SessionKey::of("s2"), now), None);
    }

    #[test]
    fn a_binding_expires_after_the_idle_timeout_and_each_use_restarts_it() {
        let store = InMemorySessionStore::new(10, 30 * MINUTE);
        let (start, session) = (Instant::now(), SessionKey::of("s1"));
        store.bind_at(session, &alice(), start).ok();
        assert_eq!(store.owner_at(session, start + 29 * MINUTE), Some(alice()));
        // Used at 29 minutes: alive until 59.
        assert_eq!(store.owner_at(session, start + 58 * MINUTE), Some(alice()));
        assert_eq!(store.owner_at(session, start + 88 * MINUTE), None);
        assert!(store.is_empty());
    }

    #[test]
    fn one_owner_holds_at_most_its_quota_and_others_still_bind() {
        let store = InMemorySessionStore::new(10, 30 * MINUTE).with_per_owner_quota(2);
        let start = Instant::now();
        for id in ["a1", "a2"] {
            assert_eq!(store.bind_at(SessionKey::of(id), &alice(), start).ok(), Some(Binding::New));
        }
        let refused = store.bind_at(SessionKey::of("a3"), &alice(), start);
        assert!(matches!(refused, Err(SessionStoreError::OwnerQuotaExceeded { quota: 2 })), "{refused:?}");
        // Another caller, even with alice's key, is another owner.
        let bob = SessionOwner::new(Some("alice-key"), Some("bob"));
        assert_eq!(store.bind_at(SessionKey::of("b1"), &bob, start).ok(), Some(Binding::New));
        // An ended session and an expired one give their place back.
        store.unbind_now(SessionKey::of("a1"));
        assert_eq!(store.bind_at(SessionKey::of("a3"), &alice(), start).ok(), Some(Binding::New));
        let later = start + 31 * MINUTE;
        assert_eq!(store.bind_at(SessionKey::of("a4"), &alice(), later).ok(), Some(Binding::New));
        assert_eq!(store.bind_at(SessionKey::of("a5"), &alice(), later).ok(), Some(Binding::New));
    }

    #[test]
    fn the_default_quota_is_half_of_the_capacity() {
        let store = InMemorySessionStore::new(4, 30 * MINUTE);
        let start = Instant::now();
        for id in ["a1", "a2"] {
            assert_eq!(store.bind_at(SessionKey::of(id), &alice(), start).ok(), Some(Binding::New));
        }
        assert!(store.bind_at(SessionKey::of("a3"), &alice(), start).is_err());
    }

    #[test]
    fn a_full_store_refuses_new_sessions_and_keeps_the_live_ones() {
        // One owner fills the store here: its quota is lifted to the capacity.
        let store = InMemorySessionStore::new(2, 30 * MINUTE).with_per_owner_quota(2);
        let start = Instant::now();
        store.bind_at(SessionKey::of("s1"), &alice(), start).ok();
        store.bind_at(SessionKey::of("s2"), &alice(), start + MINUTE).ok();
        let refused = store.bind_at(SessionKey::of("s3"), &alice(), start + 2 * MINUTE);
        assert!(matches!(refused, Err(SessionStoreError::Full { capacity: 2 })), "{refused:?}");
        assert_eq!(store.owner_at(SessionKey::of("s1"), start + 2 * MINUTE), Some(alice()));
        assert_eq!(store.len(), 2);
        // s2 (bound at 1 minute, not used since) expires at 31; s1 was used at 2. That makes room.
        let later = start + 31 * MINUTE;
        assert_eq!(store.bind_at(SessionKey::of("s3"), &alice(), later).ok(), Some(Binding::New));
        assert_eq!(store.owner_at(SessionKey::of("s1"), later), Some(alice()));
        assert_eq!(store.owner_at(SessionKey::of("s2"), later), None);
    }

    #[test]
    fn an_ended_session_is_forgotten_and_frees_its_place() {
        let store = InMemorySessionStore::new(1, 30 * MINUTE);
        let now = Instant::now();
        store.bind_at(SessionKey::of("s1"), &alice(), now).ok();
        store.unbind_now(SessionKey::of("s1"));
        assert_eq!(store.owner_at(SessionKey::of("s1"), now), None);
        assert_eq!(store.bind_at(SessionKey::of("s2"), &alice(), now).ok(), Some(Binding::New));
    }
}
