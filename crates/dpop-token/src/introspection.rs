//! Token introspection (RFC 7662) at the authorization server (feature `fetch`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dpop_core::TokenFuture;
use dpop_core::json::{self, Limits};
use dpop_core::{InvalidToken, TokenClaims, TokenError, TokenValidator, clock::Clock, clock::SystemClock};
use reqwest::Url;
use reqwest::header::HeaderValue;
use serde_json::{Map, Value};

use crate::claims::{self, Lifetime, reject};
use crate::http::{DEFAULT_FETCH_TIMEOUT, HttpClient, endpoint_url, unavailable};
use crate::jwt::{DEFAULT_LEEWAY, MAX_TOKEN_LEN};
use crate::{CachedValidator, ConfigError};

/// Validates access tokens by asking the authorization server's introspection endpoint
/// (RFC 7662), authenticating with HTTP Basic client credentials (RFC 6749 §2.3.1).
///
/// Every call is one HTTP request: wrap the validator in a [`CachedValidator`] (or build it
/// with [`build_cached`](IntrospectionValidatorBuilder::build_cached)) so a client reusing its
/// token is introspected once, not on every request.
///
/// The request is `POST` `token=…&token_type_hint=access_token`, form-encoded. The answer:
///
/// - a status other than 200 (a 401 for wrong client credentials included), a connection
///   failure, a timeout, a body that is not strict JSON or lacks a boolean `active`:
///   [`TokenError::Unavailable`] (503; the token is never accepted);
/// - `"active": false`: [`TokenError::Invalid`];
/// - `cnf`, if present, must be an object with a string `jkt`; a bound token must not say
///   `token_type` other than `DPoP` (RFC 9449 §6.2) and a `DPoP` token must be bound;
/// - `exp` and `nbf`, if present, are NumericDates and are checked with the leeway;
/// - `iss`, if present, must equal the configured [`issuer`](IntrospectionValidatorBuilder::issuer),
///   and `aud`, if present (a string or an array of strings), must contain the configured
///   [`audience`](IntrospectionValidatorBuilder::audience): a token the same authorization
///   server issued for another resource is refused (RFC 8707, RFC 9068 §4, MCP audience
///   validation). RFC 7662 makes both members optional, so by default a response without them
///   is accepted (the authorization server knows which resource asks);
///   [`require_issuer`](IntrospectionValidatorBuilder::require_issuer) and
///   [`require_audience`](IntrospectionValidatorBuilder::require_audience) refuse it instead.
///
/// ```
/// # fn main() -> Result<(), dpop_token::ConfigError> {
/// use dpop_token::IntrospectionValidator;
///
/// let validator = IntrospectionValidator::builder("https://as.example.com/introspect", "mcp-server", "secret")
///     .issuer("https://as.example.com")
///     .audience("https://mcp.example.com/mcp")
///     .require_audience(true) // when the authorization server always sends `aud`
///     .build_cached()?;
/// # Ok(())
/// # }
/// ```
pub struct IntrospectionValidator {
    endpoint: Url,
    authorization: HeaderValue,
    http: HttpClient,
    issuer: String,
    audience: String,
    require_issuer: bool,
    require_audience: bool,
    leeway: u64,
    clock: Arc<dyn Clock>,
}

impl IntrospectionValidator {
    /// Starts a validator that asks `endpoint` (`https`; plain `http` only to a loopback
    /// address), authenticating as `client_id` with `client_secret`.
    ///
    /// [`issuer`](IntrospectionValidatorBuilder::issuer) and
    /// [`audience`](IntrospectionValidatorBuilder::audience) must be given too:
    /// [`build`](IntrospectionValidatorBuilder::build) fails without them.
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> IntrospectionValidatorBuilder {
        IntrospectionValidatorBuilder {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            issuer: None,
            audience: None,
            require_issuer: false,
            require_audience: false,
            leeway: DEFAULT_LEEWAY,
            clock: None,
            timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }

    async fn introspect(&self, token: &str) -> Result<Arc<TokenClaims>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(reject(InvalidToken::TooLarge));
        }
        if token.is_empty() {
            return Err(reject(InvalidToken::Malformed));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let response = self
            .http
            .post_form(&self.endpoint, &self.authorization, body)
            .await
            .map_err(|error| unavailable("token introspection failed", error))?;
        let answer = json::parse_value_object(&response, Limits::TOKEN)
            .map_err(|error| unavailable("bad introspection response", error.reason()))?;
        match answer.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Err(reject(InvalidToken::Inactive)),
            _ => {
                return Err(unavailable("bad introspection response", "no boolean active member"));
            }
        }
        self.check(&answer)?;
        Ok(Arc::new(TokenClaims::from_json(answer)))
    }

    fn check(&self, answer: &Map<String, Value>) -> Result<(), TokenError> {
        let jkt = claims::check_cnf(answer)?;
        match (answer.get("token_type"), jkt) {
            (None, _) => {}
            (Some(Value::String(kind)), Some(_)) if !kind.eq_ignore_ascii_case("DPoP") => {
                return Err(reject(InvalidToken::BoundTokenNotDpop));
            }
            (Some(Value::String(kind)), None) if kind.eq_ignore_ascii_case("DPoP") => {
                return Err(reject(InvalidToken::DpopTokenWithoutJkt));
            }
            (Some(Value::String(_)), _) => {}
            (Some(_), _) => return Err(reject(InvalidToken::InvalidTokenType)),
        }
        let lifetime = Lifetime { now: self.clock.now(), leeway: self.leeway };
        lifetime.check_exp(answer, false)?;
        lifetime.check_nbf(answer)?;
        // Checked whenever present (a wrong value is never ignored); absent only if allowed.
        if self.require_issuer || answer.contains_key("iss") {
            claims::check_issuer(answer, &self.issuer)?;
        }
        if self.require_audience || answer.contains_key("aud") {
            claims::check_audience(answer, &self.audience)?;
        }
        claims::check_types(answer)
    }
}

impl TokenValidator for IntrospectionValidator {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        Box::pin(self.introspect(token))
    }
}

impl fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidator")
            .field("endpoint", &self.endpoint.as_str())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("require_issuer", &self.require_issuer)
            .field("require_audience", &self.require_audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// Configures an [`IntrospectionValidator`]; made by [`IntrospectionValidator::builder`].
#[must_use]
pub struct IntrospectionValidatorBuilder {
    endpoint: String,
    client_id: String,
    client_secret: String,
    issuer: Option<String>,
    audience: Option<String>,
    require_issuer: bool,
    require_audience: bool,
    leeway: Duration,
    clock: Option<Arc<dyn Clock>>,
    timeout: Duration,
}

impl IntrospectionValidatorBuilder {
    /// The authorization server's issuer identifier (required): a response's `iss`, when
    /// present, must be exactly this (RFC 9068 §4 step 3: simple string comparison).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// This resource's canonical URI (required; RFC 8707, MCP): a response's `aud`, when
    /// present (a string or an array of strings), must contain exactly this value, so that a
    /// token issued for another resource is refused.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Whether a response without `iss` is refused (`missing iss`). Default `false`: RFC 7662
    /// makes `iss` optional. A present `iss` is checked either way.
    pub const fn require_issuer(mut self, require: bool) -> Self {
        self.require_issuer = require;
        self
    }

    /// Whether a response without `aud` is refused (`missing aud`). Default `false`: RFC 7662
    /// makes `aud` optional and the authorization server knows which resource asks. Turn it
    /// on when your authorization server always names the audience. A present `aud` is checked
    /// either way.
    pub const fn require_audience(mut self, require: bool) -> Self {
        self.require_audience = require;
        self
    }

    /// The clock skew allowed on `exp` and `nbf`, in whole seconds. Default 60 s.
    pub const fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The time limit for one introspection request, connection included. Default 5 s.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the validator.
    ///
    /// # Errors
    ///
    /// No or an empty [`issuer`](Self::issuer) or [`audience`](Self::audience), a bad or
    /// non-`https` endpoint, an empty client id, or an HTTP client that cannot be made.
    pub fn build(self) -> Result<IntrospectionValidator, ConfigError> {
        let issuer = match self.issuer {
            None => return Err(ConfigError::MissingIssuer),
            Some(issuer) if issuer.is_empty() => return Err(ConfigError::EmptyIssuer),
            Some(issuer) => issuer,
        };
        let audience = match self.audience {
            None => return Err(ConfigError::MissingAudience),
            Some(audience) if audience.is_empty() => return Err(ConfigError::EmptyAudience),
            Some(audience) => audience,
        };
        let endpoint = endpoint_url(&self.endpoint)?;
        if self.client_id.is_empty() {
            return Err(ConfigError::MissingCredentials);
        }
        // RFC 6749 §2.3.1: each part is form-urlencoded before Basic encoding.
        let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let credentials = format!("{}:{}", encode(&self.client_id), encode(&self.client_secret));
        let mut authorization = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(credentials)))
            .map_err(|_| ConfigError::MissingCredentials)?;
        authorization.set_sensitive(true);
        Ok(IntrospectionValidator {
            endpoint,
            authorization,
            http: HttpClient::new(self.timeout)?,
            issuer,
            audience,
            require_issuer: self.require_issuer,
            require_audience: self.require_audience,
            leeway: self.leeway.as_secs(),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        })
    }

    /// Builds the validator inside a [`CachedValidator`] with its defaults, sharing this
    /// builder's clock.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_cached(self) -> Result<CachedValidator<IntrospectionValidator>, ConfigError> {
        let validator = self.build()?;
        let clock = Arc::clone(&validator.clock);
        Ok(CachedValidator::new(validator).clock(clock))
    }
}

impl fmt::Debug for IntrospectionValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidatorBuilder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("require_issuer", &self.require_issuer)
            .field("require_audience", &self.require_audience)
            .finish_non_exhaustive()
    }
}
