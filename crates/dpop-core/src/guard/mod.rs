//! [`DpopGuard`]: the whole decision for one HTTP request, framework-free.
//!
//! Adapters (tower, axum, actix-web) hand over the method, the URI parts and a header lookup;
//! the guard reads `Authorization`, rebuilds the target URI, runs the verifier, validates the
//! access token and its binding, and answers with either an [`Authentication`] for the handler
//! or a [`Reply`] that says exactly what to send. No adapter decides anything itself, so every
//! framework behaves the same.

pub(crate) mod authorization;
mod builder;
pub(crate) mod challenge;
pub mod cors;
pub(crate) mod metadata;
mod nonce_policy;
mod outcome;
pub(crate) mod target;
mod telemetry;

use std::fmt;
use std::sync::Arc;

use crate::error::{ConfigError, DpopError, ErrorCode};
use crate::headers::{HeaderValues, names};
use crate::proof::algorithm::AlgorithmSet;
use crate::proof::verifier::{DpopVerifier, ProofRequest, UnrecordedProof, VerifiedProof};
use crate::token::binding;
use crate::token::{AccessToken, TokenClaims, TokenError, TokenValidator};
use authorization::{Credentials, parse_authorization};
pub use builder::DpopGuardBuilder;
use challenge::{Challenge, ErrorScheme};
use metadata::ResourceMetadata;
pub use nonce_policy::{NoncePolicy, NoncePredicate};
pub use outcome::{
    Admission, AuthScheme, Authentication, PendingAuthorization, ProofOnlyAuthentication, Rejection, Reply,
};
use target::Origin;
pub use target::RequestUri;

/// Decides whether an HTTP request may pass. Cheap to clone; build once.
#[derive(Clone)]
pub struct DpopGuard {
    inner: Arc<GuardConfig>,
    required_scopes: Arc<[String]>,
}

struct GuardConfig {
    verifier: DpopVerifier,
    origin: Origin,
    allow_bearer: bool,
    tokens: TokenPolicy,
    metadata: Option<ResourceMetadata>,
    resource_metadata_url: Option<String>,
    nonce_policy: NoncePolicy,
}

/// What the guard does with the access token.
#[derive(Clone)]
enum TokenPolicy {
    /// Validate it, then check its binding (RFC 9449 §6) and scopes.
    Validate(Arc<dyn TokenValidator>),
    /// Leave it to the application: the guard proves possession of the key only.
    ProofOnly,
}

impl DpopGuard {
    /// A guard that validates access tokens with `validator`, with every other setting at its
    /// default: the default [`DpopVerifier`] (ES256, `iat` within ±300 s, the process's shared
    /// in-memory replay store), DPoP only (Bearer refused), and the target URI from the request's
    /// own authority or `Host` — set a public origin behind a proxy (see
    /// [`DpopGuardBuilder::public_origin`]).
    #[must_use]
    pub fn new(validator: impl TokenValidator) -> Self {
        Self::from_config(DpopGuardBuilder::default().token_validator(validator))
    }

    /// A [proof-only](DpopGuardBuilder::proof_only) guard with the default settings: proofs are
    /// verified, access tokens are not. Handlers get `ProofOnly`, never `Authenticated`.
    #[must_use]
    pub fn proof_only() -> Self {
        Self::from_config(DpopGuardBuilder::default().proof_only())
    }

    /// Configures a guard.
    pub fn builder() -> DpopGuardBuilder {
        DpopGuardBuilder::default()
    }

    /// The guard for a builder [`build`](DpopGuardBuilder::build) accepted (or the defaults).
    fn from_config(builder: DpopGuardBuilder) -> Self {
        builder.warn_about_assumptions();
        let resource_metadata_url =
            builder.resource_metadata_url.or_else(|| builder.metadata.as_ref().map(ResourceMetadata::url));
        Self {
            required_scopes: builder.required_scopes.into(),
            inner: Arc::new(GuardConfig {
                verifier: builder.verifier,
                origin: builder.origin,
                allow_bearer: builder.allow_bearer,
                tokens: builder.tokens.unwrap_or(TokenPolicy::ProofOnly),
                metadata: builder.metadata,
                resource_metadata_url,
                nonce_policy: builder.nonce_policy,
            }),
        }
    }

    /// This guard, requiring `scopes` of every token (all of them): for one route or a group of
    /// routes. Missing scopes are refused with 403 `insufficient_scope` (RFC 6750 §3.1).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ScopesWithoutTokenValidator`]: scopes can only be checked on validated tokens.
    pub fn with_required_scopes<I, S>(&self, scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        if !scopes.is_empty() && matches!(self.inner.tokens, TokenPolicy::ProofOnly) {
            return Err(ConfigError::ScopesWithoutTokenValidator);
        }
        Ok(Self { inner: Arc::clone(&self.inner), required_scopes: scopes.into() })
    }

    /// The span an adapter runs one request in — the guard's events and the handler — so logs
    /// say who called once [`Admission::record_caller`] filled in `jkt`, `sub` and `client_id`.
    #[must_use]
    pub fn request_span(method: &str) -> tracing::Span {
        tracing::info_span!(
            "dpop",
            method,
            jkt = tracing::field::Empty,
            sub = tracing::field::Empty,
            client_id = tracing::field::Empty,
        )
    }

    /// The proof verifier.
    #[must_use]
    pub fn verifier(&self) -> &DpopVerifier {
        &self.inner.verifier
    }

    /// The algorithms advertised in `algs` and enforced.
    #[must_use]
    pub fn algorithms(&self) -> AlgorithmSet {
        self.inner.verifier.algorithms()
    }

    /// Whether access tokens are left unvalidated ([`DpopGuardBuilder::proof_only`]).
    #[must_use]
    pub fn is_proof_only(&self) -> bool {
        matches!(self.inner.tokens, TokenPolicy::ProofOnly)
    }

    /// Whether Bearer tokens are accepted beside DPoP.
    #[must_use]
    pub fn allows_bearer(&self) -> bool {
        self.inner.allow_bearer
    }

    /// The scopes every token must grant.
    #[must_use]
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// The path the RFC 9728 metadata document is served at, when a resource is configured.
    #[must_use]
    pub fn metadata_path(&self) -> Option<&str> {
        self.inner.metadata.as_ref().map(ResourceMetadata::path)
    }

    /// The RFC 9728 document for `GET`/`HEAD` on [`metadata_path`](Self::metadata_path): public
    /// (no authentication), readable cross-origin. `None` for any other request.
    #[must_use]
    pub fn metadata_reply(&self, method: &str, path: &str) -> Option<Reply> {
        let metadata = self.inner.metadata.as_ref()?;
        if !(method == "GET" || method == "HEAD") || path != metadata.path() {
            return None;
        }
        let body = metadata.document(self.algorithms(), self.inner.allow_bearer).to_string();
        let headers = vec![
            (names::CONTENT_TYPE, "application/json".to_owned()),
            ("access-control-allow-origin", "*".to_owned()),
            (names::CACHE_CONTROL, "max-age=300".to_owned()),
        ];
        Some(Reply { status: 200, headers, body })
    }

    /// Everything that can be decided without waiting: credentials, target URI, every proof
    /// check except replay.
    ///
    /// `headers(name)` returns the values of the header `name` (lowercase).
    ///
    /// # Errors
    ///
    /// The [`Rejection`] to send.
    pub fn check<'h>(
        &self,
        method: &str,
        uri: &RequestUri<'_>,
        headers: impl Fn(&'static str) -> HeaderValues<'h>,
    ) -> Result<PendingAuthorization, Rejection> {
        let credentials = parse_authorization(headers(names::AUTHORIZATION)).map_err(|e| self.reject(e))?;
        match credentials {
            Credentials::Absent | Credentials::OtherScheme => {
                tracing::info!(method, "DPoP request rejected: no credentials");
                Err(self.challenge())
            }
            Credentials::Bearer(token) if self.inner.allow_bearer => {
                Ok(PendingAuthorization::new(AuthScheme::Bearer, AccessToken::new(token), None))
            }
            Credentials::Bearer(_) => Err(self.reject(DpopError::BearerNotAccepted)),
            Credentials::Dpop(token) => {
                let target = self.inner.origin.target_uri(uri, &headers).map_err(|e| self.reject(e))?;
                let require_nonce = self.inner.nonce_policy.requires(method, uri.path).map_err(|e| self.reject(e))?;
                let token = AccessToken::new(token);
                let request =
                    ProofRequest::new(method, &target).hashed_access_token(token).require_nonce(require_nonce);
                let proof =
                    self.inner.verifier.check(headers(names::DPOP).iter(), &request).map_err(|e| self.reject(e))?;
                Ok(PendingAuthorization::new(AuthScheme::Dpop, token, Some(proof)))
            }
        }
    }

    /// Finishes a checked request: validates the token, its binding and scopes, then records
    /// the proof against replay — last, so only fully valid requests write to the store.
    ///
    /// # Errors
    ///
    /// The [`Rejection`] to send.
    pub async fn complete(&self, pending: PendingAuthorization) -> Result<Admission, Rejection> {
        let PendingAuthorization { scheme, access_token, access_token_sha256, proof } = pending;
        match &self.inner.tokens {
            TokenPolicy::Validate(validator) => {
                let hashed = AccessToken::hashed_before(&access_token, access_token_sha256);
                let claims = validator.validate_hashed(hashed).await.map_err(|e| self.reject(token_error(e)))?;
                self.check_token(scheme, proof.as_ref(), &claims).map_err(|e| self.reject(e))?;
                let proof = match proof {
                    // `check_token` found the validated token bound to the proof's key.
                    Some(unrecorded) => Some(self.record(unrecorded.with_validated_token()).await?),
                    None => None,
                };
                let next_nonce = self.next_nonce(proof.as_ref());
                telemetry::count_admission("authenticated");
                Ok(Admission::Authenticated(Authentication { scheme, access_token, proof, claims, next_nonce }))
            }
            TokenPolicy::ProofOnly => {
                // `build` refuses Bearer without a validator, so a proof-only request has a proof.
                let unrecorded = proof.ok_or_else(|| self.reject(DpopError::MissingProof))?;
                let proof = self.record(unrecorded).await?;
                let next_nonce = self.next_nonce(Some(&proof));
                telemetry::count_admission("proof_only");
                Ok(Admission::ProofOnly(ProofOnlyAuthentication {
                    proof,
                    unvalidated_access_token: access_token,
                    next_nonce,
                }))
            }
        }
    }

    /// The replay write (RFC 9449 §11.1): last, once every other check passed.
    async fn record(&self, proof: UnrecordedProof) -> Result<VerifiedProof, Rejection> {
        self.inner.verifier.record(proof).await.map_err(|e| self.reject(e))
    }

    /// The nonce to send with a success, when the proof's is past half its life (§8.2).
    fn next_nonce(&self, proof: Option<&VerifiedProof>) -> Option<String> {
        proof.filter(|p| p.nonce_needs_refresh()).and_then(|_| self.fresh_nonce())
    }

    /// RFC 9449 §6 / §7.2 binding and RFC 6750 §3.1 scopes, on a validated token.
    fn check_token(
        &self,
        scheme: AuthScheme,
        proof: Option<&UnrecordedProof>,
        claims: &TokenClaims,
    ) -> Result<(), DpopError> {
        let cnf_jkt = claims.cnf_jkt.as_deref();
        match (scheme, proof) {
            (AuthScheme::Dpop, Some(proof)) => binding::check_key_binding(cnf_jkt, proof.proof().thumbprint())?,
            (AuthScheme::Dpop, None) => return Err(DpopError::MissingProof),
            // RFC 9449 §7.2: any `cnf`, even one without a readable `jkt`, makes the token bound.
            (AuthScheme::Bearer, _) if claims.is_bound() => return Err(DpopError::BoundTokenAsBearer),
            (AuthScheme::Bearer, _) => {}
        }
        if let Some(missing) = self.required_scopes.iter().find(|scope| !claims.has_scope(scope)) {
            tracing::debug!(scope = %missing, "the token lacks a required scope");
            return Err(DpopError::InsufficientScope);
        }
        Ok(())
    }

    /// [`check`](Self::check) then [`complete`](Self::complete).
    ///
    /// # Errors
    ///
    /// The [`Rejection`] to send.
    pub async fn authorize<'h>(
        &self,
        method: &str,
        uri: &RequestUri<'_>,
        headers: impl Fn(&'static str) -> HeaderValues<'h>,
    ) -> Result<Admission, Rejection> {
        let pending = self.check(method, uri, headers)?;
        self.complete(pending).await
    }

    /// The 401 for a request without credentials (RFC 9449 Figures 15 and 17).
    #[must_use]
    pub fn challenge(&self) -> Rejection {
        telemetry::count_rejection("unauthorized");
        Rejection { error: None, www_authenticate: Some(self.base_challenge().render()), dpop_nonce: None }
    }

    /// The rejection for `error`, with the challenge(s) this resource issues.
    #[must_use]
    pub fn reject(&self, error: DpopError) -> Rejection {
        tracing::info!(code = error.code().as_str(), reason = %error.description(), "DPoP request rejected");
        telemetry::count_rejection(error.code().as_str());
        if error.code() == ErrorCode::TemporarilyUnavailable {
            return Rejection { error: Some(error), www_authenticate: None, dpop_nonce: None };
        }
        let scheme = match (&error, self.inner.allow_bearer) {
            (_, false) => ErrorScheme::Dpop,
            (DpopError::BoundTokenAsBearer, true) => ErrorScheme::Bearer,
            (e, true) if e.code() == ErrorCode::InvalidRequest => ErrorScheme::Both,
            _ => ErrorScheme::Dpop,
        };
        let scopes = self.required_scopes.join(" ");
        let mut challenge = self.base_challenge().error_on(&error, scheme);
        if error == DpopError::InsufficientScope {
            challenge = challenge.scope(&scopes);
        }
        let dpop_nonce = matches!(error, DpopError::UseDpopNonce(_)).then(|| self.fresh_nonce()).flatten();
        Rejection { www_authenticate: Some(challenge.render()), error: Some(error), dpop_nonce }
    }

    /// A new nonce, if nonces are configured. A failing random generator means no nonce: the
    /// client then cannot proceed, which is refusal, never acceptance.
    fn fresh_nonce(&self) -> Option<String> {
        let issuer = self.inner.verifier.nonces()?;
        issuer.issue().inspect_err(|error| tracing::error!(%error, "could not issue a DPoP nonce")).ok()
    }

    fn base_challenge(&self) -> Challenge<'_> {
        let challenge = Challenge::new(self.algorithms()).with_bearer(self.inner.allow_bearer);
        match &self.inner.resource_metadata_url {
            Some(url) => challenge.resource_metadata(url),
            None => challenge,
        }
    }
}

/// A validator's verdict as a rejection reason.
fn token_error(error: TokenError) -> DpopError {
    match error {
        TokenError::Invalid(why) => DpopError::InvalidAccessToken(why),
        TokenError::Unavailable(cause) => {
            tracing::error!(%cause, "request rejected: access token validation unavailable");
            DpopError::TokenValidationUnavailable
        }
    }
}

impl fmt::Debug for DpopGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopGuard")
            .field("verifier", &self.inner.verifier)
            .field("origin", &self.inner.origin)
            .field("allow_bearer", &self.inner.allow_bearer)
            .field("proof_only", &self.is_proof_only())
            .field("required_scopes", &self.required_scopes)
            .field("metadata", &self.inner.metadata)
            .finish()
    }
}
