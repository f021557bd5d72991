//! Binding an access token to a proof: the `ath` value a client puts in a proof (RFC 9449 §4.2;
//! the server's check is §4.3 check 12 in `proof::checks`) and the token's `cnf.jkt` that must
//! name the proof's key (RFC 9449 §6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto;
use crate::error::DpopError;
use crate::proof::jwk::Thumbprint;

/// `base64url(SHA-256(ASCII(access_token)))`: the `ath` value for `access_token`.
#[must_use]
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(crypto::sha256(access_token.as_bytes()))
}

/// RFC 9449 §6 / §7.1: the token's confirmation `cnf.jkt` must name the proof's key.
///
/// `cnf_jkt` is `None` when the token is not bound; presented with the DPoP scheme, such a token
/// is refused ([`DpopError::TokenNotBound`]). A different key is
/// [`DpopError::KeyBindingMismatch`] (Figure 16). The comparison is constant time.
///
/// # Errors
///
/// As above.
pub fn check_key_binding(cnf_jkt: Option<&str>, proof_key: &Thumbprint) -> Result<(), DpopError> {
    let jkt = cnf_jkt.ok_or(DpopError::TokenNotBound)?;
    if proof_key.matches_jkt(jkt) { Ok(()) } else { Err(DpopError::KeyBindingMismatch) }
}
