//! [`ClientError`]: everything that can go wrong on the client side, each with a sentence that
//! says what happened.

use std::fmt;
use std::path::PathBuf;

use dpop_core::{CryptoError, KeyError};

/// Why a DPoP client could not do what it was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The crypto backend failed to make a key, a random value or a signature.
    Crypto(CryptoError),
    /// The operating system's random generator failed (no `jti`, PKCE verifier or `state`).
    Random,
    /// A stored key is not a usable ES256 (P-256) private key.
    Key(KeyError),
    /// A PEM text is not a PKCS#8 P-256 private key.
    Pem,
    /// A key file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A key file is larger than any key file this crate writes.
    KeyFileTooLarge(PathBuf),
    /// The request URL is not an absolute `http`/`https` URL: there is no `htu` to sign.
    InvalidUrl,
    /// The server asked for a nonce (or another clock), but the request body is a stream that
    /// was already sent: it cannot be sent again with a new proof. Buffer the body to allow the
    /// one automatic retry.
    BodyNotReplayable,
    /// A response body that had to be read (an authorization server's JSON error) was larger
    /// than the limit.
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The HTTP client failed (connection, TLS, timeout).
    Http(Box<dyn std::error::Error + Send + Sync>),
    /// An OAuth exchange failed: the error the server answered, or what was wrong with its
    /// answer.
    OAuth(String),
    /// The loopback redirect listener (RFC 8252 §7.3) could not listen or accept.
    Loopback(std::io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Crypto(error) => write!(f, "DPoP client: {error}"),
            Self::Key(error) => write!(f, "DPoP client: {error}"),
            Self::Random => f.write_str("DPoP client: the operating system's random generator failed"),
            Self::Pem => f.write_str("DPoP client: the PEM text is not a PKCS#8 P-256 private key"),
            Self::Io { path, source } => write!(f, "DPoP client: key file {}: {source}", path.display()),
            Self::KeyFileTooLarge(path) => {
                write!(f, "DPoP client: key file {} is too large to be a key", path.display())
            }
            Self::InvalidUrl => f.write_str("DPoP client: the request URL is not an absolute http(s) URL"),
            Self::BodyNotReplayable => f.write_str(
                "DPoP client: the server asked for a new proof (nonce or clock), but the request body is a \
                 stream that cannot be sent again; buffer the body to allow the automatic retry",
            ),
            Self::ResponseTooLarge { limit } => {
                write!(f, "DPoP client: the response body is larger than {limit} bytes")
            }
            Self::Http(error) => write!(f, "DPoP client: HTTP request failed: {error}"),
            Self::OAuth(why) => write!(f, "DPoP client: OAuth: {why}"),
            Self::Loopback(error) => write!(f, "DPoP client: loopback redirect listener: {error}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Crypto(error) => Some(error),
            Self::Key(error) => Some(error),
            Self::Io { source, .. } | Self::Loopback(source) => Some(source),
            Self::Http(error) => Some(error.as_ref()),
            _ => None,
        }
    }
}

impl ClientError {
    /// Logs the error as a `tracing` event and returns it: every error is reported once, where
    /// it is made.
    pub(crate) fn logged(self) -> Self {
        match &self {
            Self::Http(_) | Self::OAuth(_) | Self::ResponseTooLarge { .. } => tracing::warn!(error = %self),
            Self::BodyNotReplayable => tracing::warn!(error = %self),
            _ => tracing::error!(error = %self),
        }
        self
    }
}

impl From<CryptoError> for ClientError {
    fn from(error: CryptoError) -> Self {
        Self::Crypto(error).logged()
    }
}

impl From<KeyError> for ClientError {
    fn from(error: KeyError) -> Self {
        Self::Key(error).logged()
    }
}
