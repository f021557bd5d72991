//! MCP sessions bound to the caller that opened them.
//!
//! An `Mcp-Session-Id` is a bearer secret: rmcp (like the MCP spec) lets anyone who presents it
//! use the session. Behind a DPoP layer every request is authenticated, but nothing ties the
//! session to *who* authenticated, so a client with its own valid token and a stolen session
//! id could read and write another client's session. [`SessionBindingLayer`] records the key
//! (`jkt`) and subject that opened each session and refuses the session to anyone else.

mod layer;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dpop_core::{Authentication, ProofOnlyAuthentication};
use sha2::{Digest as _, Sha256};

pub use layer::{SessionBindingLayer, SessionBindingService, SessionResponseBody};
pub use memory::{DEFAULT_CAPACITY, DEFAULT_IDLE_TIMEOUT, InMemorySessionStore};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_REDIS_PREFIX, DEFAULT_REDIS_TIMEOUT, RedisSessionStore};

/// The header that carries the session id (MCP, streamable HTTP transport), lowercase.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Who opened a session: the thumbprint of the key that signed the proof (`jkt`) and a
/// SHA-256 digest of the token's subject (`sub`), each when the request had one.
///
/// A request may use the session only if both are equal. Behind a proof-only layer the owner
/// is the key alone (the token is unvalidated, so its subject proves nothing); a Bearer
/// request (mixed mode) has no key, so its sessions are bound to the subject alone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionOwner {
    jkt: Option<String>,
    subject: Option<[u8; 32]>,
}

impl SessionOwner {
    /// An owner from a key thumbprint and a subject.
    #[must_use]
    pub fn new(jkt: Option<&str>, subject: Option<&str>) -> Self {
        Self { jkt: jkt.map(str::to_owned), subject: subject.map(|sub| Sha256::digest(sub.as_bytes()).into()) }
    }

    /// The caller the DPoP layer left in `extensions`: an [`Authentication`] (key and subject)
    /// or a [`ProofOnlyAuthentication`] (key only). `None` when there is neither.
    #[must_use]
    pub fn of(extensions: &http::Extensions) -> Option<Self> {
        if let Some(auth) = extensions.get::<Authentication>() {
            return Some(Self::new(auth.jkt(), auth.claims().subject.as_deref()));
        }
        extensions.get::<ProofOnlyAuthentication>().map(|proof_only| Self::new(Some(proof_only.jkt()), None))
    }

    /// The key thumbprint.
    #[must_use]
    pub fn jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// How `other` differs from this owner, for the refusal's log event; `None` when equal.
    fn difference(&self, other: &Self) -> Option<&'static str> {
        match (self.jkt == other.jkt, self.subject == other.subject) {
            (true, true) => None,
            (false, true) => Some("another key"),
            (true, false) => Some("the same key with another subject"),
            (false, false) => Some("another key and subject"),
        }
    }

    /// The owner as one line of text, for stores that keep strings:
    /// `v1|<jkt>|<hex digest of sub>`, each part empty when absent.
    #[must_use]
    pub fn encode(&self) -> String {
        let subject = self.subject.map(|digest| hex(&digest)).unwrap_or_default();
        format!("v1|{}|{subject}", self.jkt.as_deref().unwrap_or_default())
    }

    /// Reads [`encode`](Self::encode)'s text; `None` when it is anything else.
    #[must_use]
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('|');
        let (Some("v1"), Some(jkt), Some(subject), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let jkt = match jkt {
            "" => None,
            jkt if jkt.len() <= 128 && jkt.chars().all(base64url) => Some(jkt.to_owned()),
            _ => return None,
        };
        let subject = match subject {
            "" => None,
            subject => Some(unhex(subject)?),
        };
        Some(Self { jkt, subject })
    }
}

impl fmt::Debug for SessionOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOwner")
            .field("jkt", &self.jkt)
            .field("subject", &self.subject.map(|digest| hex(&digest)))
            .finish()
    }
}

/// The store's key for a session: the SHA-256 digest of its id. Fixed-size whatever the
/// client sent, and the id itself (a bearer secret) is never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key of the session `id`.
    #[must_use]
    pub fn of(id: &str) -> Self {
        Self(Sha256::digest(id.as_bytes()).into())
    }

    /// The digest in lowercase hex (64 digits).
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({})", self.to_hex())
    }
}

/// What [`SessionStore::bind`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The session is now bound to the owner.
    New,
    /// The session was already bound (to anyone): nothing changed.
    AlreadyBound,
}

/// Why a store could not answer. The layer answers `503` for every one: a store that cannot
/// answer never lets a request into a session.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionStoreError {
    /// The store holds as many live sessions as it may: no new session until one ends or
    /// expires. Live sessions are never evicted to make room.
    Full {
        /// The store's capacity.
        capacity: usize,
    },
    /// This caller (key and subject) holds as many live sessions as one owner may: no new
    /// session for it until one of its sessions ends or expires.
    OwnerQuotaExceeded {
        /// The store's per-owner quota.
        quota: usize,
    },
    /// The store failed, timed out or answered something unreadable.
    Unavailable(Box<dyn StdError + Send + Sync>),
}

impl fmt::Display for SessionStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { capacity } => write!(f, "the session store is full ({capacity} live sessions)"),
            Self::OwnerQuotaExceeded { quota } => {
                write!(f, "this caller holds as many sessions as one caller may ({quota} live sessions)")
            }
            Self::Unavailable(cause) => write!(f, "the session store is unavailable: {cause}"),
        }
    }
}

impl StdError for SessionStoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Full { .. } | Self::OwnerQuotaExceeded { .. } => None,
            Self::Unavailable(cause) => Some(&**cause),
        }
    }
}

/// The future of a [`SessionStore`] operation.
pub type SessionFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SessionStoreError>> + Send + 'a>>;

/// Where [`SessionBindingLayer`] keeps which owner opened which session.
///
/// [`bind`](Self::bind) must be atomic: two concurrent calls for one key must not both see
/// [`Binding::New`]. Bindings expire after an idle timeout the store chooses;
/// [`owner`](Self::owner) restarts it.
pub trait SessionStore: Send + Sync + 'static {
    /// Binds `session` to `owner` unless it is bound already.
    fn bind<'a>(&'a self, session: SessionKey, owner: &'a SessionOwner) -> SessionFuture<'a, Binding>;

    /// The owner of `session`, restarting its idle timeout; `None` when it is not bound (never
    /// was, expired, or ended).
    fn owner(&self, session: SessionKey) -> SessionFuture<'_, Option<SessionOwner>>;

    /// Forgets `session` (its owner ended it).
    fn unbind(&self, session: SessionKey) -> SessionFuture<'_, ()>;
}

impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    fn bind<'a>(&'a self, session: SessionKey, owner: &'a SessionOwner) -> SessionFuture<'a, Binding> {
        (**self).bind(session, owner)
    }

    fn owner(&self, session: SessionKey) -> SessionFuture<'_, Option<SessionOwner>> {
        (**self).owner(session)
    }

    fn unbind(&self, session: SessionKey) -> SessionFuture<'_, ()> {
        (**self).unbind(session)
    }
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// 64 lowercase hex digits as 32 bytes.
fn unhex(text: &str) -> Option<[u8; 32]> {
    let lowercase_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    if text.len() != 64 || !text.bytes().all(lowercase_hex) {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    #[test]
    fn owners_are_equal_only_with_the_same_key_and_subject() {
        let owner = SessionOwner::new(Some(JKT), Some("alice"));
        assert_eq!(owner.difference(&SessionOwner::new(Some(JKT), Some("alice"))), None);
        assert_eq!(owner.difference(&SessionOwner::new(Some("other"), Some("alice"))), Some("another key"));
        assert_eq!(
            owner.difference(&SessionOwner::new(Some(JKT), Some("bob"))),
            Some("the same key with another subject")
        );
        assert_eq!(owner.difference(&SessionOwner::new(None, None)), Some("another key and subject"));
    }

    #[test]
    fn the_text_form_round_trips() {
        for owner in [
            SessionOwner::new(Some(JKT), Some("alice")),
            SessionOwner::new(Some(JKT), None),
            SessionOwner::new(None, Some("service-account|with|bars")),
            SessionOwner::new(None, None),
        ] {
            assert_eq!(SessionOwner::decode(&owner.encode()), Some(owner.clone()), "{}", owner.encode());
        }
    }

    #[test]
    fn anything_else_does_not_decode() {
        let good = SessionOwner::new(Some(JKT), Some("alice")).encode();
        let subject = good.rsplit('|').next().unwrap_or_default().to_owned();
        for text in [
            String::new(),
            "v2|a|".to_owned(),
            "v1|a".to_owned(),
            format!("{good}|extra"),
            format!("v1|{JKT}|{}", subject.get(..62).unwrap_or_default()),
            format!("v1|{JKT}|{}", subject.to_uppercase()),
            format!("v1|not base64|{subject}"),
        ] {
            assert_eq!(SessionOwner::decode(&text), None, "{text}");
        }
    }

    #[test]
    fn session_keys_are_digests() {
        assert_eq!(SessionKey::of("abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(SessionKey::of("abc"), SessionKey::of("abd"));
    }
}
