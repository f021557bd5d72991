//! A cache of validated access tokens in front of any [`TokenValidator`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dpop_core::{AccessToken, TokenFuture};
use dpop_core::{TokenClaims, TokenError, TokenValidator, clock::Clock, clock::SystemClock};

/// Default number of tokens kept.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Default longest time a validation result is kept, whatever the token's `exp`.
pub const DEFAULT_CACHE_MAX_TTL: Duration = Duration::from_secs(5 * 60);

/// Remembers the tokens an inner validator accepted, so that a client reusing its access token
/// costs one DPoP proof signature check per request, not a token signature check (or an
/// introspection request) as well.
///
/// - The key is the SHA-256 of the token; the token itself is never stored.
/// - An entry lives until the token's `exp` and at most [`max_ttl`](Self::max_ttl) (default
///   5 minutes, which bounds how long a revoked token stays accepted after introspection said
///   it was active). A token whose `exp` cannot be read as a NumericDate is not cached.
/// - At most [`capacity`](Self::capacity) entries (default 10 000). When full, expired
///   entries are dropped (at most one sweep per second); if none had expired the new result is
///   simply not stored: the token is still validated, only not remembered.
/// - Only acceptances are cached. Refusals are not: caching them would let anyone fill the
///   cache with garbage tokens, and an invalid token costs no more the second time.
///   [`TokenError::Unavailable`] is never cached either, so the next request retries.
/// - Two concurrent first uses of one token both reach the inner validator.
pub struct CachedValidator<V> {
    inner: V,
    capacity: usize,
    max_ttl: u64,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<[u8; 32], Entry>,
    last_sweep: u64,
}

struct Entry {
    claims: Arc<TokenClaims>,
    /// The entry is used while the clock is before this.
    until: u64,
}

impl<V: TokenValidator> CachedValidator<V> {
    /// Caches `inner`'s acceptances with the default capacity and lifetime.
    pub fn new(inner: V) -> Self {
        Self {
            inner,
            capacity: DEFAULT_CACHE_CAPACITY,
            max_ttl: DEFAULT_CACHE_MAX_TTL.as_secs(),
            clock: Arc::new(SystemClock),
            state: Mutex::new(State::default()),
        }
    }

    /// The most entries kept. Default [`DEFAULT_CACHE_CAPACITY`]; 0 disables caching.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The longest an entry is kept, in whole seconds, even if the token expires later.
    /// Default [`DEFAULT_CACHE_MAX_TTL`].
    #[must_use]
    pub fn max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl.as_secs();
        self
    }

    /// The clock (default: [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The wrapped validator.
    pub const fn inner(&self) -> &V {
        &self.inner
    }

    /// The number of entries, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache has no entry.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while the lock is held; if something did, the map is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn validate_cached(&self, token: AccessToken<'_>) -> Result<Arc<TokenClaims>, TokenError> {
        let key = *token.sha256();
        let now = self.clock.now();
        {
            let mut state = self.lock();
            match state.entries.get(&key) {
                Some(entry) if now < entry.until => return Ok(Arc::clone(&entry.claims)),
                Some(_) => {
                    state.entries.remove(&key);
                }
                None => {}
            }
        }
        let claims = self.inner.validate_hashed(token).await?;
        // The clock may have moved while the inner validator worked.
        let now = self.clock.now();
        if let Some(until) = self.until(&claims, now) {
            self.store(key, &claims, until, now);
        }
        Ok(claims)
    }

    /// When an entry for `claims` validated at `now` stops being used, if it may be cached.
    fn until(&self, claims: &TokenClaims, now: u64) -> Option<u64> {
        let limit = now.saturating_add(self.max_ttl);
        // `expires_at` is `exp` read by dpop-core's one NumericDate rule. A raw `exp` that rule
        // cannot read is never cached (this crate's validators refuse it anyway).
        let until = match (claims.expires_at, claims.raw.contains_key("exp")) {
            (Some(exp), _) => exp.min(limit),
            (None, false) => limit,
            (None, true) => return None,
        };
        (until > now).then_some(until)
    }

    fn store(&self, key: [u8; 32], claims: &Arc<TokenClaims>, until: u64, now: u64) {
        let mut state = self.lock();
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            if now > state.last_sweep {
                state.last_sweep = now;
                state.entries.retain(|_, entry| now < entry.until);
            }
            if state.entries.len() >= self.capacity {
                tracing::debug!(capacity = self.capacity, "token cache full: result not cached");
                return;
            }
        }
        state.entries.insert(key, Entry { claims: Arc::clone(claims), until });
    }
}

impl<V: TokenValidator> TokenValidator for CachedValidator<V> {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        Box::pin(self.validate_cached(AccessToken::new(token)))
    }

    /// The guard's path: the token was hashed for `ath` already, and that digest is the key.
    fn validate_hashed<'a>(&'a self, token: AccessToken<'a>) -> TokenFuture<'a> {
        Box::pin(self.validate_cached(token))
    }
}

impl<V: fmt::Debug> fmt::Debug for CachedValidator<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedValidator")
            .field("inner", &self.inner)
            .field("capacity", &self.capacity)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}
