//! Reading what servers say: `WWW-Authenticate` challenges (RFC 9110 §11.6.1, RFC 9449 §7.1)
//! and OAuth JSON error bodies (RFC 6749 §5.2, RFC 9449 §5 and §8).

use http::HeaderMap;
use serde_json::Value;

/// One parameter of one challenge: scheme (lowercase), name (lowercase), value (unquoted).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Param {
    pub(crate) scheme: String,
    pub(crate) name: String,
    pub(crate) value: String,
}

/// Every auth-param of every challenge in every `WWW-Authenticate` field of `headers`.
pub(crate) fn challenge_params(headers: &HeaderMap) -> Vec<Param> {
    let mut params = Vec::new();
    for value in headers.get_all(http::header::WWW_AUTHENTICATE) {
        if let Ok(text) = value.to_str() {
            parse_into(text, &mut params);
        }
    }
    params
}

/// The value of `name` in the challenge of `scheme` (case-insensitive), if any.
pub(crate) fn param<'p>(params: &'p [Param], scheme: &str, name: &str) -> Option<&'p str> {
    params.iter().find(|p| p.scheme.eq_ignore_ascii_case(scheme) && p.name == name).map(|p| p.value.as_str())
}

/// The value of `name` in any challenge (`resource_metadata` may come with Bearer or DPoP).
#[cfg(any(feature = "oauth", test))]
pub(crate) fn any_param<'p>(params: &'p [Param], name: &str) -> Option<&'p str> {
    params.iter().find(|p| p.name == name).map(|p| p.value.as_str())
}

/// `error` and `error_description` of an OAuth JSON error body, if it is one.
pub(crate) fn json_error(body: &[u8]) -> Option<(String, Option<String>)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?.as_str()?.to_owned();
    let description = value.get("error_description").and_then(Value::as_str).map(str::to_owned);
    Some((error, description))
}

const fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(byte, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.')
        || matches!(byte, b'^' | b'_' | b'`' | b'|' | b'~')
}

/// A forgiving reader of `#challenge` (RFC 9110 §11.6.1): a token followed by `=` is a
/// parameter of the current challenge, any other token starts a new challenge. Malformed text
/// ends the reading; what was read so far stays.
fn parse_into(text: &str, out: &mut Vec<Param>) {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut scheme = String::new();
    loop {
        while bytes.get(at).is_some_and(|b| matches!(b, b' ' | b'\t' | b',')) {
            at += 1;
        }
        let start = at;
        while bytes.get(at).is_some_and(|&b| is_tchar(b)) {
            at += 1;
        }
        let Some(token) = text.get(start..at).filter(|t| !t.is_empty()) else { return };
        let mut after = at;
        while bytes.get(after).is_some_and(|b| matches!(b, b' ' | b'\t')) {
            after += 1;
        }
        if bytes.get(after) != Some(&b'=') {
            scheme = token.to_ascii_lowercase();
            // A token68 (Basic's credentials in a challenge are rare) is skipped as one token.
            continue;
        }
        at = after + 1;
        while bytes.get(at).is_some_and(|b| matches!(b, b' ' | b'\t')) {
            at += 1;
        }
        let value = if bytes.get(at) == Some(&b'"') {
            at += 1;
            let mut value = String::new();
            loop {
                match bytes.get(at) {
                    None => return,
                    Some(b'"') => {
                        at += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(escaped) = text.get(at + 1..).and_then(|rest| rest.chars().next()) else { return };
                        value.push(escaped);
                        at += 1 + escaped.len_utf8();
                    }
                    Some(_) => {
                        let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) else { return };
                        value.push(c);
                        at += c.len_utf8();
                    }
                }
            }
            value
        } else {
            let start = at;
            while bytes.get(at).is_some_and(|&b| is_tchar(b) || b == b'/' || b == b'=') {
                at += 1;
            }
            text.get(start..at).unwrap_or_default().to_owned()
        };
        out.push(Param { scheme: scheme.clone(), name: token.to_ascii_lowercase(), value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Param> {
        let mut params = Vec::new();
        parse_into(text, &mut params);
        params
    }

    #[test]
    fn reads_the_dpop_error_after_a_bearer_challenge() {
        let params = parse(
            r#"Bearer realm="x", DPoP algs="ES256 PS256", error="use_dpop_nonce", error_description="Resource server requires \"nonce\" in DPoP proof""#,
        );
        assert_eq!(param(&params, "dpop", "error"), Some("use_dpop_nonce"));
        assert_eq!(
            param(&params, "DPoP", "error_description"),
            Some(r#"Resource server requires "nonce" in DPoP proof"#)
        );
        assert_eq!(param(&params, "bearer", "error"), None);
        assert_eq!(param(&params, "bearer", "realm"), Some("x"));
    }

    #[test]
    fn reads_token_values_and_stops_at_malformed_text() {
        let params = parse(r#"DPoP error=invalid_token, resource_metadata="http://a/b", x="unterminated"#);
        assert_eq!(param(&params, "dpop", "error"), Some("invalid_token"));
        assert_eq!(any_param(&params, "resource_metadata"), Some("http://a/b"));
        assert_eq!(any_param(&params, "x"), None);
    }

    #[test]
    fn json_errors_need_an_error_member() {
        assert_eq!(json_error(br#"{"error":"use_dpop_nonce"}"#), Some(("use_dpop_nonce".into(), None)));
        assert_eq!(json_error(br#"{"access_token":"x"}"#), None);
        assert_eq!(json_error(b"not json"), None);
    }
}
