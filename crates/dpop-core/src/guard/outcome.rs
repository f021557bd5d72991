//! What the guard decides: an [`Admission`] for the handler — [`Authentication`] for a validated
//! token, [`ProofOnlyAuthentication`] from a proof-only guard — or a [`Rejection`] rendered as
//! the [`Reply`] to send.

use std::fmt;
use std::sync::Arc;

use crate::error::DpopError;
use crate::guard::challenge::Challenge;
use crate::headers::names;
use crate::proof::algorithm::AlgorithmSet;
use crate::proof::verifier::{UnrecordedProof, VerifiedProof};
use crate::token::{AccessToken, TokenClaims};

/// How the request authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthScheme {
    /// `Authorization: DPoP` with a verified proof.
    Dpop,
    /// `Authorization: Bearer`, accepted only when the guard allows Bearer tokens.
    Bearer,
}

impl AuthScheme {
    /// The scheme's name as in the `Authorization` field: `DPoP` or `Bearer`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dpop => "DPoP",
            Self::Bearer => "Bearer",
        }
    }
}

/// A request with a validated access token, bound to the key that signed its proof (or an
/// accepted Bearer token in mixed mode): what adapters hand to handlers as `Authenticated`.
#[derive(Clone, Debug)]
pub struct Authentication {
    pub(super) scheme: AuthScheme,
    pub(super) access_token: String,
    pub(super) proof: Option<VerifiedProof>,
    pub(super) claims: Arc<TokenClaims>,
    pub(super) next_nonce: Option<String>,
}

impl Authentication {
    /// The scheme the request used.
    #[must_use]
    pub const fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// The access token, as presented and validated.
    #[must_use]
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The verified proof, for the DPoP scheme.
    #[must_use]
    pub const fn proof(&self) -> Option<&VerifiedProof> {
        self.proof.as_ref()
    }

    /// The thumbprint (`jkt`) of the key that signed the proof, for the DPoP scheme: the key the
    /// token is bound to.
    #[must_use]
    pub fn jkt(&self) -> Option<&str> {
        self.proof.as_ref().map(VerifiedProof::jkt)
    }

    /// The token's subject (`sub`), if it has one.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.claims.subject.as_deref()
    }

    /// The token's claims as your own type: registered and private claims alike, read from
    /// the validated claim set (`serde_json` rules; extra members are ignored unless `T` says
    /// otherwise).
    ///
    /// # Errors
    ///
    /// The claims do not fit `T`.
    pub fn claims_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.claims.deserialize_as()
    }

    /// The validated token's claims.
    #[must_use]
    pub fn claims(&self) -> &TokenClaims {
        &self.claims
    }

    /// Headers the successful response must carry: the next nonce when the proof's is past
    /// half its life, with `Cache-Control: no-store` (RFC 9449 §8.2, Figure 23). Adapters set
    /// them, replacing any the handler set, so there is never more than one `DPoP-Nonce`.
    pub fn response_headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        nonce_headers(self.next_nonce.as_deref())
    }
}

/// A request from a [proof-only](crate::DpopGuardBuilder::proof_only) guard: the proof is verified,
/// the access token is **not** — it is only the string the proof's `ath` covers. The handler
/// must validate the token itself before trusting anything it says.
#[derive(Clone, Debug)]
pub struct ProofOnlyAuthentication {
    pub(super) proof: VerifiedProof,
    pub(super) unvalidated_access_token: String,
    pub(super) next_nonce: Option<String>,
}

impl ProofOnlyAuthentication {
    /// The verified proof.
    #[must_use]
    pub const fn proof(&self) -> &VerifiedProof {
        &self.proof
    }

    /// The thumbprint (`jkt`) of the key that signed the proof.
    #[must_use]
    pub fn jkt(&self) -> &str {
        self.proof.jkt()
    }

    /// The proof's `jti`.
    #[must_use]
    pub fn jti(&self) -> &str {
        self.proof.jti()
    }

    /// The access token as presented: not validated, not known to be bound to the proof's key.
    #[must_use]
    pub fn unvalidated_access_token(&self) -> &str {
        &self.unvalidated_access_token
    }

    /// Headers the successful response must carry (see [`Authentication::response_headers`]).
    pub fn response_headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        nonce_headers(self.next_nonce.as_deref())
    }
}

/// The next nonce and `Cache-Control: no-store`, when there is one (RFC 9449 §8.2).
fn nonce_headers(next_nonce: Option<&str>) -> impl Iterator<Item = (&'static str, &str)> {
    next_nonce.into_iter().flat_map(|nonce| [(names::DPOP_NONCE, nonce), (names::CACHE_CONTROL, "no-store")])
}

/// A request the guard let through; adapters put the inner value into the request extensions.
#[derive(Clone, Debug)]
pub enum Admission {
    /// A validated, bound access token: handlers see it as `Authenticated`.
    Authenticated(Authentication),
    /// A proof-only guard's verdict: handlers see it as `ProofOnly`, never as `Authenticated`.
    ProofOnly(ProofOnlyAuthentication),
}

impl Admission {
    /// Records who the request came from in `span` (one made by
    /// [`DpopGuard::request_span`](crate::DpopGuard::request_span)): `jkt`, and from a validated
    /// token only `sub` and `client_id`. Never the token or the proof.
    pub fn record_caller(&self, span: &tracing::Span) {
        span.record("jkt", self.jkt());
        span.record("sub", self.subject());
        span.record("client_id", self.client_id());
    }

    /// The thumbprint of the key that signed the proof (absent for a Bearer token).
    #[must_use]
    pub fn jkt(&self) -> Option<&str> {
        match self {
            Self::Authenticated(auth) => auth.jkt(),
            Self::ProofOnly(auth) => Some(auth.jkt()),
        }
    }

    /// The validated token's subject (`sub`); never read from an unvalidated token.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::Authenticated(auth) => auth.subject(),
            Self::ProofOnly(_) => None,
        }
    }

    /// The validated token's `client_id`; never read from an unvalidated token.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Authenticated(auth) => auth.claims.client_id.as_deref(),
            Self::ProofOnly(_) => None,
        }
    }

    /// Headers the successful response must carry (the next nonce, RFC 9449 §8.2).
    pub fn response_headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let next_nonce = match self {
            Self::Authenticated(auth) => auth.next_nonce.as_deref(),
            Self::ProofOnly(auth) => auth.next_nonce.as_deref(),
        };
        nonce_headers(next_nonce)
    }
}

/// A complete HTTP response the guard decided on: a rejection or the metadata document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: String,
}

impl Reply {
    /// The status code.
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The header fields, names lowercase.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.headers.iter().map(|(name, value)| (*name, value.as_str()))
    }

    /// The body (JSON).
    #[must_use]
    pub fn body(&self) -> &str {
        &self.body
    }
}

/// A refusal, with everything the HTTP response needs.
///
/// It is an error: `Display` gives the code and description (`invalid_token: Invalid access
/// token: token expired`), or `authentication required` when the request had no credentials.
/// The reason is already in that text, so [`source`](std::error::Error::source) is `None`;
/// [`error`](Self::error) gives it as a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub(super) error: Option<DpopError>,
    pub(super) www_authenticate: Option<String>,
    pub(super) dpop_nonce: Option<String>,
}

impl Rejection {
    /// The 401 for a handler that requires authentication on a route no guard admitted it to: a
    /// configuration error, answered as "authentication required" with a challenge advertising
    /// `algorithms` (the guard's, [`DpopGuard::algorithms`](crate::DpopGuard::algorithms), where
    /// the caller knows it; [`AlgorithmSet::default`] otherwise). The caller logs where it found
    /// the misconfiguration.
    #[must_use]
    pub fn unguarded_route(algorithms: AlgorithmSet) -> Self {
        Self { error: None, www_authenticate: Some(Challenge::new(algorithms).render()), dpop_nonce: None }
    }

    /// The reason, or `None` when the request simply had no credentials (RFC 6750 §3.1: no
    /// error code then).
    #[must_use]
    pub const fn error(&self) -> Option<&DpopError> {
        self.error.as_ref()
    }

    /// The HTTP status code: 401, 400, 403, 429 or 503.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.error.as_ref().map_or(401, DpopError::status)
    }

    /// The `Retry-After` delay in seconds, on 429 and 503 (see [`DpopError::retry_after`]).
    #[must_use]
    pub fn retry_after(&self) -> Option<u32> {
        self.error.as_ref().and_then(DpopError::retry_after)
    }

    /// The `WWW-Authenticate` value (absent on 503).
    #[must_use]
    pub fn www_authenticate(&self) -> Option<&str> {
        self.www_authenticate.as_deref()
    }

    /// The fresh nonce sent with `use_dpop_nonce` (RFC 9449 §8, Figure 24).
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
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

    /// The whole response: status, `WWW-Authenticate` or `Retry-After`, `Cache-Control:
    /// no-store`, JSON body.
    #[must_use]
    pub fn reply(&self) -> Reply {
        let mut headers = Vec::with_capacity(4);
        if let Some(challenge) = &self.www_authenticate {
            headers.push((names::WWW_AUTHENTICATE, challenge.clone()));
        }
        if let Some(nonce) = &self.dpop_nonce {
            headers.push((names::DPOP_NONCE, nonce.clone()));
        }
        if let Some(seconds) = self.retry_after() {
            headers.push((names::RETRY_AFTER, seconds.to_string()));
        }
        headers.push((names::CACHE_CONTROL, "no-store".to_owned()));
        headers.push((names::CONTENT_TYPE, "application/json".to_owned()));
        Reply { status: self.status(), headers, body: self.body() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(error) => error.fmt(f),
            None => f.write_str("authentication required"),
        }
    }
}

impl std::error::Error for Rejection {}

/// Checked but not yet final: hand to [`DpopGuard::complete`](crate::DpopGuard::complete).
#[must_use = "a pending authorization is not an authorization until completed"]
pub struct PendingAuthorization {
    pub(super) scheme: AuthScheme,
    pub(super) access_token: String,
    /// SHA-256 of `access_token`, computed once for `ath` and the validator's cache.
    pub(super) access_token_sha256: [u8; 32],
    pub(super) proof: Option<UnrecordedProof>,
}

impl fmt::Debug for PendingAuthorization {
    /// Never the access token: it is a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("scheme", &self.scheme)
            .field("proof", &self.proof)
            .finish_non_exhaustive()
    }
}

impl PendingAuthorization {
    pub(super) fn new(scheme: AuthScheme, token: AccessToken<'_>, proof: Option<UnrecordedProof>) -> Self {
        Self { scheme, access_token: token.as_str().to_owned(), access_token_sha256: *token.sha256(), proof }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(error: Option<DpopError>) -> Rejection {
        Rejection { error, www_authenticate: None, dpop_nonce: None }
    }

    #[test]
    fn a_rejection_displays_its_code_and_description() {
        let replayed = rejection(Some(DpopError::Replayed));
        assert_eq!(replayed.to_string(), "invalid_dpop_proof: DPoP proof has already been used");
        assert_eq!(rejection(None).to_string(), "authentication required");
        let boxed: Box<dyn std::error::Error> = Box::new(replayed);
        assert!(boxed.source().is_none(), "the reason is in the text, not repeated as a source");
    }
}
