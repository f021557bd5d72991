//! A JWK set fetched from the authorization server's `jwks_uri`, given or discovered from the
//! issuer's metadata (feature `fetch`).

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use dpop_core::{Algorithm, InvalidToken, PublicKey, TokenError};
use reqwest::Url;

use crate::ConfigError;
use crate::claims::reject;
use crate::discovery::Discovery;
use crate::http::{DEFAULT_FETCH_TIMEOUT, HttpClient, endpoint_url, unavailable};
use crate::jwks::{JwkSet, Selection};
use crate::jwt::selection_error;

/// Default minimum time between refetches caused by unknown `kid`s.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Default lifetime of a fetched key set.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// After a failed fetch, requests that need a fetch fail at once for this long (at most the
/// refetch interval), so a down endpoint is not queued on by every request.
const FAILED_FETCH_BACKOFF: u64 = 10;

/// The builder's settings.
#[derive(Debug)]
pub(crate) struct RemoteConfig {
    pub(crate) url: Option<String>,
    /// Discover the `jwks_uri` from the issuer's metadata.
    pub(crate) discover: bool,
    pub(crate) refetch_interval: Duration,
    pub(crate) max_age: Duration,
    pub(crate) timeout: Duration,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            url: None,
            discover: false,
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            max_age: DEFAULT_JWKS_MAX_AGE,
            timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

/// Where the key set is.
enum Location {
    /// The configured `jwks_uri`.
    Fixed(Url),
    /// The `jwks_uri` of the issuer's metadata.
    Discovered(Discovery),
}

/// The cached key set and the single-flight fetch state.
pub(crate) struct RemoteJwks {
    location: Location,
    http: HttpClient,
    refetch_interval: u64,
    max_age: u64,
    current: RwLock<Option<Fetched>>,
    /// Held while deciding on and doing a fetch: one fetch at a time.
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Clone)]
struct Fetched {
    set: Arc<JwkSet>,
    at: u64,
}

#[derive(Default)]
struct RefreshState {
    /// When an unknown `kid` last caused a fetch.
    last_kid_refetch: Option<u64>,
    /// When the last fetch failed, if the last fetch failed.
    last_failure: Option<u64>,
    /// The discovered `jwks_uri` and when it was discovered (with [`Location::Discovered`]).
    discovered: Option<(Url, u64)>,
}

impl RemoteJwks {
    /// Keys at `config.url`, or (with `config.discover`) at the `jwks_uri` of `issuer`'s
    /// metadata.
    pub(crate) fn new(config: RemoteConfig, issuer: &str) -> Result<Self, ConfigError> {
        let location = match (config.url, config.discover) {
            (Some(_), true) => return Err(ConfigError::ConflictingKeySources),
            (Some(url), false) => Location::Fixed(endpoint_url(&url)?),
            (None, true) => Location::Discovered(Discovery::new(issuer)?),
            (None, false) => return Err(ConfigError::NoKeySource),
        };
        Ok(Self {
            location,
            http: HttpClient::new(config.timeout)?,
            refetch_interval: config.refetch_interval.as_secs(),
            max_age: config.max_age.as_secs(),
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        })
    }

    /// The cached set if it is younger than the max age.
    fn fresh(&self, now: u64) -> Option<Arc<JwkSet>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|fetched| now < fetched.at.saturating_add(self.max_age))
            .map(|fetched| Arc::clone(&fetched.set))
    }

    /// The key for a token with `kid` and `alg`, fetching the set if needed.
    pub(crate) async fn key(&self, kid: Option<&str>, alg: Algorithm, now: u64) -> Result<PublicKey, TokenError> {
        if let Some(set) = self.fresh(now) {
            match set.select(kid, alg) {
                Selection::Key(key) => return Ok(key.clone()),
                Selection::Unknown => {}
                other => return Err(selection_error(&other)),
            }
        }

        let mut state = self.refresh.lock().await;
        // Another request may have fetched while this one waited.
        let fresh = self.fresh(now);
        if let Some(set) = &fresh {
            match set.select(kid, alg) {
                Selection::Key(key) => return Ok(key.clone()),
                Selection::Unknown => {}
                other => return Err(selection_error(&other)),
            }
            let recently = state.last_kid_refetch.is_some_and(|at| now < at.saturating_add(self.refetch_interval));
            if recently {
                return Err(reject(InvalidToken::UnknownSigningKey));
            }
            state.last_kid_refetch = Some(now);
            tracing::info!(kid, "JWKS refetch: token signed with an unknown key");
        } else {
            let backoff = FAILED_FETCH_BACKOFF.min(self.refetch_interval);
            let failed_recently = state.last_failure.is_some_and(|at| now < at.saturating_add(backoff));
            if failed_recently {
                return Err(unavailable("JWKS unavailable", "the last fetch failed, retrying shortly"));
            }
        }

        match self.fetch(&mut state, now).await {
            Ok(set) => {
                state.last_failure = None;
                let set = Arc::new(set);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Fetched { set: Arc::clone(&set), at: now });
                drop(state);
                match set.select(kid, alg) {
                    Selection::Key(key) => Ok(key.clone()),
                    other => Err(selection_error(&other)),
                }
            }
            Err(error) => {
                state.last_failure = Some(now);
                Err(error)
            }
        }
    }

    /// Fetches the key set, discovering where it is first when needed. Runs under the
    /// `refresh` lock, so discovery is single-flight and backs off as fetches do.
    async fn fetch(&self, state: &mut RefreshState, now: u64) -> Result<JwkSet, TokenError> {
        let url = match &self.location {
            Location::Fixed(url) => url.clone(),
            Location::Discovered(discovery) => {
                let known = state.discovered.as_ref().filter(|(_, at)| now < at.saturating_add(self.max_age));
                match known {
                    Some((url, _)) => url.clone(),
                    None => {
                        let url = discovery.jwks_uri(&self.http).await?;
                        state.discovered = Some((url.clone(), now));
                        url
                    }
                }
            }
        };
        let fetched = Self::fetch_set(&self.http, &url).await;
        if fetched.is_err() {
            // The keys may have moved: the next attempt (after the backoff) discovers again.
            state.discovered = None;
        }
        fetched
    }

    async fn fetch_set(http: &HttpClient, url: &Url) -> Result<JwkSet, TokenError> {
        let body = http.get_json(url).await.map_err(|error| unavailable("JWKS fetch failed", error))?;
        let set = JwkSet::from_slice(&body).map_err(|error| unavailable("JWKS fetch failed", error))?;
        if set.is_empty() {
            tracing::warn!("the fetched JWK set has no usable signing key");
        } else {
            tracing::debug!(keys = set.len(), "JWK set fetched");
        }
        Ok(set)
    }
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let mut debug = f.debug_struct("RemoteJwks");
        match &self.location {
            Location::Fixed(url) => debug.field("url", &url.as_str()),
            Location::Discovered(discovery) => debug.field("discovery", discovery),
        };
        debug
            .field("refetch_interval", &self.refetch_interval)
            .field("max_age", &self.max_age)
            .field("current", &current.as_ref().map(|fetched| &fetched.set))
            .finish_non_exhaustive()
    }
}
