//! Claim checks shared by the JWT and introspection validators, and the rejection helpers
//! that log every refusal (the reason, never the token).

use dpop_core::json;
use dpop_core::{InvalidToken, TokenError};
use serde_json::{Map, Value};

/// Refuses the token for `reason`, with a tracing event.
pub(crate) fn reject(reason: InvalidToken) -> TokenError {
    tracing::debug!(reason = reason.as_str(), "access token rejected");
    TokenError::Invalid(reason)
}

/// A NumericDate (RFC 7519 §2) member, by dpop-core's one rule for every NumericDate (proof
/// `iat` included): absent is `None`; anything but a number of seconds from 0 to 2^53 − 1 is
/// `invalid`. Fractions are truncated.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    invalid: InvalidToken,
) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => json::numeric_date(value).map(Some).ok_or_else(|| reject(invalid)),
    }
}

/// The time rules of RFC 7519 §4.1.4–4.1.6 with `leeway` seconds of clock skew allowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetime {
    pub(crate) now: u64,
    pub(crate) leeway: u64,
}

impl Lifetime {
    /// `exp`: the token is refused once `now` reaches `exp + leeway`. Returns `exp`.
    pub(crate) fn check_exp(self, claims: &Map<String, Value>, required: bool) -> Result<Option<u64>, TokenError> {
        let exp = numeric_date(claims, "exp", InvalidToken::InvalidExpiry)?;
        match exp {
            None if required => Err(reject(InvalidToken::MissingExpiry)),
            Some(exp) if self.now >= exp.saturating_add(self.leeway) => Err(reject(InvalidToken::Expired)),
            _ => Ok(exp),
        }
    }

    /// `nbf`, if present, must not be after `now + leeway`.
    pub(crate) fn check_nbf(self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        match numeric_date(claims, "nbf", InvalidToken::InvalidNotBefore)? {
            Some(nbf) if nbf > self.now.saturating_add(self.leeway) => Err(reject(InvalidToken::NotYetValid)),
            _ => Ok(()),
        }
    }

    /// `iat`, if present, must not be after `now + leeway`.
    pub(crate) fn check_iat(self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        match numeric_date(claims, "iat", InvalidToken::InvalidIssuedAt)? {
            Some(iat) if iat > self.now.saturating_add(self.leeway) => Err(reject(InvalidToken::IssuedInFuture)),
            _ => Ok(()),
        }
    }
}

/// `iss` must be exactly `issuer` (RFC 9068 §4 step 3: simple string comparison).
pub(crate) fn check_issuer(claims: &Map<String, Value>, issuer: &str) -> Result<(), TokenError> {
    match claims.get("iss") {
        None => Err(reject(InvalidToken::MissingIssuer)),
        Some(Value::String(iss)) if iss == issuer => Ok(()),
        Some(Value::String(_)) => Err(reject(InvalidToken::WrongIssuer)),
        Some(_) => Err(reject(InvalidToken::InvalidIssuer)),
    }
}

/// `aud` (a string or an array of strings) must contain `audience` (RFC 9068 §4 step 4,
/// RFC 8707: the resource's canonical URI), compared exactly.
pub(crate) fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), TokenError> {
    match claims.get("aud") {
        None => Err(reject(InvalidToken::MissingAudience)),
        Some(Value::String(aud)) if aud == audience => Ok(()),
        Some(Value::String(_)) => Err(reject(InvalidToken::WrongAudience)),
        Some(Value::Array(auds)) => {
            let mut found = false;
            for aud in auds {
                match aud {
                    Value::String(aud) => found |= aud == audience,
                    _ => return Err(reject(InvalidToken::InvalidAudience)),
                }
            }
            if found { Ok(()) } else { Err(reject(InvalidToken::WrongAudience)) }
        }
        Some(_) => Err(reject(InvalidToken::InvalidAudience)),
    }
}

/// The confirmation claim (RFC 7800, RFC 9449 §6): if present it must be an object whose
/// `jkt` is a string. A `cnf` without `jkt` binds the token to something this library cannot
/// check (an mTLS certificate, RFC 8705), so it is refused rather than taken for a Bearer token.
/// Returns the `jkt`.
pub(crate) fn check_cnf(claims: &Map<String, Value>) -> Result<Option<&str>, TokenError> {
    match claims.get("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt)),
            Some(_) => Err(reject(InvalidToken::InvalidConfirmation)),
            None => Err(reject(InvalidToken::UnsupportedConfirmation)),
        },
        Some(_) => Err(reject(InvalidToken::InvalidConfirmation)),
    }
}

/// Claims that [`TokenClaims::from_json`](dpop_core::TokenClaims::from_json) would silently
/// drop when mistyped: `sub`, `client_id` and `scope`, if present, must be strings.
pub(crate) fn check_types(claims: &Map<String, Value>) -> Result<(), TokenError> {
    for (name, reason) in [
        ("sub", InvalidToken::InvalidSubject),
        ("client_id", InvalidToken::InvalidClientId),
        ("scope", InvalidToken::InvalidScope),
    ] {
        if claims.get(name).is_some_and(|value| !value.is_string()) {
            return Err(reject(reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn reason<T: fmt::Debug>(result: Result<T, TokenError>) -> InvalidToken {
        match result {
            Err(TokenError::Invalid(why)) => why,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn numeric_dates() {
        let claims = map(json!({"a": 5, "b": 5.9, "c": -1, "d": "5", "e": 1e300}));
        assert_eq!(numeric_date(&claims, "a", InvalidToken::Other("x")).unwrap(), Some(5));
        assert_eq!(numeric_date(&claims, "b", InvalidToken::Other("x")).unwrap(), Some(5));
        assert_eq!(numeric_date(&claims, "z", InvalidToken::Other("x")).unwrap(), None);
        for name in ["c", "d", "e"] {
            assert_eq!(reason(numeric_date(&claims, name, InvalidToken::Other("x"))), InvalidToken::Other("x"));
        }
    }

    #[test]
    fn lifetime_edges() {
        let life = Lifetime { now: 1000, leeway: 60 };
        assert_eq!(life.check_exp(&map(json!({"exp": 941})), true).unwrap(), Some(941));
        assert_eq!(reason(life.check_exp(&map(json!({"exp": 940})), true)), InvalidToken::Expired);
        assert_eq!(reason(life.check_exp(&map(json!({})), true)), InvalidToken::MissingExpiry);
        assert_eq!(life.check_exp(&map(json!({})), false).unwrap(), None);
        assert!(life.check_nbf(&map(json!({"nbf": 1060}))).is_ok());
        assert_eq!(reason(life.check_nbf(&map(json!({"nbf": 1061})))), InvalidToken::NotYetValid);
        assert!(life.check_iat(&map(json!({"iat": 1060}))).is_ok());
        assert_eq!(reason(life.check_iat(&map(json!({"iat": 1061})))), InvalidToken::IssuedInFuture);
    }

    #[test]
    fn audience_and_cnf() {
        assert!(check_audience(&map(json!({"aud": ["x", "a"]})), "a").is_ok());
        assert_eq!(reason(check_audience(&map(json!({"aud": ["x", 1, "a"]})), "a")), InvalidToken::InvalidAudience);
        assert_eq!(reason(check_audience(&map(json!({"aud": []})), "a")), InvalidToken::WrongAudience);
        assert_eq!(reason(check_cnf(&map(json!({"cnf": {"jkt": 1}})))), InvalidToken::InvalidConfirmation);
        assert_eq!(reason(check_cnf(&map(json!({"cnf": {"x5t#S256": "abc"}})))), InvalidToken::UnsupportedConfirmation);
        assert_eq!(reason(check_cnf(&map(json!({"cnf": "abc"})))), InvalidToken::InvalidConfirmation);
        assert_eq!(check_cnf(&map(json!({"cnf": {"jkt": "abc"}}))).unwrap(), Some("abc"));
    }
}
