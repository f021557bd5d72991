//! [`DpopVerifier`]: runs the RFC 9449 §4.3 checks of [`checks`](super::checks) on a proof,
//! cheapest first so that a forged proof costs no signature verification, and records it
//! against replay last, only once it passed everything else.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::crypto::PreparedKey;
use crate::error::{ConfigError, DpopError};
use crate::nonce::{AcceptedNonce, NonceIssuer};
use crate::proof::algorithm::{Algorithm, AlgorithmSet};
use crate::proof::checks::{
    self, check_access_token_hash, check_algorithm, check_jti_len, check_method, check_no_critical_extensions,
    check_proof_len, check_public_key, check_required_claims, check_signature, check_type, check_uri, single_proof,
};
use crate::proof::header_cache::{CheckedHeader, HEADER_CACHE_CAPACITY, HeaderCache};
use crate::proof::jwk::{PublicKey, Thumbprint, ValidatedJwk};
use crate::proof::jws::{self, CompactJws};
use crate::replay::{InMemoryReplayStore, Insertion, ReplayKey, ReplayStore, ReplayStoreError};
use crate::token::{AccessToken, binding};

/// Default bound on the `DPoP` header value, checked before any decoding.
pub const DEFAULT_MAX_PROOF_LEN: usize = 8 * 1024;
/// Default bound on `jti`, in bytes.
pub const DEFAULT_MAX_JTI_LEN: usize = 256;
/// Default acceptance window for `iat`, both into the past and into the future.
pub const DEFAULT_IAT_WINDOW: Duration = Duration::from_secs(300);
/// The longest `iat` window accepted in either direction: every accepted proof is remembered
/// for the whole window, so a longer one only costs memory and widens what a stolen proof buys.
pub const MAX_IAT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// What the server knows about the request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct ProofRequest<'a> {
    method: &'a str,
    target_uri: &'a str,
    access_token: Option<AccessToken<'a>>,
    require_nonce: bool,
}

impl<'a> ProofRequest<'a> {
    /// A request with this method and absolute target URI (as the server's public origin plus
    /// path; never trust a client-supplied `Host` blindly behind proxies).
    #[must_use]
    pub const fn new(method: &'a str, target_uri: &'a str) -> Self {
        Self { method, target_uri, access_token: None, require_nonce: false }
    }

    /// The access token presented with the proof: `ath` is then required (§4.3 check 12).
    #[must_use]
    pub fn access_token(self, token: &'a str) -> Self {
        self.hashed_access_token(AccessToken::new(token))
    }

    /// [`access_token`](Self::access_token) for a token hashed already (the guard hashes it
    /// once for `ath` and for the validator's cache).
    #[must_use]
    pub const fn hashed_access_token(mut self, token: AccessToken<'a>) -> Self {
        self.access_token = Some(token);
        self
    }

    /// Whether the proof must carry a valid server nonce (§4.3 check 10); needs a verifier
    /// with [`DpopVerifierBuilder::nonces`].
    #[must_use]
    pub const fn require_nonce(mut self, required: bool) -> Self {
        self.require_nonce = required;
        self
    }

    /// The request method.
    #[must_use]
    pub const fn method(&self) -> &'a str {
        self.method
    }

    /// The absolute target URI.
    #[must_use]
    pub const fn target_uri(&self) -> &'a str {
        self.target_uri
    }

    /// The access token presented with the proof, if any.
    #[must_use]
    pub fn token(&self) -> Option<&'a str> {
        self.access_token.map(|token| token.as_str())
    }

    /// The access token with its digest, if any.
    #[must_use]
    pub const fn hashed_token(&self) -> Option<&AccessToken<'a>> {
        self.access_token.as_ref()
    }

    /// Whether the proof must carry a server nonce.
    #[must_use]
    pub const fn nonce_required(&self) -> bool {
        self.require_nonce
    }
}

/// A proof that passed every check, replay included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    thumbprint: Thumbprint,
    jti: String,
    issued_at: i64,
    algorithm: Algorithm,
    public_key: PublicKey,
    nonce: Option<String>,
    nonce_needs_refresh: bool,
}

impl VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key: the `jkt` a bound token must carry.
    #[must_use]
    pub const fn thumbprint(&self) -> &Thumbprint {
        &self.thumbprint
    }

    /// The thumbprint in its base64url `jkt` form (no allocation).
    #[must_use]
    pub fn jkt(&self) -> &str {
        self.thumbprint.as_jkt()
    }

    /// The proof's unique identifier.
    #[must_use]
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// `iat`, seconds since the epoch.
    #[must_use]
    pub const fn issued_at(&self) -> i64 {
        self.issued_at
    }

    /// The signature algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key that signed the proof.
    #[must_use]
    pub const fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The `nonce` claim, if the proof has one.
    #[must_use]
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The proof's nonce was required and is past half its lifetime: the response should carry
    /// the next one (RFC 9449 §8.2).
    #[must_use]
    pub const fn nonce_needs_refresh(&self) -> bool {
        self.nonce_needs_refresh
    }

    /// Checks that an access token's `cnf.jkt` names this proof's key (RFC 9449 §6).
    ///
    /// # Errors
    ///
    /// [`DpopError::TokenNotBound`] without `cnf.jkt`, [`DpopError::KeyBindingMismatch`] for
    /// another key.
    pub fn check_key_binding(&self, cnf_jkt: Option<&str>) -> Result<(), DpopError> {
        binding::check_key_binding(cnf_jkt, &self.thumbprint)
    }
}

/// A proof that passed every check but replay. Hand it to [`DpopVerifier::record`].
///
/// The split lets a server validate the access token between the two, so that only requests
/// with a valid token can write to the replay store.
#[derive(Debug)]
#[must_use = "a checked proof is not verified until it is recorded"]
pub struct UnrecordedProof {
    proof: VerifiedProof,
    /// The request's access token was validated and is bound to the proof's key.
    validated_token: bool,
}

impl UnrecordedProof {
    /// The checked proof, for decisions before recording (token binding, logging).
    pub const fn proof(&self) -> &VerifiedProof {
        &self.proof
    }

    /// Says that the request's access token was validated and is bound to this proof's key
    /// ([`VerifiedProof::check_key_binding`]): its replay record may then use the whole capacity
    /// of the in-memory store, where a proof-only record may use half
    /// ([`ReplayKey::with_validated_token`]). [`DpopGuard`](crate::DpopGuard) does this itself.
    pub const fn with_validated_token(mut self) -> Self {
        self.validated_token = true;
        self
    }
}

/// Where a proof's algorithm and key come from: its header, checked now, or the header cache.
enum HeaderKey {
    Recalled(Arc<CheckedHeader>),
    Checked { algorithm: Algorithm, jwk: ValidatedJwk },
}

/// Verifies DPoP proofs. Cheap to clone; build once and share.
#[derive(Clone)]
pub struct DpopVerifier {
    inner: Arc<Config>,
}

struct Config {
    algorithms: AlgorithmSet,
    max_proof_len: usize,
    max_jti_len: usize,
    max_age: Duration,
    max_clock_skew: Duration,
    clock: Arc<dyn Clock>,
    replay_store: Arc<dyn ReplayStore>,
    nonces: Option<NonceIssuer>,
    headers: HeaderCache,
}

impl DpopVerifier {
    /// A verifier with the defaults: ES256 only, 8 KiB proofs, 256-byte `jti`, `iat` within
    /// ±300 s, an in-memory replay store, the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build_with_defaults()
    }

    /// Configures a verifier.
    pub fn builder() -> DpopVerifierBuilder {
        DpopVerifierBuilder::default()
    }

    /// The allowed algorithms: what `algs` advertises and what is enforced.
    #[must_use]
    pub fn algorithms(&self) -> AlgorithmSet {
        self.inner.algorithms
    }

    /// The longest a replay record lives: the record of a proof at the future edge of the `iat`
    /// window. Each record lives only until its own `iat` leaves the window (see
    /// [`record`](Self::record)), so most live far shorter.
    #[must_use]
    pub fn replay_ttl(&self) -> Duration {
        // `build` bounds both windows, so this cannot saturate; saturating keeps it panic-free.
        self.inner.max_age.saturating_add(self.inner.max_clock_skew).saturating_add(Duration::from_secs(1))
    }

    /// Runs every check, replay included.
    ///
    /// `dpop_header_values` are all values of the `DPoP` header field in the request.
    ///
    /// # Errors
    ///
    /// The first failed check.
    pub async fn verify<'v, I>(
        &self,
        dpop_header_values: I,
        request: &ProofRequest<'_>,
    ) -> Result<VerifiedProof, DpopError>
    where
        I: IntoIterator<Item = &'v [u8]>,
    {
        let checked = self.check(dpop_header_values, request)?;
        self.record(checked).await
    }

    /// Runs every check except replay.
    ///
    /// # Errors
    ///
    /// The first failed check.
    pub fn check<'v, I>(&self, dpop_header_values: I, request: &ProofRequest<'_>) -> Result<UnrecordedProof, DpopError>
    where
        I: IntoIterator<Item = &'v [u8]>,
    {
        self.run_checks(dpop_header_values, request)
            .map(|proof| UnrecordedProof { proof, validated_token: false })
            .inspect_err(|error| {
                tracing::debug!(%error, method = request.method, "DPoP proof rejected");
            })
    }

    /// Records the proof in the replay store; succeeds only the first time (RFC 9449 §11.1).
    ///
    /// The record lives until the proof's `iat` leaves the acceptance window
    /// ([`record_ttl`](Self::record_ttl)): from then on the `iat` check refuses the proof anyway.
    /// It is a proof-only record unless [`UnrecordedProof::with_validated_token`] said otherwise.
    ///
    /// # Errors
    ///
    /// [`DpopError::Replayed`] for a proof seen before; a store that is full, over this key's
    /// quota or failing is a rejection too, never an acceptance.
    pub async fn record(&self, proof: UnrecordedProof) -> Result<VerifiedProof, DpopError> {
        let UnrecordedProof { proof, validated_token } = proof;
        let key = ReplayKey::new(&proof.thumbprint, &proof.jti);
        let key = if validated_token { key.with_validated_token() } else { key };
        let ttl = self.record_ttl(proof.issued_at);
        match self.inner.replay_store.insert_if_absent(key, ttl).await {
            Ok(Insertion::Inserted) => Ok(proof),
            Ok(Insertion::AlreadyPresent) => {
                tracing::debug!(jkt = %proof.thumbprint, "DPoP proof rejected: replayed");
                Err(DpopError::Replayed)
            }
            Err(ReplayStoreError::Full) => {
                tracing::warn!("DPoP proof rejected: replay store is full");
                Err(DpopError::ReplayStoreFull)
            }
            Err(ReplayStoreError::QuotaExceeded) => {
                // A debug event: a flooding key must not flood the logs as well.
                tracing::debug!(jkt = %proof.thumbprint, "DPoP proof rejected: per-key replay quota exhausted");
                Err(DpopError::ReplayQuotaExceeded)
            }
            Err(ReplayStoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "DPoP proof rejected: replay store unavailable");
                Err(DpopError::ReplayStoreUnavailable)
            }
        }
    }

    /// How long the record of a proof issued at `issued_at` must live from now: until
    /// `iat + max_age`, the last second the `iat` check accepts it, plus 1 s for the
    /// whole-second clock. At least 1 s, at most [`replay_ttl`](Self::replay_ttl).
    #[must_use]
    pub fn record_ttl(&self, issued_at: i64) -> Duration {
        let now = i64::try_from(self.inner.clock.now()).unwrap_or(i64::MAX);
        let age = i64::try_from(self.inner.max_age.as_secs()).unwrap_or(i64::MAX);
        let until = issued_at.saturating_add(age).saturating_add(1);
        let secs = u64::try_from(until.saturating_sub(now)).unwrap_or(0);
        Duration::from_secs(secs.max(1).min(self.replay_ttl().as_secs()))
    }

    fn run_checks<'v, I>(&self, dpop_header_values: I, request: &ProofRequest<'_>) -> Result<VerifiedProof, DpopError>
    where
        I: IntoIterator<Item = &'v [u8]>,
    {
        let value = single_proof(dpop_header_values)?;
        check_proof_len(value, self.inner.max_proof_len)?;
        let jws = CompactJws::split(value)?;

        // The same header bytes in a proof that verified passed these checks then.
        let header_key = match self.inner.headers.get(jws.header) {
            Some(recalled) => HeaderKey::Recalled(recalled),
            None => {
                let header_json = jws::decode_segment(jws.header, "header")?;
                let header = jws::parse_header(&header_json)?;
                check_type(&header)?;
                let algorithm = check_algorithm(&header, self.inner.algorithms)?;
                check_no_critical_extensions(&header)?;
                let jwk = check_public_key(&header, algorithm)?;
                HeaderKey::Checked { algorithm, jwk }
            }
        };

        let claims_json = jws::decode_segment(jws.payload, "claims")?;
        let claims = jws::parse_claims(&claims_json)?;
        let required = check_required_claims(&claims)?;
        check_jti_len(required.jti, self.inner.max_jti_len)?;
        check_method(required.htm, request.method)?;
        check_uri(required.htu, request.target_uri)?;
        let nonce = if request.require_nonce { Some(self.check_nonce(claims.nonce.as_deref())?) } else { None };
        self.check_issued_at(required.iat)?;
        if let Some(access_token) = &request.access_token {
            check_access_token_hash(&claims, access_token)?;
        }

        let signature = jws::decode_segment(jws.signature, "signature")?;
        let header = match header_key {
            HeaderKey::Recalled(header) => {
                check_signature(&header.prepared, jws.signing_input, &signature)?;
                header
            }
            HeaderKey::Checked { algorithm, jwk } => {
                let prepared = PreparedKey::new(algorithm, &jwk.key)?;
                check_signature(&prepared, jws.signing_input, &signature)?;
                let checked = CheckedHeader { algorithm, key: jwk.key, thumbprint: jwk.thumbprint, prepared };
                self.inner.headers.insert(jws.header, checked)
            }
        };

        Ok(VerifiedProof {
            thumbprint: header.thumbprint,
            jti: required.jti.to_owned(),
            issued_at: required.iat,
            algorithm: header.algorithm,
            public_key: header.key.clone(),
            nonce: claims.nonce.map(Into::into),
            nonce_needs_refresh: nonce.is_some_and(|accepted| accepted.refresh),
        })
    }

    /// [`checks::check_nonce`] with this verifier's nonce issuer.
    pub(crate) fn check_nonce(&self, nonce: Option<&str>) -> Result<AcceptedNonce, DpopError> {
        checks::check_nonce(self.inner.nonces.as_ref(), nonce)
    }

    pub(crate) fn max_proof_len(&self) -> usize {
        self.inner.max_proof_len
    }

    pub(crate) fn max_jti_len(&self) -> usize {
        self.inner.max_jti_len
    }

    /// The nonce issuer, when nonces are configured.
    #[must_use]
    pub fn nonces(&self) -> Option<&NonceIssuer> {
        self.inner.nonces.as_ref()
    }

    /// [`checks::check_issued_at`] against this verifier's clock and window.
    pub(crate) fn check_issued_at(&self, iat: i64) -> Result<(), DpopError> {
        checks::check_issued_at(iat, self.inner.clock.now(), self.inner.max_age, self.inner.max_clock_skew)
    }
}

impl Default for DpopVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("algorithms", &self.inner.algorithms)
            .field("max_proof_len", &self.inner.max_proof_len)
            .field("max_jti_len", &self.inner.max_jti_len)
            .field("max_age", &self.inner.max_age)
            .field("max_clock_skew", &self.inner.max_clock_skew)
            .finish_non_exhaustive()
    }
}

/// Builds a [`DpopVerifier`].
#[derive(Clone)]
#[must_use]
pub struct DpopVerifierBuilder {
    algorithms: AlgorithmSet,
    max_proof_len: usize,
    max_jti_len: usize,
    max_age: Duration,
    max_clock_skew: Duration,
    /// `None`: the system clock.
    clock: Option<Arc<dyn Clock>>,
    replay_store: Option<Arc<dyn ReplayStore>>,
    nonces: Option<NonceIssuer>,
}

impl Default for DpopVerifierBuilder {
    fn default() -> Self {
        Self {
            algorithms: AlgorithmSet::default(),
            max_proof_len: DEFAULT_MAX_PROOF_LEN,
            max_jti_len: DEFAULT_MAX_JTI_LEN,
            max_age: DEFAULT_IAT_WINDOW,
            max_clock_skew: DEFAULT_IAT_WINDOW,
            clock: None,
            replay_store: None,
            nonces: None,
        }
    }
}

impl DpopVerifierBuilder {
    /// The algorithms proofs may use (default: ES256 only).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The largest `DPoP` header value accepted, in bytes (default 8 KiB).
    pub fn max_proof_len(mut self, bytes: usize) -> Self {
        self.max_proof_len = bytes;
        self
    }

    /// The longest `jti` accepted, in bytes (default 256).
    pub fn max_jti_len(mut self, bytes: usize) -> Self {
        self.max_jti_len = bytes;
        self
    }

    /// How old a proof's `iat` may be (default 300 s).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How far in the future a proof's `iat` may be, for client clocks running ahead
    /// (default 300 s).
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// The clock (default: the system clock). Without an explicit replay store, a verifier with
    /// its own clock gets its own in-memory store on that clock (for tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Where accepted proofs are recorded. Default: one [`InMemoryReplayStore`] shared by every
    /// verifier of the process that has no store of its own, so a verifier built per worker or
    /// per connection still sees every proof once. Use a shared store such as Redis when several
    /// processes serve one resource.
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay_store = Some(Arc::new(store));
        self
    }

    /// Issues and checks server nonces (RFC 9449 §8) with `issuer`; which requests must carry
    /// one is the guard's nonce policy (or [`ProofRequest::require_nonce`]).
    pub fn nonces(mut self, issuer: NonceIssuer) -> Self {
        self.nonces = Some(issuer);
        self
    }

    /// Builds the verifier.
    ///
    /// # Errors
    ///
    /// An empty allow-list, an algorithm the crypto backend lacks, a zero size limit, or an
    /// `iat` window outside 1 s ..= [`MAX_IAT_WINDOW`] (`max_clock_skew` may be zero).
    pub fn build(self) -> Result<DpopVerifier, ConfigError> {
        if self.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        if let Some(missing) = self.algorithms.iter().find(|alg| !alg.is_supported()) {
            return Err(ConfigError::UnsupportedAlgorithm(missing));
        }
        if self.max_proof_len == 0 {
            return Err(ConfigError::ZeroLimit("max_proof_len"));
        }
        if self.max_jti_len == 0 {
            return Err(ConfigError::ZeroLimit("max_jti_len"));
        }
        check_duration("max_age", self.max_age, Duration::from_secs(1), MAX_IAT_WINDOW)?;
        check_duration("max_clock_skew", self.max_clock_skew, Duration::ZERO, MAX_IAT_WINDOW)?;
        if let Some(nonces) = &self.nonces {
            check_duration("nonce lifetime", nonces.lifetime_setting(), Duration::from_secs(1), MAX_IAT_WINDOW)?;
        }
        Ok(self.build_with_defaults())
    }

    /// Builds without validation; only for configurations known to be valid.
    fn build_with_defaults(self) -> DpopVerifier {
        let replay_store = match (self.replay_store, &self.clock) {
            (Some(store), _) => store,
            (None, None) => process_replay_store(),
            (None, Some(clock)) => Arc::new(InMemoryReplayStore::with_clock(Arc::clone(clock))),
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        DpopVerifier {
            inner: Arc::new(Config {
                algorithms: self.algorithms,
                max_proof_len: self.max_proof_len,
                max_jti_len: self.max_jti_len,
                max_age: self.max_age,
                max_clock_skew: self.max_clock_skew,
                clock,
                replay_store,
                nonces: self.nonces,
                headers: HeaderCache::new(HEADER_CACHE_CAPACITY),
            }),
        }
    }
}

/// The in-memory replay store of every verifier in this process that has no store (and no
/// clock) of its own: defaults cannot be multiplied by building a verifier per worker.
fn process_replay_store() -> Arc<dyn ReplayStore> {
    static STORE: OnceLock<Arc<InMemoryReplayStore>> = OnceLock::new();
    let store = STORE.get_or_init(|| Arc::new(InMemoryReplayStore::new()));
    Arc::clone(store) as Arc<dyn ReplayStore>
}

/// A duration setting within `min ..= max`.
fn check_duration(name: &'static str, value: Duration, min: Duration, max: Duration) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::DurationOutOfRange { name, min, max });
    }
    Ok(())
}

impl fmt::Debug for DpopVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopVerifierBuilder")
            .field("algorithms", &self.algorithms)
            .field("max_proof_len", &self.max_proof_len)
            .field("max_jti_len", &self.max_jti_len)
            .field("max_age", &self.max_age)
            .field("max_clock_skew", &self.max_clock_skew)
            .finish_non_exhaustive()
    }
}
