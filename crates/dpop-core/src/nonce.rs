//! Server-provided nonces (RFC 9449 §8, §9, §11.3): stateless, authenticated, rotating.
//!
//! A nonce is `base64url(version ‖ key id ‖ issued-at ‖ random ‖ HMAC-SHA256)`: the server keeps
//! no list of nonces, any replica holding the same keys accepts a nonce another replica issued,
//! and a client cannot forge, extend or predict one. Keys rotate: the current key signs, previous
//! keys are still accepted until their grace period ends.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::{Clock, SystemClock};
use crate::crypto::{self, CryptoError};

const VERSION: u8 = 1;
const RANDOM_LEN: usize = 8;
const MAC_LEN: usize = 16;
/// version, key id, issued-at (u64 big-endian), random.
const BODY_LEN: usize = 1 + 1 + 8 + RANDOM_LEN;
const NONCE_LEN: usize = BODY_LEN + MAC_LEN;
/// How far a nonce's issue time may be ahead of this replica's clock (replicas drift).
const MAX_ISSUER_SKEW: u64 = 5;

/// Default nonce lifetime.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// A secret key for nonces, with a one-byte id so a nonce names the key that made it.
#[derive(Clone)]
pub struct NonceKey {
    id: u8,
    secret: [u8; 32],
}

impl NonceKey {
    /// A key from 32 secret bytes (share them across replicas).
    #[must_use]
    pub const fn new(id: u8, secret: [u8; 32]) -> Self {
        Self { id, secret }
    }

    /// A key from the operating system's random generator (one instance only).
    ///
    /// # Errors
    ///
    /// The random generator failed.
    pub fn generate(id: u8) -> Result<Self, CryptoError> {
        let mut secret = [0u8; 32];
        crypto::fill_random(&mut secret)?;
        Ok(Self { id, secret })
    }

    /// A key from 32 bytes written as 64 hex digits or 43 base64url characters (configuration).
    ///
    /// # Errors
    ///
    /// The text is neither.
    pub fn from_text(id: u8, text: &str) -> Result<Self, NonceKeyError> {
        let text = text.trim();
        let mut secret = [0u8; 32];
        if text.len() == 64 {
            for (byte, pair) in secret.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
                let hex = std::str::from_utf8(pair).map_err(|_| NonceKeyError)?;
                *byte = u8::from_str_radix(hex, 16).map_err(|_| NonceKeyError)?;
            }
        } else {
            match URL_SAFE_NO_PAD.decode_slice(text, &mut secret) {
                Ok(32) => {}
                _ => return Err(NonceKeyError),
            }
        }
        Ok(Self { id, secret })
    }

    /// The key id.
    #[must_use]
    pub const fn id(&self) -> u8 {
        self.id
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        // HMAC zero-pads keys shorter than the block (RFC 2104 §2), so the padded 64-byte key is
        // the same key, and the fixed-size constructor cannot fail.
        let mut block = [0u8; 64];
        for (padded, byte) in block.iter_mut().zip(self.secret) {
            *padded = byte;
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
        mac.update(body);
        mac
    }
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A nonce key that is neither 64 hex digits nor 43 base64url characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonceKeyError;

impl fmt::Display for NonceKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a nonce key is 32 bytes as 64 hex digits or 43 base64url characters")
    }
}

impl std::error::Error for NonceKeyError {}

/// Why a proof's nonce was not accepted; every case answers `use_dpop_nonce` with a fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceRejection {
    /// The proof has no `nonce` claim.
    Missing,
    /// Not a nonce this server made (bad encoding, unknown or retired key, bad MAC).
    Invalid,
    /// Older than the nonce lifetime.
    Stale,
}

impl NonceRejection {
    /// A short reason for logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Stale => "stale",
        }
    }
}

/// An accepted nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptedNonce {
    issued_at: u64,
    /// Past half its lifetime: the response should carry the next one (RFC 9449 §8.2).
    pub refresh: bool,
}

impl AcceptedNonce {
    /// When the nonce was issued, seconds since the epoch.
    #[must_use]
    pub const fn issued_at(&self) -> u64 {
        self.issued_at
    }
}

struct Keys {
    current: NonceKey,
    /// Previous keys and the time (seconds since the epoch) until which they are accepted.
    previous: Vec<(NonceKey, u64)>,
}

/// Issues and checks nonces. Cheap to clone; clones share keys.
#[derive(Clone)]
pub struct NonceIssuer {
    keys: Arc<RwLock<Keys>>,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl NonceIssuer {
    /// An issuer signing with `current`, nonces valid for [`DEFAULT_NONCE_LIFETIME`].
    #[must_use]
    pub fn new(current: NonceKey) -> Self {
        Self {
            keys: Arc::new(RwLock::new(Keys { current, previous: Vec::new() })),
            lifetime: DEFAULT_NONCE_LIFETIME,
            clock: Arc::new(SystemClock),
        }
    }

    /// The issuer of this process: its key is generated at first use and shared by every issuer
    /// this returns, so guards built per worker or per connection accept each other's nonces.
    /// Replicas in other processes need a key they share: [`NonceIssuer::new`] with
    /// [`NonceKey::from_text`].
    ///
    /// # Errors
    ///
    /// The random generator failed (the next call tries again).
    pub fn process_wide() -> Result<Self, CryptoError> {
        static KEYS: Mutex<Option<Arc<RwLock<Keys>>>> = Mutex::new(None);
        let mut shared = KEYS.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = match &*shared {
            Some(keys) => Arc::clone(keys),
            None => {
                let keys = Arc::new(RwLock::new(Keys { current: NonceKey::generate(0)?, previous: Vec::new() }));
                *shared = Some(Arc::clone(&keys));
                keys
            }
        };
        Ok(Self { keys, lifetime: DEFAULT_NONCE_LIFETIME, clock: Arc::new(SystemClock) })
    }

    /// How long a nonce is accepted.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The configured lifetime, for the verifier builder's range check.
    pub(crate) const fn lifetime_setting(&self) -> Duration {
        self.lifetime
    }

    /// The clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Also accepts nonces made with `key` until `accepted_until` (seconds since the epoch):
    /// the previous key of every replica during a rotation.
    #[must_use]
    pub fn previous_key(self, key: NonceKey, accepted_until: u64) -> Self {
        self.write_keys().previous.push((key, accepted_until));
        self
    }

    /// Makes `key` the signing key; the old one stays accepted for one nonce lifetime.
    pub fn rotate(&self, key: NonceKey) {
        let until = self.clock.now().saturating_add(self.lifetime.as_secs());
        let mut keys = self.write_keys();
        let old = std::mem::replace(&mut keys.current, key);
        keys.previous.push((old, until));
    }

    /// A fresh nonce (`1*NQCHAR`: base64url).
    ///
    /// # Errors
    ///
    /// The random generator failed.
    pub fn issue(&self) -> Result<String, CryptoError> {
        let mut random = [0u8; RANDOM_LEN];
        crypto::fill_random(&mut random)?;
        let keys = self.read_keys();
        let mut nonce = Vec::with_capacity(NONCE_LEN);
        nonce.push(VERSION);
        nonce.push(keys.current.id);
        nonce.extend_from_slice(&self.clock.now().to_be_bytes());
        nonce.extend_from_slice(&random);
        let tag = keys.current.mac(&nonce).finalize().into_bytes();
        nonce.extend(tag.into_iter().take(MAC_LEN));
        Ok(URL_SAFE_NO_PAD.encode(nonce))
    }

    /// Checks a proof's `nonce` claim (RFC 9449 §4.3 check 10).
    ///
    /// # Errors
    ///
    /// Why it is not acceptable.
    pub fn check(&self, nonce: Option<&str>) -> Result<AcceptedNonce, NonceRejection> {
        let nonce = nonce.ok_or(NonceRejection::Missing)?;
        // Bound the work before decoding: a nonce has exactly this many characters.
        if nonce.len() != (NONCE_LEN * 4).div_ceil(3) {
            return Err(NonceRejection::Invalid);
        }
        let raw = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| NonceRejection::Invalid)?;
        let (body, tag) = raw.split_at_checked(BODY_LEN).ok_or(NonceRejection::Invalid)?;
        let (&version, rest) = body.split_first().ok_or(NonceRejection::Invalid)?;
        let (&key_id, rest) = rest.split_first().ok_or(NonceRejection::Invalid)?;
        let issued: [u8; 8] = rest.get(..8).and_then(|b| b.try_into().ok()).ok_or(NonceRejection::Invalid)?;
        if version != VERSION || tag.len() != MAC_LEN {
            return Err(NonceRejection::Invalid);
        }
        let now = self.clock.now();
        let key = self.key_for(key_id, now).ok_or(NonceRejection::Invalid)?;
        // Constant-time comparison of the truncated tag.
        key.mac(body).verify_truncated_left(tag).map_err(|_| NonceRejection::Invalid)?;
        let issued_at = u64::from_be_bytes(issued);
        if issued_at > now.saturating_add(MAX_ISSUER_SKEW) {
            return Err(NonceRejection::Invalid);
        }
        let age = now.saturating_sub(issued_at);
        if age > self.lifetime.as_secs() {
            return Err(NonceRejection::Stale);
        }
        Ok(AcceptedNonce { issued_at, refresh: age.saturating_mul(2) > self.lifetime.as_secs() })
    }

    fn key_for(&self, id: u8, now: u64) -> Option<NonceKey> {
        let keys = self.read_keys();
        if keys.current.id == id {
            return Some(keys.current.clone());
        }
        keys.previous.iter().find(|(key, until)| key.id == id && now <= *until).map(|(key, _)| key.clone())
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        // Keys are replaced whole under the lock; a poisoned lock still holds consistent keys.
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}
