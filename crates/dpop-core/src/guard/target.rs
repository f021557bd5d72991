//! The request's target URI, which `htu` must match (RFC 9449 §4.3 check 9, RFC 9110 §7.1).
//!
//! Behind a proxy the server does not see the URI the client used, and `Host` is whatever the
//! client sent. The safe setting is a configured public origin; the request's own authority is
//! the fallback, and forwarding headers count only when the deployment says its proxy sets them.

use crate::error::DpopError;
use crate::headers::{HeaderValues, names};

/// The parts of the request URI an HTTP framework knows.
#[derive(Clone, Copy, Debug)]
pub struct RequestUri<'a> {
    /// `http` or `https` when the request URI is absolute (HTTP/2, absolute-form).
    pub scheme: Option<&'a str>,
    /// The authority when the request URI is absolute.
    pub authority: Option<&'a str>,
    /// The path (and query; it is ignored) as the client sent it: for nested routers, the
    /// original path before any prefix was stripped.
    pub path: &'a str,
}

/// Where the target URI's scheme and authority come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A configured public origin, e.g. `https://mcp.example.com` (optionally with a base path).
    Public(String),
    /// The request itself: URI authority, else `Host`; forwarding headers only when trusted.
    FromRequest {
        /// Honour `Forwarded` / `X-Forwarded-Proto` / `X-Forwarded-Host`.
        trust_forwarded: bool,
    },
}

impl Origin {
    /// Checks a configured public origin: an absolute http(s) URI with no query or fragment.
    pub(crate) fn public(origin: &str) -> Option<Self> {
        crate::proof::htu::normalize_htu(origin)?;
        if origin.contains(['?', '#']) {
            return None;
        }
        Some(Self::Public(origin.trim_end_matches('/').to_owned()))
    }

    /// The absolute target URI of a request.
    pub(crate) fn target_uri<'h>(
        &self,
        uri: &RequestUri<'_>,
        headers: impl Fn(&'static str) -> HeaderValues<'h>,
    ) -> Result<String, DpopError> {
        if !uri.path.starts_with('/') {
            return Err(DpopError::InvalidTargetUri);
        }
        let (scheme, authority) = match self {
            // `concat` makes one allocation of the exact size; cheaper than `format!` per request.
            Self::Public(base) => return Ok([base.as_str(), uri.path].concat()),
            Self::FromRequest { trust_forwarded: true } => forwarded_origin(&headers)?,
            Self::FromRequest { trust_forwarded: false } => (None, None),
        };
        let scheme = scheme.or(uri.scheme).unwrap_or("http");
        let authority = match authority.or(uri.authority) {
            Some(authority) => authority,
            None => {
                header_text(headers(names::HOST), &DpopError::InvalidTargetUri)?.ok_or(DpopError::InvalidTargetUri)?
            }
        };
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) || !is_authority(authority) {
            return Err(DpopError::InvalidTargetUri);
        }
        Ok([scheme, "://", authority, uri.path].concat())
    }
}

/// Scheme and host from trusted forwarding headers: `Forwarded` (RFC 7239) or
/// `X-Forwarded-Proto` / `X-Forwarded-Host`, never both. Each must be one field with one
/// element and each parameter once: a second source, a list or a repeat means another party
/// (the client, a second proxy) added to what the trusted proxy set, and which is trustworthy
/// depends on the deployment — so it is refused, never guessed.
fn forwarded_origin<'h>(
    headers: &impl Fn(&'static str) -> HeaderValues<'h>,
) -> Result<(Option<&'h str>, Option<&'h str>), DpopError> {
    let ambiguous = DpopError::AmbiguousForwarding;
    let forwarded = header_text(headers(names::FORWARDED), &ambiguous)?;
    let proto = header_text(headers(names::X_FORWARDED_PROTO), &ambiguous)?;
    let host = header_text(headers(names::X_FORWARDED_HOST), &ambiguous)?;
    let Some(forwarded) = forwarded else {
        return Ok((proto, host));
    };
    if proto.is_some() || host.is_some() {
        return Err(ambiguous);
    }
    let (mut proto, mut host) = (None, None);
    for pair in forwarded.split(';') {
        let (name, value) = pair.trim().split_once('=').ok_or(DpopError::InvalidTargetUri)?;
        let value = value.trim_matches('"');
        let slot = if name.eq_ignore_ascii_case("proto") {
            &mut proto
        } else if name.eq_ignore_ascii_case("host") {
            &mut host
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(ambiguous);
        }
    }
    Ok((proto, host))
}

/// The value of a field that may occur at most once, with one element; `error` otherwise.
fn header_text<'h>(values: HeaderValues<'h>, error: &DpopError) -> Result<Option<&'h str>, DpopError> {
    if values.count() > 1 {
        return Err(error.clone());
    }
    let Some(value) = values.single() else {
        return Ok(None);
    };
    let text = std::str::from_utf8(value).map_err(|_| DpopError::InvalidTargetUri)?.trim();
    if text.is_empty() {
        return Err(DpopError::InvalidTargetUri);
    }
    if text.contains(',') {
        return Err(error.clone());
    }
    Ok(Some(text))
}

/// `host [ ":" port ]` with only the characters a registered name, IP literal and port use:
/// nothing that could end the authority (`/ ? # @`) or smuggle in whitespace.
fn is_authority(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':' | b'[' | b']' | b'%'))
}
