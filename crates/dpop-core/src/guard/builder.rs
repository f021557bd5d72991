//! [`DpopGuardBuilder`]: a guard's configuration, checked when it is built — a configuration
//! `build` accepts never fails at request time.

use std::fmt;
use std::sync::{Arc, Once};

use super::metadata::ResourceMetadata;
use super::target::Origin;
use super::{DpopGuard, NoncePolicy, TokenPolicy};
use crate::error::ConfigError;
use crate::proof::verifier::DpopVerifier;
use crate::token::TokenValidator;

/// Builds a [`DpopGuard`].
#[derive(Clone)]
#[must_use]
pub struct DpopGuardBuilder {
    pub(super) verifier: DpopVerifier,
    pub(super) origin: Origin,
    pub(super) allow_bearer: bool,
    pub(super) tokens: Option<TokenPolicy>,
    pub(super) required_scopes: Vec<String>,
    pub(super) metadata: Option<ResourceMetadata>,
    pub(super) resource_metadata_url: Option<String>,
    pub(super) nonce_policy: NoncePolicy,
    pub(super) invalid: Option<ConfigError>,
}

impl Default for DpopGuardBuilder {
    fn default() -> Self {
        Self {
            verifier: DpopVerifier::new(),
            origin: Origin::FromRequest { trust_forwarded: false },
            allow_bearer: false,
            tokens: None,
            required_scopes: Vec::new(),
            metadata: None,
            resource_metadata_url: None,
            nonce_policy: NoncePolicy::Never,
            invalid: None,
        }
    }
}

impl DpopGuardBuilder {
    /// The proof verifier (algorithms, limits, clock, replay store).
    pub fn verifier(mut self, verifier: DpopVerifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// The origin clients use to reach this server, e.g. `https://mcp.example.com`: the target
    /// URI is this plus the request path. The safe choice behind any proxy or load balancer.
    /// Defaults to the origin of [`resource`](Self::resource) when that is set.
    pub fn public_origin(mut self, origin: &str) -> Self {
        match Origin::public(origin) {
            Some(parsed) => self.origin = parsed,
            None => _ = self.invalid.get_or_insert(ConfigError::InvalidPublicOrigin),
        }
        self
    }

    /// Without a public origin: take scheme and host from `Forwarded` / `X-Forwarded-Proto` /
    /// `X-Forwarded-Host`. Only when a proxy you run sets them (default: not trusted).
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        if let Origin::FromRequest { trust_forwarded } = &mut self.origin {
            *trust_forwarded = trust;
        }
        self
    }

    /// Also accept `Authorization: Bearer` (mixed mode; default: DPoP only). Needs a token
    /// validator; a DPoP-bound token is still refused as Bearer (RFC 9449 §7.2).
    pub fn allow_bearer(mut self, allow: bool) -> Self {
        self.allow_bearer = allow;
        self
    }

    /// Validates access tokens: then the token must be valid, a DPoP token must be bound to the
    /// proof's key (`cnf.jkt`, RFC 9449 §6), a bound token is refused as Bearer (§7.2), and
    /// required scopes are enforced. Handlers get `Authenticated`. A guard needs this or
    /// [`proof_only`](Self::proof_only).
    pub fn token_validator(mut self, validator: impl TokenValidator) -> Self {
        self.tokens = Some(TokenPolicy::Validate(Arc::new(validator)));
        self
    }

    /// Verifies proofs only and leaves the access token to the application: any string with a
    /// valid proof whose `ath` covers it passes, including a token nobody issued. Handlers get
    /// `ProofOnly` (the key thumbprint, `jti`, the unvalidated token), never `Authenticated`,
    /// and the guard logs a warning when built. For servers that validate tokens themselves.
    pub fn proof_only(mut self) -> Self {
        self.tokens = Some(TokenPolicy::ProofOnly);
        self
    }

    /// Scopes every token must grant (see [`DpopGuard::with_required_scopes`] for per-route
    /// sets). Needs a token validator.
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The canonical URI of this protected resource (the token audience), e.g.
    /// `https://mcp.example.com/mcp`: enables the RFC 9728 metadata document, served at the
    /// well-known path with the resource path inserted, and `resource_metadata` in challenges.
    pub fn resource(mut self, resource: &str) -> Self {
        match ResourceMetadata::new(resource) {
            Some(metadata) => self.metadata = Some(metadata),
            None => _ = self.invalid.get_or_insert(ConfigError::InvalidResource),
        }
        self
    }

    /// An authorization server that issues tokens for this resource (RFC 9728
    /// `authorization_servers`); call once per server.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        match &mut self.metadata {
            Some(metadata) => metadata.authorization_servers.push(issuer.into()),
            None => _ = self.invalid.get_or_insert(ConfigError::MetadataWithoutResource),
        }
        self
    }

    /// The scopes advertised in the metadata (`scopes_supported`).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match &mut self.metadata {
            Some(metadata) => metadata.scopes_supported = scopes.into_iter().map(Into::into).collect(),
            None => _ = self.invalid.get_or_insert(ConfigError::MetadataWithoutResource),
        }
        self
    }

    /// Overrides the `resource_metadata` URL put in every challenge (default: the document
    /// this guard serves, when [`resource`](Self::resource) is set).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata_url = Some(url.into());
        self
    }

    /// Which requests must carry a server nonce (default: none). Needs a verifier built with
    /// [`DpopVerifierBuilder::nonces`](crate::DpopVerifierBuilder::nonces).
    pub fn nonce_policy(mut self, policy: NoncePolicy) -> Self {
        self.nonce_policy = policy;
        self
    }

    /// Builds the guard.
    ///
    /// # Errors
    ///
    /// An invalid public origin or resource, metadata members without a resource, neither a
    /// token validator nor [`proof_only`](Self::proof_only), or Bearer or required scopes
    /// without a token validator.
    pub fn build(mut self) -> Result<DpopGuard, ConfigError> {
        if let Some(error) = self.invalid {
            return Err(error);
        }
        let proof_only = match &self.tokens {
            None => return Err(ConfigError::NoTokenValidator),
            Some(policy) => matches!(policy, TokenPolicy::ProofOnly),
        };
        if proof_only && self.allow_bearer {
            return Err(ConfigError::BearerWithoutTokenValidator);
        }
        if proof_only && !self.required_scopes.is_empty() {
            return Err(ConfigError::ScopesWithoutTokenValidator);
        }
        if !matches!(self.nonce_policy, NoncePolicy::Never) && self.verifier.nonces().is_none() {
            return Err(ConfigError::NoncePolicyWithoutIssuer);
        }
        if let (Origin::FromRequest { .. }, Some(metadata)) = (&self.origin, &self.metadata) {
            self.origin = Origin::public(metadata.origin()).ok_or(ConfigError::InvalidResource)?;
        }
        Ok(DpopGuard::from_config(self))
    }
}

impl fmt::Debug for DpopGuardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopGuardBuilder")
            .field("origin", &self.origin)
            .field("allow_bearer", &self.allow_bearer)
            .field("proof_only", &matches!(self.tokens, Some(TokenPolicy::ProofOnly)))
            .field("required_scopes", &self.required_scopes)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl DpopGuardBuilder {
    /// Start-up warnings for settings that are valid but rest on an assumption: logged once per
    /// process, however many guards are built (per worker, per connection).
    pub(super) fn warn_about_assumptions(&self) {
        static PROOF_ONLY: Once = Once::new();
        static SCHEME: Once = Once::new();
        if matches!(self.tokens, Some(TokenPolicy::ProofOnly)) {
            PROOF_ONLY.call_once(|| {
                tracing::warn!(
                    "DPoP guard is proof-only: access tokens are NOT validated; any token with a valid proof \
                     passes, and handlers must validate it themselves (set a token validator to change this)"
                );
            });
        }
        if matches!(self.origin, Origin::FromRequest { .. }) {
            SCHEME.call_once(|| {
                tracing::warn!(
                    "DPoP guard has no public origin: the target URI's scheme is the request's where the \
                     server knows it (HTTP/2, actix-web TLS listeners) and http otherwise; set public_origin(..) \
                     or resource(..) to the URL clients use"
                );
            });
        }
    }
}
