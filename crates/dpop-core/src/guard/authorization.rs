//! The `Authorization` request header: which scheme, which token (RFC 9110 §11.6.2,
//! RFC 6750 §2.1, RFC 9449 §7.1).

use crate::error::DpopError;
use crate::headers::HeaderValues;

/// The credentials a request presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No `Authorization` field.
    Absent,
    /// `Authorization: DPoP <token>`.
    Dpop(&'a str),
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// Another scheme (`Basic`, …): not ours, treated like no credentials.
    OtherScheme,
}

/// Reads the `Authorization` field values.
///
/// The scheme name is case-insensitive (RFC 9110 §11.1); it is followed by one or more spaces
/// and a token68. Two fields, or a value that is not `scheme 1*SP token68` (a comma list of two
/// credentials, for example), are `invalid_request` (RFC 6750 §3.1, RFC 9449 Figure 19).
///
/// # Errors
///
/// [`DpopError::MultipleAuthorization`] or [`DpopError::MalformedAuthorization`].
pub fn parse_authorization(values: HeaderValues<'_>) -> Result<Credentials<'_>, DpopError> {
    if values.count() > 1 {
        return Err(DpopError::MultipleAuthorization);
    }
    let Some(value) = values.single() else {
        return Ok(Credentials::Absent);
    };
    let value = std::str::from_utf8(value).map_err(|_| DpopError::MalformedAuthorization)?;
    let (scheme, rest) = value.split_once(' ').ok_or(DpopError::MalformedAuthorization)?;
    if scheme.is_empty() || !scheme.bytes().all(is_tchar) {
        return Err(DpopError::MalformedAuthorization);
    }
    let token = rest.trim_start_matches(' ');
    if scheme.eq_ignore_ascii_case("DPoP") {
        Ok(Credentials::Dpop(token68(token)?))
    } else if scheme.eq_ignore_ascii_case("Bearer") {
        Ok(Credentials::Bearer(token68(token)?))
    } else {
        Ok(Credentials::OtherScheme)
    }
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 9110 §11.2).
fn token68(token: &str) -> Result<&str, DpopError> {
    let body = token.trim_end_matches('=');
    // A table lookup per byte: every request's token (hundreds of bytes) passes here.
    let valid = !body.is_empty() && body.bytes().all(|b| TOKEN68_BODY.get(usize::from(b)) == Some(&true));
    if valid { Ok(token) } else { Err(DpopError::MalformedAuthorization) }
}

/// The bytes of a token68 before its `=` padding.
#[expect(clippy::indexing_slicing, reason = "evaluated at compile time: a bad index fails the build")]
static TOKEN68_BODY: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// `tchar` (RFC 9110 §5.6.2).
const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}
