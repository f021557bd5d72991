//! [`NoncePolicy`]: which requests must carry a server nonce (RFC 9449 §8).

use std::fmt;
use std::sync::Arc;

use crate::error::DpopError;
use crate::proof::htu;

/// Which requests must carry a server nonce (RFC 9449 §8).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum NoncePolicy {
    /// No nonces (the default).
    #[default]
    Never,
    /// Every request.
    Always,
    /// Requests for which the function, given the method and the normalized path (no query),
    /// returns `true`.
    When(Arc<NoncePredicate>),
}

/// Decides from method and path whether a request must carry a nonce.
pub type NoncePredicate = dyn Fn(&str, &str) -> bool + Send + Sync;

impl NoncePolicy {
    /// Nonces for the requests `predicate(method, path)` selects; `path` is normalized as `htu`
    /// is (RFC 3986 §6.2.2: `/%61dmin` and `/x/../admin` are `/admin`), without the query.
    pub fn when(predicate: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> Self {
        Self::When(Arc::new(predicate))
    }

    /// Whether this request needs a nonce. The predicate sees the path normalized as `htu` is
    /// (percent-encoding, dot segments), so `/%61dmin` is `/admin` to it as to the router.
    pub(super) fn requires(&self, method: &str, raw_path: &str) -> Result<bool, DpopError> {
        match self {
            Self::Never => Ok(false),
            Self::Always => Ok(true),
            Self::When(predicate) => {
                let path = htu::normalize_path(htu::without_query(raw_path)).ok_or(DpopError::InvalidTargetUri)?;
                Ok(predicate(method, &path))
            }
        }
    }
}

impl fmt::Debug for NoncePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Never => "Never",
            Self::Always => "Always",
            Self::When(_) => "When(..)",
        })
    }
}
