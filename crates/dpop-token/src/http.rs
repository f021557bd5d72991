//! The HTTP client behind JWKS fetching and introspection (feature `fetch`).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode, Url, redirect};

use dpop_core::TokenError;

use crate::ConfigError;

/// Default time limit for one JWKS or introspection request, connection included.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response body read from a JWKS or introspection endpoint, in bytes.
pub const MAX_RESPONSE_LEN: usize = 256 * 1024;

/// Gives up on the token because `what` failed, with a tracing event: the request is refused
/// with 503, never let through.
pub(crate) fn unavailable(what: &'static str, cause: impl fmt::Display) -> TokenError {
    let message = format!("{what}: {cause}");
    tracing::warn!(reason = %message, "access token validation unavailable");
    TokenError::Unavailable(Box::new(Unavailable(message)))
}

/// Why a validator could not decide. The message never contains the token.
#[derive(Debug)]
struct Unavailable(String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Checks an endpoint URL: `https`, or plain `http` to a loopback address (tests, sidecars).
pub(crate) fn endpoint_url(url: &str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|_| ConfigError::InvalidUrl)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::InvalidUrl);
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(ConfigError::InsecureUrl),
        _ => Err(ConfigError::InvalidUrl),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.eq_ignore_ascii_case("localhost") || unbracketed.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A client with a whole-request timeout, no redirects and a response size limit.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client,
}

/// Why a request gave no usable answer. Never contains the token or credentials.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// Connection, TLS, timeout or protocol failure.
    Transport(reqwest::Error),
    /// A status other than 200.
    Status(StatusCode),
    /// The body is larger than [`MAX_RESPONSE_LEN`].
    TooLarge,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Without the URL: it is configuration, and logged elsewhere if needed.
            Self::Transport(error) if error.is_timeout() => f.write_str("request timed out"),
            Self::Transport(error) if error.is_connect() => f.write_str("connection failed"),
            Self::Transport(error) => {
                write!(f, "request failed: {error}")?;
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            Self::Status(status) => write!(f, "unexpected HTTP status {}", status.as_u16()),
            Self::TooLarge => write!(f, "response larger than {MAX_RESPONSE_LEN} bytes"),
        }
    }
}

impl HttpClient {
    pub(crate) fn new(timeout: Duration) -> Result<Self, ConfigError> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(redirect::Policy::none())
            .user_agent(concat!("dpop-token/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ConfigError::HttpClient(error.without_url().to_string()))?;
        Ok(Self { client })
    }

    /// GET `url` expecting JSON; the body of a 200 response.
    pub(crate) async fn get_json(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let request = self.client.get(url.clone()).header(ACCEPT, HeaderValue::from_static("application/json"));
        let response = request.send().await.map_err(|error| FetchError::Transport(error.without_url()))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        read_limited(response).await
    }

    /// POST the form `body` to `url` with `authorization`; the status and body.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        authorization: &HeaderValue,
        body: String,
    ) -> Result<Vec<u8>, FetchError> {
        let request = self
            .client
            .post(url.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(body);
        let response = request.send().await.map_err(|error| FetchError::Transport(error.without_url()))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        read_limited(response).await
    }
}

/// Reads the body, refusing more than [`MAX_RESPONSE_LEN`] bytes (announced or received).
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
    let announced = response.content_length().unwrap_or(0);
    if announced > MAX_RESPONSE_LEN as u64 {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| FetchError::Transport(error.without_url()))? {
        if body.len() + chunk.len() > MAX_RESPONSE_LEN {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        assert!(endpoint_url("https://as.example.com/jwks").is_ok());
        assert!(endpoint_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(endpoint_url("http://127.1.2.3/jwks").is_ok());
        assert!(endpoint_url("http://[::1]:8080/jwks").is_ok());
        assert!(endpoint_url("http://localhost/jwks").is_ok());
        assert_eq!(endpoint_url("http://as.example.com/jwks").unwrap_err(), ConfigError::InsecureUrl);
        assert_eq!(endpoint_url("http://10.0.0.1/jwks").unwrap_err(), ConfigError::InsecureUrl);
        for bad in [
            "ftp://as.example.com/jwks",
            "as.example.com/jwks",
            "https://user:pw@as.example.com/jwks",
            "file:///etc/passwd",
        ] {
            assert_eq!(endpoint_url(bad).unwrap_err(), ConfigError::InvalidUrl, "{bad}");
        }
    }
}
