//! Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery 1.0): where the
//! issuer publishes its token signing keys (feature `fetch`).

use std::fmt;

use dpop_core::TokenError;
use dpop_core::json::{self, Limits};
use reqwest::Url;
use serde_json::Value;

use crate::ConfigError;
use crate::http::{HttpClient, endpoint_url, unavailable};

/// RFC 8414 §3: the well-known suffix of the authorization server metadata.
const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";

/// OpenID Connect Discovery 1.0 §4: the well-known suffix of the provider configuration.
const OIDC_METADATA: &str = "/.well-known/openid-configuration";

/// Where the metadata of one issuer is looked for, in order.
pub(crate) struct Discovery {
    issuer: String,
    /// The RFC 8414 URL, then the OpenID Connect one.
    metadata: [Url; 2],
}

impl Discovery {
    /// Discovery for `issuer`: an `https` URL (plain `http` only to a loopback address) without
    /// query or fragment (RFC 8414 §2).
    pub(crate) fn new(issuer: &str) -> Result<Self, ConfigError> {
        let url = endpoint_url(issuer)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::InvalidUrl);
        }
        // RFC 8414 §3.1 inserts the well-known suffix between the host and the issuer's path;
        // OpenID Connect Discovery §4 appends it to the issuer. Both drop a terminating `/`.
        let path = url.path().trim_end_matches('/').to_owned();
        let mut oauth = url.clone();
        oauth.set_path(&format!("{OAUTH_METADATA}{path}"));
        let mut oidc = url;
        oidc.set_path(&format!("{path}{OIDC_METADATA}"));
        Ok(Self { issuer: issuer.to_owned(), metadata: [oauth, oidc] })
    }

    /// The issuer's `jwks_uri`, from its RFC 8414 metadata or, when that cannot be had, its
    /// OpenID Connect configuration.
    ///
    /// A document whose `issuer` is not exactly the configured one is refused (RFC 8414 §3.3,
    /// OpenID Connect Discovery §4.3) and ends discovery: a mix-up is not retried elsewhere.
    pub(crate) async fn jwks_uri(&self, http: &HttpClient) -> Result<Url, TokenError> {
        let [oauth, oidc] = &self.metadata;
        let first = match self.read(http, oauth).await {
            Ok(url) => return Ok(url),
            Err(Failure::Refused(why)) => return Err(unavailable("AS metadata refused", why)),
            Err(Failure::Unusable(why)) => why,
        };
        tracing::debug!(issuer = %self.issuer, reason = %first, "no RFC 8414 metadata, trying OpenID Connect discovery");
        match self.read(http, oidc).await {
            Ok(url) => Ok(url),
            Err(Failure::Refused(why)) => Err(unavailable("AS metadata refused", why)),
            Err(Failure::Unusable(second)) => Err(unavailable(
                "AS metadata discovery failed",
                format_args!("{OAUTH_METADATA}: {first}; {OIDC_METADATA}: {second}"),
            )),
        }
    }

    async fn read(&self, http: &HttpClient, url: &Url) -> Result<Url, Failure> {
        let body = http.get_json(url).await.map_err(|error| Failure::Unusable(error.to_string()))?;
        let document = json::parse_value_object(&body, Limits::TOKEN)
            .map_err(|error| Failure::Unusable(format!("not a JSON object: {}", error.reason())))?;
        match document.get("issuer") {
            Some(Value::String(issuer)) if *issuer == self.issuer => {}
            Some(Value::String(issuer)) => {
                tracing::error!(
                    configured = %self.issuer,
                    published = %issuer,
                    metadata = %url,
                    "AS metadata names another issuer: refused"
                );
                return Err(Failure::Refused(format!("its issuer `{issuer}` is not `{}`", self.issuer)));
            }
            _ => return Err(Failure::Unusable("no issuer string".to_owned())),
        }
        let Some(Value::String(jwks_uri)) = document.get("jwks_uri") else {
            return Err(Failure::Unusable("no jwks_uri string".to_owned()));
        };
        let jwks_uri = endpoint_url(jwks_uri).map_err(|error| Failure::Refused(format!("jwks_uri: {error}")))?;
        tracing::debug!(issuer = %self.issuer, metadata = %url, jwks_uri = %jwks_uri, "AS metadata discovered");
        Ok(jwks_uri)
    }
}

/// Why one metadata document gave no `jwks_uri`.
enum Failure {
    /// None could be read here: the other location may have one.
    Unusable(String),
    /// The issuer's own document is wrong: discovery stops.
    Refused(String),
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [oauth, oidc] = &self.metadata;
        f.debug_struct("Discovery")
            .field("issuer", &self.issuer)
            .field("metadata", &[oauth.as_str(), oidc.as_str()])
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> [String; 2] {
        Discovery::new(issuer).unwrap().metadata.map(|url| url.to_string())
    }

    #[test]
    fn well_known_locations() {
        assert_eq!(
            urls("https://as.example.com"),
            [
                "https://as.example.com/.well-known/oauth-authorization-server",
                "https://as.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(urls("https://as.example.com/"), urls("https://as.example.com"));
        // RFC 8414 §3.1's example: the suffix goes between the host and the path.
        assert_eq!(
            urls("https://example.com/issuer1"),
            [
                "https://example.com/.well-known/oauth-authorization-server/issuer1",
                "https://example.com/issuer1/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            urls("http://127.0.0.1:8080/realms/a/"),
            [
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server/realms/a",
                "http://127.0.0.1:8080/realms/a/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn issuers_that_cannot_be_discovered() {
        for issuer in ["https://as.example.com?tenant=a", "https://as.example.com#x", "as.example.com", ""] {
            assert_eq!(Discovery::new(issuer).unwrap_err(), ConfigError::InvalidUrl, "{issuer}");
        }
        assert_eq!(Discovery::new("http://as.example.com").unwrap_err(), ConfigError::InsecureUrl);
    }
}
