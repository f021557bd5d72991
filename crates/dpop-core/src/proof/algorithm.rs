//! JWS signature algorithms a DPoP proof may use (RFC 9449 §4.2, RFC 7518).

use std::fmt;

/// An asymmetric JWS algorithm. Symmetric algorithms and `none` have no variant, so they can
/// never be allowed (RFC 9449 §4.2: "MUST NOT be none or an identifier for a symmetric algorithm").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256. Every backend has it; the default allow-list.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// ECDSA with P-521 and SHA-512.
    ES512,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDSA,
    /// EdDSA with Ed25519 under its fully-specified name (RFC 9864 §2.2), as some clients sign
    /// proofs. The same key type and verification as [`EdDSA`](Self::EdDSA): an allow-list
    /// holding either holds both.
    Ed25519,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048 to 4096-bit keys.
    RS256,
    /// RSASSA-PSS with SHA-256, 2048 to 4096-bit keys.
    PS256,
}

impl Algorithm {
    /// Every algorithm, in the order used for `algs` and metadata.
    pub const ALL: [Self; 7] =
        [Self::ES256, Self::ES384, Self::ES512, Self::EdDSA, Self::Ed25519, Self::RS256, Self::PS256];

    /// The JOSE name, as in the `alg` header parameter.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
        }
    }

    /// The algorithm with this exact JOSE name (names are case-sensitive, RFC 7515 §4.1.1).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// Whether the compiled crypto backend can verify this algorithm.
    #[must_use]
    pub fn is_supported(self) -> bool {
        crate::crypto::supports(self)
    }

    /// The signature scheme behind the name: `Ed25519` is `EdDSA` over Ed25519 (RFC 9864), and
    /// this library's EdDSA supports no other curve, so both names verify alike.
    #[must_use]
    pub const fn scheme(self) -> Self {
        match self {
            Self::Ed25519 => Self::EdDSA,
            other => other,
        }
    }

    /// One bit per scheme, so allowing one name of a scheme allows the other.
    const fn bit(self) -> u8 {
        1 << self.scheme() as u8
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of algorithms: the allow-list a verifier enforces and advertises.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// The set holding only `alg`.
    #[must_use]
    pub const fn only(alg: Algorithm) -> Self {
        Self(alg.bit())
    }

    /// Whether `alg` is in the set.
    #[must_use]
    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// The set with `alg` added.
    #[must_use]
    pub const fn with(self, alg: Algorithm) -> Self {
        Self(self.0 | alg.bit())
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in the set, in [`Algorithm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL.into_iter().filter(move |alg| self.contains(*alg))
    }

    /// The names separated by single spaces, as in the `algs` challenge parameter (RFC 9449 §7.1).
    #[must_use]
    pub fn to_space_separated(self) -> String {
        let names: Vec<&str> = self.iter().map(Algorithm::name).collect();
        names.join(" ")
    }
}

impl Default for AlgorithmSet {
    /// `ES256` only: the one algorithm every client and every backend has.
    fn default() -> Self {
        Self::only(Algorithm::ES256)
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
