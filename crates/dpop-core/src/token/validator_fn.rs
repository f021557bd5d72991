//! [`validator_fn`]: a [`TokenValidator`] from a synchronous function, for tokens an application
//! already knows how to check (its own JWT library, a session table, tests).

use std::fmt;
use std::future::ready;
use std::sync::Arc;

use crate::token::{TokenClaims, TokenError, TokenFuture, TokenValidator};

/// A validator that calls `check(token)`: `Ok(claims)` for a valid token (with `cnf.jkt` for a
/// DPoP-bound one), [`TokenError::Invalid`] or [`TokenError::Unavailable`] otherwise. A reason
/// of the application's own is [`InvalidToken::Other`](crate::InvalidToken::Other), a fixed text the client will read.
///
/// ```
/// use dpop_core::{DpopGuard, InvalidToken, TokenClaims, TokenError, validator_fn};
///
/// let guard = DpopGuard::new(validator_fn(|token: &str| match token {
///     "known-token" => {
///         let mut claims = TokenClaims::default();
///         claims.cnf_jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned());
///         Ok(claims)
///     }
///     _ => Err(TokenError::Invalid(InvalidToken::Other("unknown token"))),
/// }));
/// # let _ = guard;
/// ```
pub fn validator_fn<F>(check: F) -> ValidatorFn<F>
where
    F: Fn(&str) -> Result<TokenClaims, TokenError> + Send + Sync + 'static,
{
    ValidatorFn(check)
}

/// The [`TokenValidator`] [`validator_fn`] makes.
#[derive(Clone)]
pub struct ValidatorFn<F>(F);

impl<F> TokenValidator for ValidatorFn<F>
where
    F: Fn(&str) -> Result<TokenClaims, TokenError> + Send + Sync + 'static,
{
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        Box::pin(ready((self.0)(token).map(Arc::new)))
    }
}

impl<F> fmt::Debug for ValidatorFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorFn").finish_non_exhaustive()
    }
}
