//! JWT access tokens (RFC 9068) signed by the authorization server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_core::TokenFuture;
use dpop_core::json::{self, JsonError, Limits};
use dpop_core::{
    Algorithm, AlgorithmSet, DpopError, InvalidToken, PublicKey, TokenClaims, TokenError, TokenValidator, clock::Clock,
    clock::SystemClock,
};
use serde_json::{Map, Value};

use crate::ConfigError;
use crate::claims::{self, Lifetime, reject};
use crate::jwks::{JwkSet, Selection};

/// Longest access token accepted, in bytes, before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Default clock skew allowed on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The algorithms accepted by default, less those the compiled crypto backend lacks.
pub const DEFAULT_ALGORITHMS: [Algorithm; 4] = [Algorithm::ES256, Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA];

/// Validates RFC 9068 JWT access tokens: the signature with the authorization server's keys,
/// then `iss`, `aud`, `exp`, `nbf`, `iat` and the shape of `cnf`.
///
/// Built with [`JwtValidator::builder`]. The keys are either a static [`JwkSet`] or, with the
/// `fetch` feature, the authorization server's `jwks_uri` (given, or discovered from the
/// issuer's metadata: `JwtValidator::from_issuer`), fetched on first use and refetched when a
/// token names an unknown `kid` (at most once per `refetch_interval`). For a resource that
/// accepts tokens from several issuers, see [`MultiIssuerValidator`](crate::MultiIssuerValidator).
///
/// What is checked, in order (every refusal is [`TokenError::Invalid`] with its
/// [`InvalidToken`] reason and a `tracing` event; a key set that cannot be fetched is [`TokenError::Unavailable`]):
///
/// 1. at most [`MAX_TOKEN_LEN`] bytes, three base64url parts (compact JWS; JWE is refused);
/// 2. the header is strict JSON (no duplicate member names, bounded depth and size);
/// 3. `alg` is in the allow-list: never `none` nor a symmetric (`HS*`) algorithm;
/// 4. `typ` is `at+jwt` or `application/at+jwt`, case-insensitively (RFC 9068 §2.1,
///    RFC 7515 §4.1.9); see [`require_type`](JwtValidatorBuilder::require_type);
/// 5. no `crit` header (no extension is understood);
/// 6. the key named by `kid` (or the only key of the set when the token has no `kid`) fits
///    `alg` and the signature verifies;
/// 7. the claims are strict JSON; `iss` equals the configured issuer; `aud` (a string or an
///    array) contains the configured audience; `exp` is present and not past; `nbf` and `iat`,
///    if present, are not in the future (all with the [leeway](JwtValidatorBuilder::leeway));
/// 8. `cnf`, if present, is an object with a string `jkt` (a `cnf` binding the token to
///    something else, such as an mTLS certificate, is refused: it cannot be checked here);
///    `sub`, `client_id` and `scope`, if present, are strings.
///
/// `sub`, `client_id`, `iat` and `jti`, required by RFC 9068 §2.2, are not required here:
/// some authorization servers omit them, and nothing in this library depends on them.
pub struct JwtValidator {
    issuer: String,
    audience: String,
    algorithms: AlgorithmSet,
    require_type: bool,
    leeway: u64,
    clock: Arc<dyn Clock>,
    keys: KeySource,
}

enum KeySource {
    Static(JwkSet),
    #[cfg(feature = "fetch")]
    Remote(Box<crate::remote::RemoteJwks>),
}

impl JwtValidator {
    /// Starts a validator for tokens from `issuer` (the exact `iss` value) for `audience` (this
    /// resource's canonical URI, RFC 8707 / MCP: the exact value expected in `aud`).
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> JwtValidatorBuilder {
        JwtValidatorBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: None,
            require_type: true,
            leeway: DEFAULT_LEEWAY,
            clock: None,
            keys: None,
            #[cfg(feature = "fetch")]
            remote: crate::remote::RemoteConfig::default(),
        }
    }

    /// A validator for tokens from `issuer` for `audience` whose keys are found by discovery
    /// (see [`JwtValidatorBuilder::discover`]), with every other setting at its default.
    ///
    /// Nothing is fetched here: the metadata and the keys are fetched at the first validation.
    ///
    /// # Errors
    ///
    /// As [`JwtValidatorBuilder::build`]; an issuer that is not an `https` URL (plain `http`
    /// only to a loopback address) without query or fragment.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub fn from_issuer(issuer: impl Into<String>, audience: impl Into<String>) -> Result<Self, ConfigError> {
        Self::builder(issuer, audience).discover().build()
    }

    /// The issuer whose tokens this validator accepts: the exact `iss` value.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens must name: this resource's canonical URI.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The algorithms this validator accepts.
    #[must_use]
    pub const fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    async fn validate_jwt(&self, token: &str) -> Result<Arc<TokenClaims>, TokenError> {
        let [header_b64, payload_b64, signature_b64] = compact_parts(token)?;
        let header = decode_json(header_b64, Part::Header)?;
        // Before the signature, so that an unsigned `alg: none` token is named as such.
        let (alg, kid) = self.check_header(&header)?;
        if signature_b64.is_empty() {
            return Err(reject(InvalidToken::Malformed));
        }
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| reject(InvalidToken::Malformed))?;
        let signing_input =
            token.get(..header_b64.len() + 1 + payload_b64.len()).ok_or_else(|| reject(InvalidToken::Malformed))?;

        let key = self.key(kid, alg).await?;
        key.verify(alg, signing_input.as_bytes(), &signature).map_err(|error| match error {
            DpopError::KeyAlgorithmMismatch => reject(InvalidToken::KeyAlgorithmMismatch),
            _ => reject(InvalidToken::InvalidSignature),
        })?;

        let claims = decode_json(payload_b64, Part::Claims)?;
        self.check_claims(&claims)?;
        Ok(Arc::new(TokenClaims::from_json(claims)))
    }

    /// Checks the JOSE header; the algorithm and the `kid`.
    fn check_header<'h>(&self, header: &'h Map<String, Value>) -> Result<(Algorithm, Option<&'h str>), TokenError> {
        let alg = match header.get("alg") {
            None => return Err(reject(InvalidToken::MissingAlgorithm)),
            Some(Value::String(alg)) => alg,
            Some(_) => return Err(reject(InvalidToken::InvalidAlgorithm)),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(reject(InvalidToken::AlgorithmNone));
        }
        if alg.starts_with("HS") {
            return Err(reject(InvalidToken::SymmetricAlgorithm));
        }
        let alg = match Algorithm::from_name(alg) {
            Some(alg) if self.algorithms.contains(alg) => alg,
            _ => return Err(reject(InvalidToken::AlgorithmNotAllowed)),
        };
        check_type(header.get("typ"), self.require_type)?;
        if header.contains_key("crit") {
            return Err(reject(InvalidToken::CriticalHeader));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(reject(InvalidToken::InvalidKeyId)),
        };
        Ok((alg, kid))
    }

    /// The verification key for `kid` and `alg`.
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<PublicKey, TokenError> {
        match &self.keys {
            KeySource::Static(set) => match set.select(kid, alg) {
                Selection::Key(key) => Ok(key.clone()),
                other => Err(selection_error(&other)),
            },
            #[cfg(feature = "fetch")]
            KeySource::Remote(remote) => remote.key(kid, alg, self.clock.now()).await,
        }
    }

    fn check_claims(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        claims::check_issuer(claims, &self.issuer)?;
        claims::check_audience(claims, &self.audience)?;
        let lifetime = Lifetime { now: self.clock.now(), leeway: self.leeway };
        lifetime.check_exp(claims, true)?;
        lifetime.check_nbf(claims)?;
        lifetime.check_iat(claims)?;
        claims::check_cnf(claims)?;
        claims::check_types(claims)
    }
}

/// The rejection for a key selection that found no key.
pub(crate) fn selection_error(selection: &Selection<'_>) -> TokenError {
    match selection {
        Selection::NoKid => reject(InvalidToken::MissingKeyId),
        Selection::Unfit => reject(InvalidToken::KeyAlgorithmMismatch),
        Selection::Key(_) | Selection::Unknown => reject(InvalidToken::UnknownSigningKey),
    }
}

/// RFC 9068 §2.1 / §4 step 1 explicit typing; RFC 7515 §4.1.9: media types compare
/// case-insensitively, and `application/` may be omitted.
fn check_type(typ: Option<&Value>, require: bool) -> Result<(), TokenError> {
    let typ = match typ {
        None if require => return Err(reject(InvalidToken::MissingType)),
        None => return Ok(()),
        Some(Value::String(typ)) => typ.to_ascii_lowercase(),
        Some(_) => return Err(reject(InvalidToken::WrongType)),
    };
    let media_type = typ.strip_prefix("application/").unwrap_or(&typ);
    match media_type {
        "at+jwt" => Ok(()),
        // Legacy servers type access tokens as plain JWTs; any other explicit type (a DPoP
        // proof, an ID token, a logout token...) is never an access token.
        "jwt" if !require => Ok(()),
        _ => Err(reject(InvalidToken::WrongType)),
    }
}

/// The header, payload and signature parts of a compact JWS of at most [`MAX_TOKEN_LEN`]
/// bytes; the header and payload are not empty.
fn compact_parts(token: &str) -> Result<[&str; 3], TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(reject(InvalidToken::TooLarge));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(InvalidToken::Malformed));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(reject(InvalidToken::Malformed));
    }
    Ok([header, payload, signature])
}

/// The token's `iss`, read from its claims *before any verification*: only to choose the
/// validator that then verifies everything.
pub(crate) fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    let [_, payload, _] = compact_parts(token)?;
    match decode_json(payload, Part::Claims)?.remove("iss") {
        None => Err(reject(InvalidToken::MissingIssuer)),
        Some(Value::String(iss)) => Ok(iss),
        Some(_) => Err(reject(InvalidToken::InvalidIssuer)),
    }
}

#[derive(Clone, Copy)]
enum Part {
    Header,
    Claims,
}

/// Decodes a base64url part and parses it as a strict JSON object.
fn decode_json(b64: &str, part: Part) -> Result<Map<String, Value>, TokenError> {
    let (malformed, duplicate, complex) = match part {
        Part::Header => {
            (InvalidToken::MalformedHeader, InvalidToken::DuplicateHeaderMember, InvalidToken::HeaderTooComplex)
        }
        Part::Claims => (InvalidToken::MalformedClaims, InvalidToken::DuplicateClaim, InvalidToken::ClaimsTooComplex),
    };
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| reject(malformed))?;
    json::parse_value_object(&bytes, Limits::TOKEN).map_err(|error| match error {
        JsonError::DuplicateMember => reject(duplicate),
        JsonError::TooManyMembers | JsonError::TooDeep | JsonError::TooManyElements => reject(complex),
        _ => reject(malformed),
    })
}

impl TokenValidator for JwtValidator {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        Box::pin(self.validate_jwt(token))
    }
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("JwtValidator");
        debug
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("require_type", &self.require_type)
            .field("leeway", &self.leeway);
        match &self.keys {
            KeySource::Static(set) => debug.field("keys", set),
            #[cfg(feature = "fetch")]
            KeySource::Remote(remote) => debug.field("keys", remote),
        };
        debug.finish_non_exhaustive()
    }
}

/// Configures a [`JwtValidator`]; made by [`JwtValidator::builder`].
#[must_use]
pub struct JwtValidatorBuilder {
    issuer: String,
    audience: String,
    algorithms: Option<Vec<Algorithm>>,
    require_type: bool,
    leeway: Duration,
    clock: Option<Arc<dyn Clock>>,
    keys: Option<JwkSet>,
    #[cfg(feature = "fetch")]
    remote: crate::remote::RemoteConfig,
}

impl JwtValidatorBuilder {
    /// The accepted signature algorithms.
    ///
    /// Default: [`DEFAULT_ALGORITHMS`] (`ES256`, `RS256`, `PS256`, `EdDSA`), less those the
    /// compiled crypto backend cannot verify (`rustcrypto` has only `ES256`). Listing an
    /// algorithm the backend lacks makes [`build`](Self::build) fail.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Whether the header `typ` must say `at+jwt` (RFC 9068 §4, RFC 8725 §3.11), so that no
    /// other JWT signed by the same key (an ID token...) passes for an access token.
    ///
    /// Default `true`. Turn it off only for an authorization server that does not type its
    /// access tokens: a missing `typ` or `JWT` is then accepted too; any other type still is not.
    pub const fn require_type(mut self, require: bool) -> Self {
        self.require_type = require;
        self
    }

    /// The clock skew allowed on `exp`, `nbf` and `iat`, in whole seconds. Default 60 s.
    pub const fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock (default: [`SystemClock`]). Tests pass a [`ManualClock`](dpop_core::clock::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// A fixed key set.
    pub fn keys(mut self, keys: JwkSet) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Fetches the keys from the authorization server's `jwks_uri` (`https`; plain `http` only
    /// to a loopback address), on first use and when a token names an unknown `kid`.
    ///
    /// A key set that cannot be fetched (connection, timeout, status other than 200, larger
    /// than [`MAX_RESPONSE_LEN`](crate::MAX_RESPONSE_LEN), not a JWK set) makes validation
    /// [`TokenError::Unavailable`]: the request is refused with 503, never let through.
    /// Redirects are not followed. Requires the `fetch` feature.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.remote.url = Some(url.into());
        self
    }

    /// Finds the `jwks_uri` in the issuer's authorization server metadata: RFC 8414
    /// `/.well-known/oauth-authorization-server` (inserted before the issuer's path, if it has
    /// one), else OpenID Connect's `<issuer>/.well-known/openid-configuration`.
    ///
    /// Lazy: the metadata is fetched with the keys, at the first validation, and again when the
    /// keys are (after [`jwks_max_age`](Self::jwks_max_age), or after a failed key fetch), with
    /// the same single-flight fetching and back-off after failures. A document whose `issuer` is
    /// not exactly the configured issuer is refused (RFC 8414 §3.3), as is a `jwks_uri` that is
    /// not `https` (plain `http` only to a loopback address). Metadata that cannot be had or is
    /// refused makes validation [`TokenError::Unavailable`]: 503, never acceptance.
    ///
    /// The issuer must be an `https` URL (plain `http` only to a loopback address) without
    /// query or fragment. Requires the `fetch` feature.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub const fn discover(mut self) -> Self {
        self.remote.discover = true;
        self
    }

    /// The minimum time between two refetches caused by unknown `kid`s: tokens with made-up
    /// `kid`s cannot make this server hammer the authorization server. Default 5 minutes.
    /// Requires the `fetch` feature.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub const fn refetch_interval(mut self, interval: Duration) -> Self {
        self.remote.refetch_interval = interval;
        self
    }

    /// How long a fetched key set is used before it is fetched again, so that keys the
    /// authorization server withdrew stop being accepted. Default 1 hour. If that refresh fails,
    /// validation is [`TokenError::Unavailable`] until a fetch succeeds (the stale set is not
    /// used). Requires the `fetch` feature.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub const fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.remote.max_age = max_age;
        self
    }

    /// The time limit for one JWKS request, connection included. Default 5 s.
    /// Requires the `fetch` feature.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub const fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.remote.timeout = timeout;
        self
    }

    /// Builds the validator.
    ///
    /// # Errors
    ///
    /// An empty issuer or audience, no key source or two, an empty static key set, an empty
    /// algorithm list or one the backend lacks, a bad or non-`https` JWKS URL or issuer to
    /// discover.
    pub fn build(self) -> Result<JwtValidator, ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if self.audience.is_empty() {
            return Err(ConfigError::EmptyAudience);
        }
        let algorithms = algorithm_set(self.algorithms)?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));

        #[cfg(feature = "fetch")]
        let keys = match (self.keys, self.remote.url.is_some() || self.remote.discover) {
            (Some(_), true) => return Err(ConfigError::ConflictingKeySources),
            (Some(set), false) => static_keys(set)?,
            (None, _) => KeySource::Remote(Box::new(crate::remote::RemoteJwks::new(self.remote, &self.issuer)?)),
        };
        #[cfg(not(feature = "fetch"))]
        let keys = static_keys(self.keys.ok_or(ConfigError::NoKeySource)?)?;

        Ok(JwtValidator {
            issuer: self.issuer,
            audience: self.audience,
            algorithms,
            require_type: self.require_type,
            leeway: self.leeway.as_secs(),
            clock,
            keys,
        })
    }
}

fn static_keys(set: JwkSet) -> Result<KeySource, ConfigError> {
    if set.is_empty() {
        return Err(ConfigError::EmptyKeySet);
    }
    Ok(KeySource::Static(set))
}

fn algorithm_set(algorithms: Option<Vec<Algorithm>>) -> Result<AlgorithmSet, ConfigError> {
    let Some(algorithms) = algorithms else {
        return Ok(DEFAULT_ALGORITHMS.into_iter().filter(|alg| alg.is_supported()).collect());
    };
    if let Some(unsupported) = algorithms.iter().find(|alg| !alg.is_supported()) {
        return Err(ConfigError::UnsupportedAlgorithm(*unsupported));
    }
    let set: AlgorithmSet = algorithms.into_iter().collect();
    if set.is_empty() {
        return Err(ConfigError::NoAlgorithms);
    }
    Ok(set)
}

impl fmt::Debug for JwtValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidatorBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("require_type", &self.require_type)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_result(typ: Option<Value>, require: bool) -> Result<(), InvalidToken> {
        check_type(typ.as_ref(), require).map_err(|error| match error {
            TokenError::Invalid(why) => why,
            other => panic!("expected Invalid, got {other:?}"),
        })
    }

    #[test]
    fn explicit_typing() {
        for ok in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"] {
            assert_eq!(type_result(Some(Value::from(ok)), true), Ok(()), "{ok}");
            assert_eq!(type_result(Some(Value::from(ok)), false), Ok(()), "{ok}");
        }
        assert_eq!(type_result(None, true), Err(InvalidToken::MissingType));
        assert_eq!(type_result(None, false), Ok(()));
        assert_eq!(type_result(Some(Value::from("JWT")), true), Err(InvalidToken::WrongType));
        assert_eq!(type_result(Some(Value::from("jwt")), false), Ok(()));
        for bad in ["dpop+jwt", "application/jwt+at", "at+jwt ", "x/at+jwt"] {
            assert_eq!(type_result(Some(Value::from(bad)), false), Err(InvalidToken::WrongType), "{bad}");
        }
        assert_eq!(type_result(Some(Value::from(1)), false), Err(InvalidToken::WrongType));
    }

    #[test]
    fn default_algorithms_follow_the_backend() {
        let set = algorithm_set(None).unwrap();
        assert!(set.contains(Algorithm::ES256));
        for alg in DEFAULT_ALGORITHMS {
            assert_eq!(set.contains(alg), alg.is_supported(), "{alg}");
        }
        assert!(!set.contains(Algorithm::ES384));
        assert_eq!(algorithm_set(Some(Vec::new())).unwrap_err(), ConfigError::NoAlgorithms);
    }
}
