//! [`DpopGuard`]: the whole decision for one HTTP request, framework-free.
//!
//! Adapters (tower, axum, actix-web) hand over the method, the URI parts and a header lookup;
//! the guard reads `Authorization`, rebuilds the target URI, runs the verifier, and answers with
//! either an [`Authentication`] for the handler or a [`Rejection`] that says exactly what to send.
//! No adapter decides anything itself, so every framework behaves the same.

use std::fmt;
use std::sync::Arc;

use crate::algorithm::AlgorithmSet;
use crate::authorization::{Credentials, parse_authorization};
use crate::challenge::{Challenge, ErrorScheme};
use crate::error::{DpopError, ErrorCode};
use crate::headers::{HeaderValues, names};
use crate::target::{Origin, RequestUri};
use crate::verifier::{ConfigError, DpopVerifier, ProofRequest, UnrecordedProof, VerifiedProof};

/// How the request authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: DPoP` with a verified proof.
    Dpop,
    /// `Authorization: Bearer`, accepted only when the guard allows Bearer tokens.
    Bearer,
}

/// What a request proved; adapters put it in the request extensions for handlers.
#[derive(Clone, Debug)]
pub struct Authentication {
    scheme: AuthScheme,
    access_token: String,
    proof: Option<VerifiedProof>,
}

impl Authentication {
    /// The scheme the request used.
    #[must_use]
    pub const fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// The access token, as presented.
    #[must_use]
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The verified proof, for the DPoP scheme.
    #[must_use]
    pub const fn proof(&self) -> Option<&VerifiedProof> {
        self.proof.as_ref()
    }

    /// The thumbprint (`jkt`) of the key that signed the proof, for the DPoP scheme.
    #[must_use]
    pub fn jkt(&self) -> Option<String> {
        self.proof.as_ref().map(VerifiedProof::jkt)
    }
}

/// A refusal, with everything the HTTP response needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    error: Option<DpopError>,
    www_authenticate: Option<String>,
}

impl Rejection {
    /// The 401 for a handler that requires authentication on a route no guard protects: a
    /// configuration error, answered as "authentication required" with the default challenge.
    #[must_use]
    pub fn unguarded_route() -> Self {
        tracing::error!(
            "handler requires DPoP authentication but the route is not behind the DPoP layer"
        );
        Self {
            error: None,
            www_authenticate: Some(Challenge::new(AlgorithmSet::default()).render()),
        }
    }

    /// The reason, or `None` when the request simply had no credentials (RFC 6750 §3.1: no
    /// error code then).
    #[must_use]
    pub const fn error(&self) -> Option<&DpopError> {
        self.error.as_ref()
    }

    /// The HTTP status code: 401, 400, 403 or 503.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.error.as_ref().map_or(401, DpopError::status)
    }

    /// The `WWW-Authenticate` value (absent on 503).
    #[must_use]
    pub fn www_authenticate(&self) -> Option<&str> {
        self.www_authenticate.as_deref()
    }

    /// The response body: `{"error": "…", "error_description": "…"}`.
    #[must_use]
    pub fn body(&self) -> String {
        let (error, description) = match &self.error {
            Some(error) => (error.code().as_str(), error.description()),
            None => ("unauthorized", "Authentication required".into()),
        };
        serde_json::json!({ "error": error, "error_description": description }).to_string()
    }

    /// Every response header: `WWW-Authenticate`, `Cache-Control: no-store` and the body's
    /// `Content-Type`. Names are lowercase.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let challenge = self
            .www_authenticate
            .as_deref()
            .map(|value| (names::WWW_AUTHENTICATE, value));
        challenge.into_iter().chain([
            (names::CACHE_CONTROL, "no-store"),
            (names::CONTENT_TYPE, "application/json"),
        ])
    }
}

/// Checked but not yet final: hand to [`DpopGuard::complete`].
#[derive(Debug)]
#[must_use = "a pending authorization is not an authorization until completed"]
pub struct PendingAuthorization {
    scheme: AuthScheme,
    access_token: String,
    proof: Option<UnrecordedProof>,
}

/// Decides whether an HTTP request may pass. Cheap to clone; build once.
#[derive(Clone)]
pub struct DpopGuard {
    inner: Arc<GuardConfig>,
}

struct GuardConfig {
    verifier: DpopVerifier,
    origin: Origin,
    allow_bearer: bool,
    resource_metadata: Option<String>,
}

impl DpopGuard {
    /// The defaults: a default [`DpopVerifier`], DPoP only (Bearer refused), the target URI
    /// from the request's own authority or `Host` — set a public origin behind a proxy.
    #[must_use]
    pub fn new() -> Self {
        Self::from_config(DpopGuardBuilder::default())
    }

    /// Configures a guard.
    pub fn builder() -> DpopGuardBuilder {
        DpopGuardBuilder::default()
    }

    fn from_config(builder: DpopGuardBuilder) -> Self {
        Self {
            inner: Arc::new(GuardConfig {
                verifier: builder.verifier,
                origin: builder.origin,
                allow_bearer: builder.allow_bearer,
                resource_metadata: builder.resource_metadata,
            }),
        }
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

    /// Whether Bearer tokens are accepted beside DPoP.
    #[must_use]
    pub fn allows_bearer(&self) -> bool {
        self.inner.allow_bearer
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
        let credentials =
            parse_authorization(headers(names::AUTHORIZATION)).map_err(|e| self.reject(e))?;
        match credentials {
            Credentials::Absent | Credentials::OtherScheme => {
                tracing::debug!(method, "request rejected: no DPoP credentials");
                Err(self.challenge())
            }
            Credentials::Bearer(token) if self.inner.allow_bearer => Ok(PendingAuthorization {
                scheme: AuthScheme::Bearer,
                access_token: token.to_owned(),
                proof: None,
            }),
            Credentials::Bearer(_) => Err(self.reject(DpopError::BearerNotAccepted)),
            Credentials::Dpop(token) => {
                let target = self
                    .inner
                    .origin
                    .target_uri(uri, &headers)
                    .map_err(|e| self.reject(e))?;
                let request = ProofRequest::new(method, &target).access_token(token);
                let proof = self
                    .inner
                    .verifier
                    .check(headers(names::DPOP).iter(), &request)
                    .map_err(|e| self.reject(e))?;
                Ok(PendingAuthorization {
                    scheme: AuthScheme::Dpop,
                    access_token: token.to_owned(),
                    proof: Some(proof),
                })
            }
        }
    }

    /// Finishes a checked request: records the proof against replay.
    ///
    /// # Errors
    ///
    /// The [`Rejection`] to send.
    pub async fn complete(
        &self,
        pending: PendingAuthorization,
    ) -> Result<Authentication, Rejection> {
        let PendingAuthorization {
            scheme,
            access_token,
            proof,
        } = pending;
        let proof = match proof {
            Some(unrecorded) => Some(
                self.inner
                    .verifier
                    .record(unrecorded)
                    .await
                    .map_err(|e| self.reject(e))?,
            ),
            None => None,
        };
        Ok(Authentication {
            scheme,
            access_token,
            proof,
        })
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
    ) -> Result<Authentication, Rejection> {
        let pending = self.check(method, uri, headers)?;
        self.complete(pending).await
    }

    /// The 401 for a request without credentials (RFC 9449 Figures 15 and 17).
    #[must_use]
    pub fn challenge(&self) -> Rejection {
        Rejection {
            error: None,
            www_authenticate: Some(self.base_challenge().render()),
        }
    }

    /// The rejection for `error`, with the challenge(s) this resource issues.
    #[must_use]
    pub fn reject(&self, error: DpopError) -> Rejection {
        if error.code() == ErrorCode::TemporarilyUnavailable {
            return Rejection {
                error: Some(error),
                www_authenticate: None,
            };
        }
        let scheme = match (&error, self.inner.allow_bearer) {
            (_, false) => ErrorScheme::Dpop,
            (DpopError::BoundTokenAsBearer, true) => ErrorScheme::Bearer,
            (e, true) if e.code() == ErrorCode::InvalidRequest => ErrorScheme::Both,
            _ => ErrorScheme::Dpop,
        };
        let www_authenticate = self.base_challenge().error_on(&error, scheme).render();
        Rejection {
            error: Some(error),
            www_authenticate: Some(www_authenticate),
        }
    }

    fn base_challenge(&self) -> Challenge<'_> {
        let challenge = Challenge::new(self.algorithms()).with_bearer(self.inner.allow_bearer);
        match &self.inner.resource_metadata {
            Some(url) => challenge.resource_metadata(url),
            None => challenge,
        }
    }
}

impl Default for DpopGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DpopGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopGuard")
            .field("verifier", &self.inner.verifier)
            .field("origin", &self.inner.origin)
            .field("allow_bearer", &self.inner.allow_bearer)
            .field("resource_metadata", &self.inner.resource_metadata)
            .finish()
    }
}

/// Builds a [`DpopGuard`].
#[derive(Clone, Debug)]
#[must_use]
pub struct DpopGuardBuilder {
    verifier: DpopVerifier,
    origin: Origin,
    allow_bearer: bool,
    resource_metadata: Option<String>,
    invalid_origin: bool,
}

impl Default for DpopGuardBuilder {
    fn default() -> Self {
        Self {
            verifier: DpopVerifier::new(),
            origin: Origin::FromRequest {
                trust_forwarded: false,
            },
            allow_bearer: false,
            resource_metadata: None,
            invalid_origin: false,
        }
    }
}

impl DpopGuardBuilder {
    /// The proof verifier (algorithms, limits, clock, replay store).
    pub fn verifier(mut self, verifier: DpopVerifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// The origin clients use to reach this server, e.g. `https://mcp.example.com`: the target
    /// URI is this plus the request path. The safe choice behind any proxy or load balancer.
    pub fn public_origin(mut self, origin: &str) -> Self {
        match Origin::public(origin) {
            Some(parsed) => self.origin = parsed,
            None => self.invalid_origin = true,
        }
        self
    }

    /// Without a public origin: take scheme and host from `Forwarded` / `X-Forwarded-Proto` /
    /// `X-Forwarded-Host`. Only when a proxy you run sets them (default: not trusted).
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        if let Origin::FromRequest { trust_forwarded } = &mut self.origin {
            *trust_forwarded = trust;
        }
        self
    }

    /// Also accept `Authorization: Bearer` (mixed mode; default: DPoP only). A DPoP-bound
    /// token is still refused as Bearer (RFC 9449 §7.2).
    pub fn allow_bearer(mut self, allow: bool) -> Self {
        self.allow_bearer = allow;
        self
    }

    /// The RFC 9728 metadata URL put in every challenge as `resource_metadata`.
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Builds the guard.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPublicOrigin`].
    pub fn build(self) -> Result<DpopGuard, ConfigError> {
        if self.invalid_origin {
            return Err(ConfigError::InvalidPublicOrigin);
        }
        Ok(DpopGuard::from_config(self))
    }
}
