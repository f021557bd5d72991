//! One resource, several authorization servers: a JWT validator per issuer, picked by `iss`.

use std::fmt;
use std::sync::Arc;

use dpop_core::TokenFuture;
use dpop_core::{InvalidToken, TokenClaims, TokenError, TokenValidator};

use crate::ConfigError;
use crate::claims::reject;
use crate::jwt::{JwtValidator, unverified_issuer};

/// Validates JWT access tokens from several issuers, each with its own [`JwtValidator`] (its
/// keys, algorithms, audience, leeway).
///
/// The token's `iss` is read, unverified, only to pick the validator configured for exactly
/// that issuer; the picked validator then checks everything, `iss` included, as it would alone.
/// A token whose `iss` names no configured issuer is refused (`unknown issuer`), as is one
/// without a string `iss`. Tokens cannot pick a validator by any other means, so a key of one
/// issuer never verifies a token claiming another.
///
/// ```
/// use dpop_token::{JwkSet, JwtValidator, MultiIssuerValidator};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let jwks = |kid: &str| -> Result<JwkSet, Box<dyn std::error::Error>> {
/// #     let mut jwk = dpop_core::DpopKey::generate()?.public_jwk();
/// #     jwk["kid"] = kid.into();
/// #     Ok(JwkSet::from_json(&serde_json::json!({ "keys": [jwk] }).to_string())?)
/// # };
/// let audience = "https://mcp.example.com/mcp";
/// let validator = MultiIssuerValidator::new([
///     // With the `fetch` feature: JwtValidator::from_issuer("https://login.example.com", audience)?
///     JwtValidator::builder("https://login.example.com", audience).keys(jwks("a")?).build()?,
///     JwtValidator::builder("https://partner.example.org", audience).keys(jwks("b")?).build()?,
/// ])?;
/// assert_eq!(validator.issuers().count(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MultiIssuerValidator {
    validators: Arc<[JwtValidator]>,
}

impl MultiIssuerValidator {
    /// One validator per issuer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoValidators`] for an empty list, [`ConfigError::DuplicateIssuer`] when
    /// two validators are for the same issuer (which one should decide?).
    pub fn new(validators: impl IntoIterator<Item = JwtValidator>) -> Result<Self, ConfigError> {
        let validators: Vec<JwtValidator> = validators.into_iter().collect();
        if validators.is_empty() {
            return Err(ConfigError::NoValidators);
        }
        for (index, validator) in validators.iter().enumerate() {
            let earlier = validators.get(..index).unwrap_or_default();
            if earlier.iter().any(|other| other.issuer() == validator.issuer()) {
                return Err(ConfigError::DuplicateIssuer(validator.issuer().to_owned()));
            }
        }
        Ok(Self { validators: validators.into() })
    }

    /// The configured issuers, in the order given.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.validators.iter().map(JwtValidator::issuer)
    }

    async fn validate_token(&self, token: &str) -> Result<Arc<TokenClaims>, TokenError> {
        let issuer = unverified_issuer(token)?;
        match self.validators.iter().find(|validator| validator.issuer() == issuer) {
            Some(validator) => validator.validate(token).await,
            None => Err(reject(InvalidToken::UnknownIssuer)),
        }
    }
}

impl TokenValidator for MultiIssuerValidator {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        Box::pin(self.validate_token(token))
    }
}

impl fmt::Debug for MultiIssuerValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiIssuerValidator").field("validators", &self.validators).finish()
    }
}
