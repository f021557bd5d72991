//! Comparing `htu` with the request's target URI (RFC 9449 §4.3 check 9).
//!
//! Both sides are normalized by RFC 3986 §6.2.2 (case, percent-encoding, dot segments) and
//! §6.2.3 (default port, empty path as `/`); query and fragment are ignored. `fluent-uri` does
//! the syntax-based work; this module adds the empty-path rule and the http(s)-only policy.

use fluent_uri::Uri;

/// Normalizes an absolute `http`/`https` URI for comparison, without query and fragment.
///
/// Returns `None` for anything that is not such a URI, or that carries userinfo (RFC 9110
/// §4.2.4 forbids it in http(s) URIs; a proof naming one cannot match a real request).
#[must_use]
pub fn normalize_htu(uri: &str) -> Option<String> {
    let parsed = Uri::parse(without_query(uri)).ok()?;
    let scheme = parsed.scheme().as_str();
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = parsed.authority()?;
    if authority.userinfo().is_some() || authority.host().is_empty() {
        return None;
    }
    let normalized = parsed.normalize();
    let empty_path = normalized.path().as_str().is_empty();
    let mut text = normalized.into_string();
    // RFC 3986 §6.2.3: an empty path with an authority is equivalent to "/".
    if empty_path {
        text.push('/');
    }
    Some(text)
}

/// The path of a request target (`/a/%62/../c?q`) normalized as `htu` comparison normalizes it
/// (`/a/c`): what routers match on after decoding, so a policy keyed on paths sees what the
/// router sees. `None` when the path is not a valid absolute path.
pub(crate) fn normalize_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let uri = normalize_htu(&format!("http://h{path}"))?;
    uri.get("http://h".len()..).map(str::to_owned)
}

/// `uri` without its query and fragment: in RFC 3986 syntax the path ends at the first `?` or
/// `#`, and neither may occur before it.
pub(crate) fn without_query(uri: &str) -> &str {
    uri.find(['?', '#']).and_then(|end| uri.get(..end)).unwrap_or(uri)
}

/// Whether `htu` and `target` name the same resource under RFC 3986 normalization.
#[must_use]
pub fn htu_matches(htu: &str, target: &str) -> bool {
    match (normalize_htu(htu), normalize_htu(target)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}
