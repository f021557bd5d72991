//! The token endpoint of an authorization server: DPoP proofs on token requests (RFC 9449 §5),
//! nonces (§8) and the authorization code's `dpop_jkt` (§10).
//!
//! [`TokenEndpoint::check`] runs the verifier's checks for a token request — `htm` `POST`, `htu`
//! this endpoint, no access token and so no `ath`, a fresh nonce when configured, never
//! replayed — then compares the proof's key with the `dpop_jkt` the authorization request
//! carried, if any. It answers the `jkt` to bind the new tokens to (`cnf.jkt`, §6), or a
//! [`TokenEndpointRejection`] that is the whole 400 response: `{"error", "error_description"}`,
//! `DPoP-Nonce` with `use_dpop_nonce`, `Cache-Control: no-store`.
//!
//! ```
//! use dpop_core::token_endpoint::TokenEndpoint;
//! use dpop_core::{DpopKey, DpopVerifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = TokenEndpoint::new(DpopVerifier::new(), "https://as.example.com/token")?;
//!
//! let key = DpopKey::generate()?;
//! let proof = key.proof("POST", "https://as.example.com/token").sign()?;
//! let accepted = endpoint.check([proof.as_bytes()], None).await?;
//! assert_eq!(accepted.jkt(), key.thumbprint().to_string()); // goes into the token's cnf.jkt
//!
//! // The same proof again is refused, as the RFC's 400 JSON response.
//! let refused = endpoint.check([proof.as_bytes()], None).await.unwrap_err();
//! assert_eq!((refused.status(), refused.error()), (400, "invalid_dpop_proof"));
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;

use crate::error::{ConfigError, DpopError, ErrorCode};
use crate::headers::names;
use crate::proof::checks::single_proof;
use crate::proof::htu;
use crate::proof::jws::{self, CompactJws};
use crate::proof::verifier::{DpopVerifier, ProofRequest, VerifiedProof};

/// Checks DPoP proofs of token requests for one token endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    verifier: DpopVerifier,
    url: String,
    require_nonce: bool,
}

impl TokenEndpoint {
    /// Proofs for `token_endpoint` (its absolute URL, as clients use it), checked by `verifier`.
    /// Nonces are required when the verifier has a nonce issuer (see
    /// [`require_nonce`](Self::require_nonce)).
    ///
    /// # Errors
    ///
    /// The URL is not an absolute http(s) URI.
    pub fn new(verifier: DpopVerifier, token_endpoint: &str) -> Result<Self, InvalidTokenEndpoint> {
        if htu::normalize_htu(token_endpoint).is_none() {
            tracing::error!("token endpoint URL is not an absolute http(s) URI");
            return Err(InvalidTokenEndpoint);
        }
        let require_nonce = verifier.nonces().is_some();
        Ok(Self { verifier, url: htu::without_query(token_endpoint).to_owned(), require_nonce })
    }

    /// Whether every token request must carry a fresh nonce (default: when the verifier issues
    /// nonces).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoncePolicyWithoutIssuer`] to require nonces the verifier cannot issue.
    pub fn require_nonce(mut self, require: bool) -> Result<Self, ConfigError> {
        if require && self.verifier.nonces().is_none() {
            tracing::error!("token endpoint: nonces required but the verifier has no nonce issuer");
            return Err(ConfigError::NoncePolicyWithoutIssuer);
        }
        self.require_nonce = require;
        Ok(self)
    }

    /// The token endpoint URL proofs must name.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks the `DPoP` header values of a token request (a `POST` to this endpoint) and, for
    /// an authorization code or PAR request that carried `dpop_jkt`, that the proof is signed by
    /// that key.
    ///
    /// # Errors
    ///
    /// The rejection to send, already logged.
    pub async fn check<'v, I>(
        &self,
        dpop_header_values: I,
        dpop_jkt: Option<&str>,
    ) -> Result<AcceptedTokenProof, TokenEndpointRejection>
    where
        I: IntoIterator<Item = &'v [u8]>,
    {
        let values: Vec<&[u8]> = dpop_header_values.into_iter().take(2).collect();
        let request = ProofRequest::new("POST", &self.url).require_nonce(self.require_nonce);
        let checked = self.verifier.check(values.iter().copied(), &request).map_err(|e| self.reject(e.into()))?;
        // RFC 9449 §5: no access token at the token endpoint, so a proof with `ath` was made for
        // a resource request, not this one.
        if has_access_token_hash(&values) {
            return Err(self.reject(Refusal::AccessTokenHash));
        }
        if let Some(expected) = dpop_jkt
            && checked.proof().jkt() != expected
        {
            return Err(self.reject(Refusal::JktMismatch));
        }
        let proof = self.verifier.record(checked).await.map_err(|e| self.reject(e.into()))?;
        let next_nonce = if proof.nonce_needs_refresh() { self.fresh_nonce() } else { None };
        Ok(AcceptedTokenProof { proof, next_nonce })
    }

    fn reject(&self, refusal: Refusal) -> TokenEndpointRejection {
        let nonce = matches!(refusal, Refusal::Proof(DpopError::UseDpopNonce(_))).then(|| self.fresh_nonce()).flatten();
        let rejection = TokenEndpointRejection { refusal, nonce };
        tracing::info!(
            error = rejection.error(),
            reason = %rejection.description(),
            "token request refused: DPoP proof"
        );
        rejection
    }

    /// A new nonce; a failing random generator means none (the client cannot proceed: refusal).
    fn fresh_nonce(&self) -> Option<String> {
        let issuer = self.verifier.nonces()?;
        issuer.issue().inspect_err(|error| tracing::error!(%error, "could not issue a DPoP nonce")).ok()
    }
}

/// Whether the (already checked, so well-formed) single proof carries `ath`.
fn has_access_token_hash(values: &[&[u8]]) -> bool {
    let Ok(value) = single_proof(values.iter().copied()) else { return false };
    let Ok(jws) = CompactJws::split(value) else { return false };
    let Ok(claims) = jws::decode_segment(jws.payload, "claims") else { return false };
    jws::parse_claims(&claims).is_ok_and(|claims| claims.ath.is_some())
}

/// A token endpoint URL that is not an absolute http(s) URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTokenEndpoint;

impl fmt::Display for InvalidTokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the token endpoint must be an absolute http(s) URI such as https://as.example.com/token")
    }
}

impl std::error::Error for InvalidTokenEndpoint {}

/// A token request whose proof passed: bind the tokens to [`jkt`](Self::jkt).
#[derive(Clone, Debug)]
pub struct AcceptedTokenProof {
    proof: VerifiedProof,
    next_nonce: Option<String>,
}

impl AcceptedTokenProof {
    /// The proof's key thumbprint: the token's `cnf.jkt` (RFC 9449 §6), and the key a refresh
    /// token is bound to for public clients (§5).
    #[must_use]
    pub fn jkt(&self) -> &str {
        self.proof.jkt()
    }

    /// The verified proof.
    #[must_use]
    pub const fn proof(&self) -> &VerifiedProof {
        &self.proof
    }

    /// Headers the token response carries besides its own: the next nonce when the proof's is
    /// past half its life (RFC 9449 §8.2). Token responses are `Cache-Control: no-store` anyway
    /// (RFC 6749 §5.1).
    pub fn response_headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.next_nonce.as_deref().map(|nonce| (names::DPOP_NONCE, nonce)).into_iter()
    }
}

/// Why a token request's proof was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Refusal {
    /// A check of the verifier.
    Proof(DpopError),
    /// The proof carries `ath`.
    AccessTokenHash,
    /// The proof's key is not the one `dpop_jkt` named.
    JktMismatch,
}

impl From<DpopError> for Refusal {
    fn from(error: DpopError) -> Self {
        Self::Proof(error)
    }
}

/// The response to a token request whose proof was refused (RFC 9449 §5, §8; RFC 6749 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenEndpointRejection {
    refusal: Refusal,
    nonce: Option<String>,
}

impl TokenEndpointRejection {
    /// The OAuth error code: `invalid_dpop_proof`, `use_dpop_nonce`, or
    /// `temporarily_unavailable` when the replay store cannot decide.
    #[must_use]
    pub fn error(&self) -> &'static str {
        match &self.refusal {
            Refusal::Proof(error) => match error.code() {
                ErrorCode::UseDpopNonce => "use_dpop_nonce",
                ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
                ErrorCode::InvalidRequest => "invalid_request",
                _ => "invalid_dpop_proof",
            },
            Refusal::AccessTokenHash | Refusal::JktMismatch => "invalid_dpop_proof",
        }
    }

    /// The HTTP status: 400, or 503 when the replay store cannot decide.
    #[must_use]
    pub fn status(&self) -> u16 {
        if self.error() == "temporarily_unavailable" { 503 } else { 400 }
    }

    /// A human `error_description`; never contains request bytes.
    #[must_use]
    pub fn description(&self) -> Cow<'static, str> {
        match &self.refusal {
            Refusal::Proof(DpopError::UseDpopNonce(_)) => "Authorization server requires nonce in DPoP proof".into(),
            Refusal::Proof(error) => error.description(),
            Refusal::AccessTokenHash => "DPoP proof for a token request must not carry `ath`".into(),
            Refusal::JktMismatch => "DPoP proof key does not match the `dpop_jkt` of the authorization request".into(),
        }
    }

    /// The verifier's reason, when a proof check failed (not for `ath` or `dpop_jkt`).
    #[must_use]
    pub const fn proof_error(&self) -> Option<&DpopError> {
        match &self.refusal {
            Refusal::Proof(error) => Some(error),
            _ => None,
        }
    }

    /// The fresh nonce sent with `use_dpop_nonce` (RFC 9449 §8, Figure 20).
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The response headers: `DPoP-Nonce` (with `use_dpop_nonce`), `Cache-Control: no-store`,
    /// `Content-Type: application/json`.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.nonce
            .as_deref()
            .map(|nonce| (names::DPOP_NONCE, nonce))
            .into_iter()
            .chain([(names::CACHE_CONTROL, "no-store"), (names::CONTENT_TYPE, "application/json")])
    }

    /// The JSON body: `{"error": "…", "error_description": "…"}`.
    #[must_use]
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.error(), "error_description": self.description() }).to_string()
    }
}

impl fmt::Display for TokenEndpointRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error(), self.description())
    }
}

impl std::error::Error for TokenEndpointRejection {}
