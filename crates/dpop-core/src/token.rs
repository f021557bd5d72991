//! Binding a proof to an access token: `ath` (RFC 9449 §4.2, §4.3 check 12) and `cnf.jkt`
//! (RFC 9449 §6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::crypto;
use crate::error::DpopError;
use crate::jwk::Thumbprint;

/// `base64url(SHA-256(ASCII(access_token)))`: the `ath` value for `access_token`.
#[must_use]
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(crypto::sha256(access_token.as_bytes()))
}

/// RFC 9449 §4.3 check 12: `ath` is present and equals the hash of the token (constant time).
pub(crate) fn check_access_token_hash(ath: Option<&str>, access_token: &str) -> Result<(), DpopError> {
    let ath = ath.ok_or(DpopError::MissingAccessTokenHash)?;
    // Compare digests rather than encodings: base64url without padding is canonical here
    // (43 characters, strict decoding), so equal digests mean equal `ath` text.
    let mut claimed = [0u8; 32];
    let decoded = ath.len() == 43 && matches!(URL_SAFE_NO_PAD.decode_slice(ath, &mut claimed), Ok(32));
    let expected = crypto::sha256(access_token.as_bytes());
    if decoded & bool::from(expected.ct_eq(&claimed)) { Ok(()) } else { Err(DpopError::AccessTokenHashMismatch) }
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
