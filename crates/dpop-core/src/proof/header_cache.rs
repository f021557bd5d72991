//! The JOSE headers of proofs that verified, kept per verifier.
//!
//! A client signs every proof with one key, and its JOSE header (`typ`, `alg`, `jwk`) is the
//! same bytes each time. The header checks (RFC 9449 §4.3 checks 4, 5 and 7, and `crit`) are a
//! function of those bytes and of the verifier's fixed configuration, so their outcome for a
//! header seen before is the outcome recorded then: the verifier looks the header text up and
//! skips decoding, parsing and validating the key again, and the backend's parse of the key.
//! Only headers whose proof passed every check up to and including its signature are kept, so
//! filling the cache costs a valid signature per entry, and a header never seen is checked in
//! full. The claims, the signature and replay are checked on every proof.

use std::sync::Arc;

use dashmap::DashMap;

use crate::crypto::PreparedKey;
use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::{PublicKey, Thumbprint};

/// Headers kept per verifier: a few thousand clients' keys, a few megabytes at most.
pub(crate) const HEADER_CACHE_CAPACITY: usize = 4096;

/// Longer header segments are checked every time and never kept (an EC or Ed25519 `jwk` header
/// is about 300 characters, an RSA 4096 one about 1,000), which bounds the cache's memory.
pub(crate) const MAX_CACHED_HEADER_LEN: usize = 2048;

/// A header that passed its checks, with everything the rest of the verification needs.
pub(crate) struct CheckedHeader {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: PublicKey,
    pub(crate) thumbprint: Thumbprint,
    pub(crate) prepared: PreparedKey,
}

/// Header segment text (base64url, as sent) → its checked header.
pub(crate) struct HeaderCache {
    entries: DashMap<Box<str>, Arc<CheckedHeader>>,
    capacity: usize,
}

impl HeaderCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: DashMap::new(), capacity }
    }

    /// The checked header for exactly this header segment, if one was kept.
    pub(crate) fn get(&self, segment: &str) -> Option<Arc<CheckedHeader>> {
        self.entries.get(segment).map(|entry| Arc::clone(entry.value()))
    }

    /// Keeps `header`, checked from `segment`, for the next proof with the same header.
    ///
    /// When the cache is full it is emptied first: keys churning through it (a flood of fresh
    /// keys, each paying for a signature) cost honest clients one full check each, and never
    /// more memory than the capacity.
    pub(crate) fn insert(&self, segment: &str, header: CheckedHeader) -> Arc<CheckedHeader> {
        let header = Arc::new(header);
        if self.capacity == 0 || segment.len() > MAX_CACHED_HEADER_LEN {
            return header;
        }
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
        self.entries.insert(segment.into(), Arc::clone(&header));
        header
    }

    /// Headers kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn checked() -> CheckedHeader {
        let (key, thumbprint) = PublicKey::from_jwk(
            r#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#,
        )
        .unwrap();
        let prepared = PreparedKey::new(Algorithm::ES256, &key).unwrap();
        CheckedHeader { algorithm: Algorithm::ES256, key, thumbprint, prepared }
    }

    #[test]
    fn a_kept_header_is_found_by_its_exact_text_only() {
        let cache = HeaderCache::new(4);
        cache.insert("eyJhbGciOiJFUzI1NiJ9", checked());
        assert!(cache.get("eyJhbGciOiJFUzI1NiJ9").is_some());
        assert!(cache.get("eyJhbGciOiJFUzI1NiJ").is_none());
        assert!(cache.get("eyJhbGciOiJFUzI1NiJ9x").is_none());
    }

    #[test]
    fn a_full_cache_is_emptied_before_the_next_header_and_never_exceeds_its_capacity() {
        let cache = HeaderCache::new(3);
        for i in 0..3 {
            cache.insert(&format!("header-{i}"), checked());
        }
        assert_eq!(cache.len(), 3);
        cache.insert("header-3", checked());
        assert_eq!(cache.len(), 1);
        assert!(cache.get("header-0").is_none());
        assert!(cache.get("header-3").is_some());
    }

    #[test]
    fn long_headers_and_a_zero_capacity_keep_nothing() {
        let cache = HeaderCache::new(4);
        let long = "a".repeat(MAX_CACHED_HEADER_LEN + 1);
        cache.insert(&long, checked());
        assert_eq!(cache.len(), 0);
        let disabled = HeaderCache::new(0);
        disabled.insert("header", checked());
        assert_eq!(disabled.len(), 0);
    }
}
