//! The errors of a server: [`DpopError`], every rejection of a request with its RFC error code,
//! HTTP status and description; [`ConfigError`], every configuration a builder refuses.
//!
//! They are not the crate's only error types. A token validator answers with a
//! [`TokenError`](crate::TokenError) (its reason an [`InvalidToken`]), which the guard turns into
//! [`DpopError::InvalidAccessToken`] or [`DpopError::TokenValidationUnavailable`]; the client
//! side's key and signing failures are [`CryptoError`](crate::CryptoError) and
//! [`KeyError`](crate::KeyError); a [`Rejection`](crate::Rejection) is the response for a
//! `DpopError` (or for a request without credentials). Each is a `std::error::Error`.

use std::borrow::Cow;
use std::fmt;

use crate::nonce::NonceRejection;
use crate::proof::algorithm::Algorithm;
use crate::token::InvalidToken;

/// The error codes a resource server answers with (RFC 9449 §7.1, §8; RFC 6750 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_dpop_proof`: the DPoP proof is missing, malformed or fails a check (RFC 9449 §7.1).
    InvalidDpopProof,
    /// `invalid_token`: the access token is invalid or not bound to the proof's key (RFC 6750 §3.1).
    InvalidToken,
    /// `use_dpop_nonce`: the proof must carry a server-provided nonce (RFC 9449 §8).
    UseDpopNonce,
    /// `invalid_request`: the request is malformed, e.g. two authentication methods (RFC 6750 §3.1).
    InvalidRequest,
    /// `insufficient_scope`: the token lacks a required scope (RFC 6750 §3.1).
    InsufficientScope,
    /// `temporarily_unavailable`: the server cannot decide now (replay store down or full, a
    /// key over its replay quota, token validation unreachable); the request is refused, never
    /// let through, with `Retry-After`.
    ///
    /// RFC 6750 has no code for "try again later"; this is the OAuth 2.0 one for it (RFC 6749
    /// §4.1.2.1, IANA OAuth Extensions Error registry), which OAuth clients already know. A key
    /// over its quota gets it too, with status 429 (RFC 6585 §4) instead of 503: the code says
    /// "not now", the status says whether the client itself is sending too much.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as it appears in `error="…"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::InvalidToken => "invalid_token",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidRequest => "invalid_request",
            Self::InsufficientScope => "insufficient_scope",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status code that usually goes with this error (RFC 6750 §3.1, RFC 9449 §7.1);
    /// [`DpopError::status`] is the one a rejection is sent with (429 for a key over its quota).
    #[must_use]
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidDpopProof | Self::InvalidToken | Self::UseDpopNonce => 401,
            Self::InvalidRequest => 400,
            Self::InsufficientScope => 403,
            Self::TemporarilyUnavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Retry-After` of every `temporarily_unavailable` rejection, in seconds.
const RETRY_AFTER_SECS: u32 = 1;

/// Why a request was rejected.
///
/// Each variant is one failed check. [`DpopError::code`] gives its RFC error code and
/// [`DpopError::description`] a human sentence for `error_description`; neither ever contains
/// bytes taken from the request.
///
/// The variants are not nested by category: [`code`](Self::code) is the category. Its six
/// values split the variants into the proof's checks (`invalid_dpop_proof`), the access token's
/// (`invalid_token`), the nonce (`use_dpop_nonce`), the request's shape (`invalid_request`),
/// scopes (`insufficient_scope`) and "not now" (`temporarily_unavailable`), and it is computed
/// by a match without a wildcard, so a new variant is given its category when it is added.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopError {
    /// No `DPoP` header field (RFC 9449 §4.3 check 1).
    MissingProof,
    /// More than one `DPoP` header field (RFC 9449 §4.3 check 1).
    MultipleProofs,
    /// The `DPoP` header value is larger than the configured limit.
    ProofTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The value is not one compact JWS with base64url parts (RFC 9449 §4.3 check 2).
    /// The field names the part that is malformed.
    MalformedProof(&'static str),
    /// A JSON object in the proof has the same member name twice.
    DuplicateMember(&'static str),
    /// A JSON object in the proof has more members than a proof ever needs.
    TooManyMembers(&'static str),
    /// A required member is absent (RFC 9449 §4.3 check 3).
    MissingMember(&'static str),
    /// A member has the wrong JSON type or an unusable value (RFC 9449 §4.3 check 3).
    InvalidMember(&'static str),
    /// `typ` is not `dpop+jwt` (RFC 9449 §4.3 check 4).
    WrongType,
    /// `alg` names no asymmetric algorithm this library knows (`none`, `HS256`, …)
    /// (RFC 9449 §4.3 check 5).
    UnsupportedAlgorithm,
    /// `alg` is a known algorithm outside the configured allow-list (RFC 9449 §4.3 check 5).
    AlgorithmNotAllowed(Algorithm),
    /// The header has a `crit` parameter; no extension is understood (RFC 7515 §4.1.11).
    CriticalHeader,
    /// The header refers to a key elsewhere (`jku`, `x5u`, `x5c`) instead of carrying `jwk`.
    ExternalKeyReference,
    /// The `jwk` has private key members (RFC 9449 §4.3 check 7).
    PrivateKey,
    /// The `jwk` is not a usable public key (bad point, bad size, unknown curve).
    InvalidKey(&'static str),
    /// The `jwk` key type or curve does not fit `alg`.
    KeyAlgorithmMismatch,
    /// The signature does not verify with the `jwk` (RFC 9449 §4.3 check 6).
    InvalidSignature,
    /// `jti` is longer than the configured limit.
    JtiTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// `htm` is not the request method (RFC 9449 §4.3 check 8).
    MethodMismatch,
    /// `htu` is not the request's target URI (RFC 9449 §4.3 check 9).
    UriMismatch,
    /// `htu` is not an absolute `http`/`https` URI without userinfo.
    InvalidUri,
    /// The proof lacks a valid, fresh server nonce (RFC 9449 §4.3 check 10, §8): answered with
    /// `use_dpop_nonce` and a new nonce in `DPoP-Nonce`.
    UseDpopNonce(NonceRejection),
    /// `iat` is further in the past than the acceptance window (RFC 9449 §4.3 check 11).
    IssuedTooLongAgo,
    /// `iat` is further in the future than the allowed clock skew (RFC 9449 §4.3 check 11).
    IssuedInFuture,
    /// An access token came with the proof but `ath` is absent (RFC 9449 §4.3 check 12).
    MissingAccessTokenHash,
    /// `ath` is not the hash of the presented access token (RFC 9449 §4.3 check 12).
    AccessTokenHashMismatch,
    /// This proof (`jkt`, `jti`) was already used (RFC 9449 §11.1).
    Replayed,
    /// The replay store has no room left; refused rather than evicting live entries.
    ReplayStoreFull,
    /// This client key has as many live proofs recorded as one key may; refused with 429.
    ReplayQuotaExceeded,
    /// The replay store failed or timed out; refused rather than accepted.
    ReplayStoreUnavailable,
    /// The access token is bound to a different key than the proof's (RFC 9449 §6, Figure 16).
    KeyBindingMismatch,
    /// The access token is not bound to any key, yet was presented with the DPoP scheme.
    TokenNotBound,
    /// A DPoP-bound access token was presented with the Bearer scheme (RFC 9449 §7.2).
    BoundTokenAsBearer,
    /// The server-side target URI could not be parsed (a request with a bad `Host`, for example).
    InvalidTargetUri,
    /// Trusted forwarding headers disagree or repeat (`Forwarded` beside `X-Forwarded-*`, two
    /// fields, a list, a parameter twice): which origin the client used is unknown, so the
    /// request is refused rather than guessed.
    AmbiguousForwarding,
    /// Two `Authorization` fields, or credentials in more than one way (RFC 6750 §2, Figure 19).
    MultipleAuthorization,
    /// The `Authorization` field is not `scheme 1*SP token68` (RFC 9110 §11.4).
    MalformedAuthorization,
    /// A Bearer token was presented to a resource that accepts only DPoP.
    BearerNotAccepted,
    /// The access token validator refused the token (RFC 6750 §3.1 `invalid_token`), for this
    /// reason; the description is `Invalid access token: ` and [`InvalidToken::as_str`].
    InvalidAccessToken(InvalidToken),
    /// The token could not be validated now (authorization server or keys unreachable).
    TokenValidationUnavailable,
    /// The token lacks a scope this resource requires (RFC 6750 §3.1, 403).
    InsufficientScope,
}

impl DpopError {
    /// The RFC error code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        // No wildcard arm: a new variant must be given its code here, never a default.
        match self {
            Self::MissingProof
            | Self::MultipleProofs
            | Self::ProofTooLarge { .. }
            | Self::MalformedProof(_)
            | Self::DuplicateMember(_)
            | Self::TooManyMembers(_)
            | Self::MissingMember(_)
            | Self::InvalidMember(_)
            | Self::WrongType
            | Self::UnsupportedAlgorithm
            | Self::AlgorithmNotAllowed(_)
            | Self::CriticalHeader
            | Self::ExternalKeyReference
            | Self::PrivateKey
            | Self::InvalidKey(_)
            | Self::KeyAlgorithmMismatch
            | Self::InvalidSignature
            | Self::JtiTooLong { .. }
            | Self::MethodMismatch
            | Self::UriMismatch
            | Self::InvalidUri
            | Self::IssuedTooLongAgo
            | Self::IssuedInFuture
            | Self::MissingAccessTokenHash
            | Self::AccessTokenHashMismatch
            | Self::Replayed => ErrorCode::InvalidDpopProof,
            Self::UseDpopNonce(_) => ErrorCode::UseDpopNonce,
            Self::KeyBindingMismatch
            | Self::TokenNotBound
            | Self::BoundTokenAsBearer
            | Self::BearerNotAccepted
            | Self::InvalidAccessToken(_) => ErrorCode::InvalidToken,
            Self::InvalidTargetUri
            | Self::AmbiguousForwarding
            | Self::MultipleAuthorization
            | Self::MalformedAuthorization => ErrorCode::InvalidRequest,
            Self::InsufficientScope => ErrorCode::InsufficientScope,
            Self::ReplayStoreFull
            | Self::ReplayQuotaExceeded
            | Self::ReplayStoreUnavailable
            | Self::TokenValidationUnavailable => ErrorCode::TemporarilyUnavailable,
        }
    }

    /// The HTTP status code for this rejection: the code's, except 429 Too Many Requests
    /// (RFC 6585 §4) for a key over its replay quota: that client, not the server, must slow down.
    #[must_use]
    pub const fn status(&self) -> u16 {
        match self {
            Self::ReplayQuotaExceeded => 429,
            _ => self.code().status(),
        }
    }

    /// The `Retry-After` delay in seconds (RFC 9110 §10.2.3), for the rejections that are "not
    /// now" rather than "no" (`temporarily_unavailable`, 503 or 429); `None` for the others.
    ///
    /// One second for all: replay entries expire by the second, so a full store or a key at its
    /// quota has room again within one; a store or validator that is down is probed again
    /// within one (a Redis store's circuit breaker probes every 500 ms at most).
    #[must_use]
    pub const fn retry_after(&self) -> Option<u32> {
        match self.code() {
            ErrorCode::TemporarilyUnavailable => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// A short, human `error_description`. Never contains request bytes.
    #[must_use]
    pub fn description(&self) -> Cow<'static, str> {
        let text = match self {
            Self::MissingProof => "DPoP proof is missing",
            Self::MultipleProofs => "More than one DPoP header field",
            Self::ProofTooLarge { limit } => {
                return Cow::Owned(format!("DPoP proof is larger than {limit} bytes"));
            }
            Self::MalformedProof(part) => {
                return Cow::Owned(format!("DPoP proof is malformed: invalid {part}"));
            }
            Self::DuplicateMember(object) => {
                return Cow::Owned(format!("DPoP proof {object} has a duplicate member"));
            }
            Self::TooManyMembers(object) => {
                return Cow::Owned(format!("DPoP proof {object} has too many members"));
            }
            Self::MissingMember(name) => {
                return Cow::Owned(format!("DPoP proof is missing `{name}`"));
            }
            Self::InvalidMember(name) => {
                return Cow::Owned(format!("DPoP proof has an invalid `{name}`"));
            }
            Self::WrongType => "DPoP proof `typ` must be `dpop+jwt`",
            Self::UnsupportedAlgorithm => "DPoP proof `alg` is not a supported asymmetric algorithm",
            Self::AlgorithmNotAllowed(alg) => {
                return Cow::Owned(format!("DPoP proof `alg` {} is not allowed", alg.name()));
            }
            Self::CriticalHeader => "DPoP proof has a `crit` header parameter",
            Self::ExternalKeyReference => "DPoP proof key must be given in `jwk`",
            Self::PrivateKey => "DPoP proof `jwk` contains private key material",
            Self::InvalidKey(why) => {
                return Cow::Owned(format!("DPoP proof `jwk` is invalid: {why}"));
            }
            Self::KeyAlgorithmMismatch => "DPoP proof `jwk` does not match `alg`",
            Self::InvalidSignature => "DPoP proof signature is invalid",
            Self::JtiTooLong { limit } => {
                return Cow::Owned(format!("DPoP proof `jti` is longer than {limit} bytes"));
            }
            Self::MethodMismatch => "DPoP proof `htm` does not match the request method",
            Self::UriMismatch => "DPoP proof `htu` does not match the request URI",
            Self::InvalidUri => "DPoP proof `htu` is not an absolute http(s) URI",
            Self::UseDpopNonce(_) => "Resource server requires nonce in DPoP proof",
            Self::IssuedTooLongAgo => "DPoP proof `iat` is too old",
            Self::IssuedInFuture => "DPoP proof `iat` is in the future",
            Self::MissingAccessTokenHash => "DPoP proof is missing `ath` for the access token",
            Self::AccessTokenHashMismatch => "DPoP proof `ath` does not match the access token",
            Self::Replayed => "DPoP proof has already been used",
            Self::ReplayStoreFull => "DPoP replay cache is full, try again later",
            Self::ReplayQuotaExceeded => "Too many recent DPoP proofs from this key, try again later",
            Self::ReplayStoreUnavailable => "DPoP replay cache is unavailable, try again later",
            Self::KeyBindingMismatch => "Invalid DPoP key binding",
            Self::TokenNotBound => "Access token is not DPoP-bound",
            Self::BoundTokenAsBearer => "DPoP-bound access token must be sent with the DPoP scheme",
            Self::InvalidTargetUri => "Request target URI is invalid",
            Self::AmbiguousForwarding => "Forwarding headers are ambiguous",
            Self::MultipleAuthorization => "Multiple methods used to include access token",
            Self::MalformedAuthorization => "Malformed Authorization header",
            Self::BearerNotAccepted => "This resource requires DPoP-bound tokens; Bearer is not accepted",
            Self::InvalidAccessToken(why) => {
                return Cow::Owned(format!("Invalid access token: {why}"));
            }
            Self::TokenValidationUnavailable => "Access token validation is unavailable, try again later",
            Self::InsufficientScope => "The access token lacks a required scope",
        };
        Cow::Borrowed(text)
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.description())
    }
}

impl std::error::Error for DpopError {}

/// A configuration that cannot work, found when it is built (never at request time).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The algorithm allow-list is empty.
    NoAlgorithms,
    /// The compiled crypto backend cannot verify this algorithm.
    UnsupportedAlgorithm(Algorithm),
    /// A size limit is zero.
    ZeroLimit(&'static str),
    /// The public origin is not an absolute `http(s)` URI without query or fragment.
    InvalidPublicOrigin,
    /// The resource is not an absolute `http(s)` URI without query or fragment.
    InvalidResource,
    /// Metadata members (authorization servers, scopes) were set without a resource.
    MetadataWithoutResource,
    /// Required scopes were set without a token validator to read them from.
    ScopesWithoutTokenValidator,
    /// A nonce policy was set but the verifier has no nonce issuer.
    NoncePolicyWithoutIssuer,
    /// A guard without a token validator was built without saying it is proof-only.
    NoTokenValidator,
    /// Bearer tokens were allowed without a token validator to check them.
    BearerWithoutTokenValidator,
    /// A duration outside the range this library can use (named, with the range).
    DurationOutOfRange {
        /// The setting.
        name: &'static str,
        /// The smallest value accepted.
        min: std::time::Duration,
        /// The largest value accepted.
        max: std::time::Duration,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAlgorithms => f.write_str("the DPoP algorithm allow-list is empty"),
            Self::UnsupportedAlgorithm(alg) => {
                write!(f, "the {} crypto backend cannot verify {alg}", crate::crypto::BACKEND)
            }
            Self::ZeroLimit(name) => write!(f, "{name} must be greater than zero"),
            Self::InvalidPublicOrigin => {
                f.write_str("the public origin must be an absolute http(s) URI such as https://mcp.example.com")
            }
            Self::InvalidResource => {
                f.write_str("the resource must be an absolute http(s) URI such as https://mcp.example.com/mcp")
            }
            Self::MetadataWithoutResource => {
                f.write_str("authorization servers and supported scopes need the resource URI first")
            }
            Self::ScopesWithoutTokenValidator => {
                f.write_str("required scopes need a token validator to read the granted scopes from")
            }
            Self::NoncePolicyWithoutIssuer => f.write_str("a nonce policy needs a verifier built with a nonce issuer"),
            Self::NoTokenValidator => f.write_str(
                "no token validator: set token_validator(..) to validate access tokens, or proof_only() to accept \
                 any token with a valid proof and validate it yourself",
            ),
            Self::BearerWithoutTokenValidator => {
                f.write_str("allow_bearer(true) needs a token validator: a Bearer token is nothing but the token")
            }
            Self::DurationOutOfRange { name, min, max } => {
                write!(f, "{name} must be between {} s and {} s", min.as_secs(), max.as_secs())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;

    /// Every variant with the row of the README's response table it belongs to: the code and
    /// status a client sees. The match below has no wildcard, so a new variant does not compile
    /// until it is added here too.
    fn expected(error: &DpopError) -> (ErrorCode, u16) {
        use ErrorCode::*;
        match error {
            DpopError::MissingProof
            | DpopError::MultipleProofs
            | DpopError::ProofTooLarge { .. }
            | DpopError::MalformedProof(_)
            | DpopError::DuplicateMember(_)
            | DpopError::TooManyMembers(_)
            | DpopError::MissingMember(_)
            | DpopError::InvalidMember(_)
            | DpopError::WrongType
            | DpopError::UnsupportedAlgorithm
            | DpopError::AlgorithmNotAllowed(_)
            | DpopError::CriticalHeader
            | DpopError::ExternalKeyReference
            | DpopError::PrivateKey
            | DpopError::InvalidKey(_)
            | DpopError::KeyAlgorithmMismatch
            | DpopError::InvalidSignature
            | DpopError::JtiTooLong { .. }
            | DpopError::MethodMismatch
            | DpopError::UriMismatch
            | DpopError::InvalidUri
            | DpopError::IssuedTooLongAgo
            | DpopError::IssuedInFuture
            | DpopError::MissingAccessTokenHash
            | DpopError::AccessTokenHashMismatch
            | DpopError::Replayed => (InvalidDpopProof, 401),
            DpopError::BearerNotAccepted
            | DpopError::InvalidAccessToken(_)
            | DpopError::TokenNotBound
            | DpopError::KeyBindingMismatch
            | DpopError::BoundTokenAsBearer => (InvalidToken, 401),
            DpopError::MultipleAuthorization
            | DpopError::MalformedAuthorization
            | DpopError::InvalidTargetUri
            | DpopError::AmbiguousForwarding => (InvalidRequest, 400),
            DpopError::UseDpopNonce(_) => (UseDpopNonce, 401),
            DpopError::InsufficientScope => (InsufficientScope, 403),
            DpopError::ReplayQuotaExceeded => (TemporarilyUnavailable, 429),
            DpopError::ReplayStoreFull | DpopError::ReplayStoreUnavailable | DpopError::TokenValidationUnavailable => {
                (TemporarilyUnavailable, 503)
            }
        }
    }

    fn every_variant() -> Vec<DpopError> {
        vec![
            DpopError::MissingProof,
            DpopError::MultipleProofs,
            DpopError::ProofTooLarge { limit: 1 },
            DpopError::MalformedProof("header"),
            DpopError::DuplicateMember("claims"),
            DpopError::TooManyMembers("claims"),
            DpopError::MissingMember("jti"),
            DpopError::InvalidMember("iat"),
            DpopError::WrongType,
            DpopError::UnsupportedAlgorithm,
            DpopError::AlgorithmNotAllowed(Algorithm::RS256),
            DpopError::CriticalHeader,
            DpopError::ExternalKeyReference,
            DpopError::PrivateKey,
            DpopError::InvalidKey("bad point"),
            DpopError::KeyAlgorithmMismatch,
            DpopError::InvalidSignature,
            DpopError::JtiTooLong { limit: 1 },
            DpopError::MethodMismatch,
            DpopError::UriMismatch,
            DpopError::InvalidUri,
            DpopError::UseDpopNonce(NonceRejection::Missing),
            DpopError::IssuedTooLongAgo,
            DpopError::IssuedInFuture,
            DpopError::MissingAccessTokenHash,
            DpopError::AccessTokenHashMismatch,
            DpopError::Replayed,
            DpopError::ReplayStoreFull,
            DpopError::ReplayQuotaExceeded,
            DpopError::ReplayStoreUnavailable,
            DpopError::KeyBindingMismatch,
            DpopError::TokenNotBound,
            DpopError::BoundTokenAsBearer,
            DpopError::InvalidTargetUri,
            DpopError::AmbiguousForwarding,
            DpopError::MultipleAuthorization,
            DpopError::MalformedAuthorization,
            DpopError::BearerNotAccepted,
            DpopError::InvalidAccessToken(InvalidToken::Expired),
            DpopError::TokenValidationUnavailable,
            DpopError::InsufficientScope,
        ]
    }

    #[test]
    fn an_invalid_access_token_is_described_by_its_reason() {
        let error = DpopError::InvalidAccessToken(InvalidToken::Expired);
        assert_eq!(error.description(), "Invalid access token: token expired");
        let error = DpopError::InvalidAccessToken(InvalidToken::Other("unknown token"));
        assert_eq!(error.to_string(), "invalid_token: Invalid access token: unknown token");
    }

    #[test]
    fn every_variant_has_the_code_and_status_of_the_readme_response_table() {
        use ErrorCode::TemporarilyUnavailable;
        let variants = every_variant();
        assert_eq!(variants.len(), 41, "every variant is listed once");
        for error in &variants {
            let (code, status) = expected(error);
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.status(), status, "{error:?}");
            assert!(!error.description().is_empty(), "{error:?}");
            // "Not now" carries Retry-After; "no" never does.
            let expected_retry = (code == TemporarilyUnavailable).then_some(1);
            assert_eq!(error.retry_after(), expected_retry, "{error:?}");
        }
    }
}
