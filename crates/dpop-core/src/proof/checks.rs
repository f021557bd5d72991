//! The checks of RFC 9449 §4.3, one function each, named after what it checks, with its
//! section number. [`DpopVerifier`](super::DpopVerifier) runs them cheapest first;
//! [`inspect`](super::inspect) runs the same functions to explain a proof.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::crypto::PreparedKey;
use crate::error::DpopError;
use crate::nonce::{AcceptedNonce, NonceIssuer, NonceRejection};
use crate::proof::algorithm::{Algorithm, AlgorithmSet};
use crate::proof::htu;
use crate::proof::jwk::ValidatedJwk;
use crate::proof::jws::{ProofClaims, ProofHeader};
use crate::token::AccessToken;

/// RFC 9449 §4.3 check 1: exactly one `DPoP` HTTP request header field.
pub(crate) fn single_proof<'v, I: IntoIterator<Item = &'v [u8]>>(values: I) -> Result<&'v [u8], DpopError> {
    let mut values = values.into_iter();
    let first = values.next().ok_or(DpopError::MissingProof)?;
    if values.next().is_some() {
        return Err(DpopError::MultipleProofs);
    }
    Ok(first)
}

/// Bounds the work a request can cause: checked before any decoding.
pub(crate) fn check_proof_len(value: &[u8], limit: usize) -> Result<(), DpopError> {
    if value.len() > limit {
        return Err(DpopError::ProofTooLarge { limit });
    }
    Ok(())
}

/// RFC 9449 §4.3 check 4: `typ` is `dpop+jwt`.
pub(crate) fn check_type(header: &ProofHeader<'_>) -> Result<(), DpopError> {
    match header.typ.as_deref() {
        Some("dpop+jwt") => Ok(()),
        Some(_) => Err(DpopError::WrongType),
        None => Err(DpopError::MissingMember("typ")),
    }
}

/// RFC 9449 §4.3 check 5: `alg` is an asymmetric algorithm, supported and allowed.
pub(crate) fn check_algorithm(header: &ProofHeader<'_>, allowed: AlgorithmSet) -> Result<Algorithm, DpopError> {
    let name = header.alg.as_deref().ok_or(DpopError::MissingMember("alg"))?;
    let algorithm = Algorithm::from_name(name).ok_or(DpopError::UnsupportedAlgorithm)?;
    if !allowed.contains(algorithm) {
        return Err(DpopError::AlgorithmNotAllowed(algorithm));
    }
    Ok(algorithm)
}

/// RFC 7515 §4.1.11: no extension is understood, so any `crit` makes the JWS invalid.
pub(crate) fn check_no_critical_extensions(header: &ProofHeader<'_>) -> Result<(), DpopError> {
    if header.has_crit {
        return Err(DpopError::CriticalHeader);
    }
    Ok(())
}

/// RFC 9449 §4.3 check 7 (and §4.2 `jwk`): the key is in `jwk`, public, valid, and fits `alg`.
pub(crate) fn check_public_key(header: &ProofHeader<'_>, algorithm: Algorithm) -> Result<ValidatedJwk, DpopError> {
    if header.has_external_key {
        return Err(DpopError::ExternalKeyReference);
    }
    let jwk = header.jwk.as_ref().ok_or(DpopError::MissingMember("jwk"))?.validate()?;
    if !jwk.key.fits(algorithm) {
        return Err(DpopError::KeyAlgorithmMismatch);
    }
    Ok(jwk)
}

/// The claims every proof must have.
pub(crate) struct RequiredClaims<'c> {
    pub(crate) jti: &'c str,
    pub(crate) htm: &'c str,
    pub(crate) htu: &'c str,
    pub(crate) iat: i64,
}

/// RFC 9449 §4.3 check 3: `jti`, `htm`, `htu` and `iat` are present (types were checked while
/// parsing).
pub(crate) fn check_required_claims<'c>(claims: &'c ProofClaims<'_>) -> Result<RequiredClaims<'c>, DpopError> {
    Ok(RequiredClaims {
        jti: claims.jti.as_deref().ok_or(DpopError::MissingMember("jti"))?,
        htm: claims.htm.as_deref().ok_or(DpopError::MissingMember("htm"))?,
        htu: claims.htu.as_deref().ok_or(DpopError::MissingMember("htu"))?,
        iat: claims.iat.ok_or(DpopError::MissingMember("iat"))?,
    })
}

/// `jti` is non-empty and bounded: it is stored (hashed) per accepted proof.
pub(crate) fn check_jti_len(jti: &str, limit: usize) -> Result<(), DpopError> {
    if jti.is_empty() {
        return Err(DpopError::InvalidMember("jti"));
    }
    if jti.len() > limit {
        return Err(DpopError::JtiTooLong { limit });
    }
    Ok(())
}

/// RFC 9449 §4.3 check 8: `htm` equals the request method, case-sensitively (RFC 9110 §9.1).
pub(crate) fn check_method(htm: &str, method: &str) -> Result<(), DpopError> {
    if htm != method {
        return Err(DpopError::MethodMismatch);
    }
    Ok(())
}

/// RFC 9449 §4.3 check 9: `htu` equals the target URI, ignoring query and fragment, after
/// RFC 3986 §6.2.2 / §6.2.3 normalization.
pub(crate) fn check_uri(htu_claim: &str, target_uri: &str) -> Result<(), DpopError> {
    // Honest clients send exactly the URI the server rebuilt for this request (never from
    // client input alone): text equal to it names this request, no normalization needed.
    if htu::without_query(htu_claim) == htu::without_query(target_uri) {
        return Ok(());
    }
    let claimed = htu::normalize_htu(htu_claim).ok_or(DpopError::InvalidUri)?;
    let target = htu::normalize_htu(target_uri).ok_or(DpopError::InvalidTargetUri)?;
    if claimed != target {
        // Both URIs, to see at once a proxy or origin misconfiguration (Debug escapes the
        // client's text); never the token or the proof.
        tracing::debug!(expected = ?target, received = ?claimed, "DPoP proof htu does not match the target URI");
        return Err(DpopError::UriMismatch);
    }
    Ok(())
}

/// RFC 9449 §4.3 check 12: with an access token, `ath` is present and is the hash of the token
/// (compared in constant time).
pub(crate) fn check_access_token_hash(
    claims: &ProofClaims<'_>,
    access_token: &AccessToken<'_>,
) -> Result<(), DpopError> {
    let ath = claims.ath.as_deref().ok_or(DpopError::MissingAccessTokenHash)?;
    // Compare digests rather than encodings: base64url without padding is canonical here
    // (43 characters, strict decoding), so equal digests mean equal `ath` text.
    let mut claimed = [0u8; 32];
    let decoded = ath.len() == 43 && matches!(URL_SAFE_NO_PAD.decode_slice(ath, &mut claimed), Ok(32));
    let expected = access_token.sha256();
    if decoded & bool::from(expected.ct_eq(&claimed)) { Ok(()) } else { Err(DpopError::AccessTokenHashMismatch) }
}

/// RFC 9449 §4.3 check 6: the signature verifies with the key from `jwk`, made ready for `alg`
/// ([`PreparedKey::new`] refuses a key the backend cannot use for it).
pub(crate) fn check_signature(key: &PreparedKey, signing_input: &[u8], signature: &[u8]) -> Result<(), DpopError> {
    key.verify(signing_input, signature)
}

/// RFC 9449 §4.3 check 10: the proof carries a nonce this server (or a replica sharing its
/// keys) issued, still fresh (§8, §9). Without an issuer no nonce can be valid.
pub(crate) fn check_nonce(issuer: Option<&NonceIssuer>, nonce: Option<&str>) -> Result<AcceptedNonce, DpopError> {
    let issuer = issuer.ok_or(DpopError::UseDpopNonce(NonceRejection::Invalid))?;
    issuer.check(nonce).map_err(DpopError::UseDpopNonce)
}

/// RFC 9449 §4.3 check 11: `iat` within the acceptance window around the server's clock
/// (`now`, seconds since the epoch): at most `max_age` old, at most `max_clock_skew` ahead.
pub(crate) fn check_issued_at(
    iat: i64,
    now: u64,
    max_age: Duration,
    max_clock_skew: Duration,
) -> Result<(), DpopError> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let skew = i64::try_from(max_clock_skew.as_secs()).unwrap_or(i64::MAX);
    let age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    if iat > now.saturating_add(skew) {
        return Err(DpopError::IssuedInFuture);
    }
    if iat < now.saturating_sub(age) {
        return Err(DpopError::IssuedTooLongAgo);
    }
    Ok(())
}
