//! The proof's public key: the `jwk` header parameter (RFC 7517), its fit with `alg`
//! (RFC 9449 §4.3 check 7) and its RFC 7638 thumbprint.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::MapAccess;
use subtle::ConstantTimeEq;

use crate::crypto;
use crate::error::DpopError;
use crate::json::{self, JsonObject, Rejection};
use crate::proof::algorithm::Algorithm;

/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3 requires 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: bounds the verification cost a client can impose.
pub const MAX_RSA_BITS: usize = 4096;
/// Largest RSA public exponent accepted, in bytes.
const MAX_RSA_EXPONENT_BYTES: usize = 4;

/// An elliptic curve for ECDSA keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// NIST P-256 (`ES256`).
    P256,
    /// NIST P-384 (`ES384`).
    P384,
    /// NIST P-521 (`ES512`).
    P521,
}

impl EcCurve {
    /// The JWK `crv` name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// Length of one coordinate in bytes (RFC 7518 §6.2.1.2).
    const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }
}

/// A validated public key from a proof's `jwk`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// An ECDSA key: the SEC 1 uncompressed point `04 || x || y`.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// The uncompressed point.
        point: Box<[u8]>,
    },
    /// An Ed25519 key (RFC 8037).
    Ed25519 {
        /// The 32-byte public key.
        x: [u8; 32],
    },
    /// An RSA key.
    Rsa {
        /// The modulus, big-endian, no leading zero.
        n: Box<[u8]>,
        /// The public exponent, big-endian, no leading zero.
        e: Box<[u8]>,
    },
}

impl PublicKey {
    /// Whether this key can verify signatures made with `alg` (RFC 9449 §4.3 check 7).
    #[must_use]
    pub fn fits(&self, alg: Algorithm) -> bool {
        match (self, alg.scheme()) {
            (Self::Ec { curve, .. }, Algorithm::ES256) => *curve == EcCurve::P256,
            (Self::Ec { curve, .. }, Algorithm::ES384) => *curve == EcCurve::P384,
            (Self::Ec { curve, .. }, Algorithm::ES512) => *curve == EcCurve::P521,
            (Self::Ed25519 { .. }, Algorithm::EdDSA) => true,
            (Self::Rsa { .. }, Algorithm::RS256 | Algorithm::PS256) => true,
            _ => false,
        }
    }

    /// Parses and validates a public JWK (JSON text): the key, and its RFC 7638 thumbprint.
    /// Private members are refused, member names must be unique, unknown members are ignored.
    ///
    /// # Errors
    ///
    /// The JSON is not a usable public EC, OKP (Ed25519) or RSA key.
    pub fn from_jwk(jwk: &str) -> Result<(Self, Thumbprint), DpopError> {
        let parsed: JwkMembers<'_> = json::parse_object(jwk.as_bytes(), "jwk")?;
        let validated = parsed.validate()?;
        Ok((validated.key, validated.thumbprint))
    }

    /// Verifies a JWS signature (`r || s` for ECDSA) over `signing_input` with this key.
    ///
    /// # Errors
    ///
    /// [`DpopError::KeyAlgorithmMismatch`] when the key does not fit `alg` or the backend lacks
    /// it, [`DpopError::InvalidKey`] for an unusable point, [`DpopError::InvalidSignature`].
    pub fn verify(&self, alg: Algorithm, signing_input: &[u8], signature: &[u8]) -> Result<(), DpopError> {
        crypto::verify_signature(alg, self, signing_input, signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ec { curve, .. } => f.debug_struct("Ec").field("curve", curve).finish_non_exhaustive(),
            Self::Ed25519 { .. } => f.debug_struct("Ed25519").finish_non_exhaustive(),
            Self::Rsa { n, .. } => f.debug_struct("Rsa").field("bits", &(n.len() * 8)).finish_non_exhaustive(),
        }
    }
}

/// An RFC 7638 JWK SHA-256 thumbprint: the `jkt` that binds tokens to keys (RFC 9449 §6).
///
/// The base64url `jkt` text is encoded once, when the thumbprint is made, so handlers and logs
/// read it ([`as_jkt`](Self::as_jkt)) without allocating.
#[derive(Clone, Copy)]
pub struct Thumbprint {
    digest: [u8; 32],
    jkt: [u8; JKT_LEN],
}

/// Base64url without padding of a SHA-256 digest: 43 characters.
const JKT_LEN: usize = 43;

impl Thumbprint {
    /// The raw SHA-256 digest.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The thumbprint from its 32 digest bytes.
    #[must_use]
    pub fn from_bytes(digest: [u8; 32]) -> Self {
        let mut jkt = [0u8; JKT_LEN];
        // 32 bytes always encode to exactly 43 base64url characters.
        let _ = URL_SAFE_NO_PAD.encode_slice(digest, &mut jkt);
        Self { digest, jkt }
    }

    /// The thumbprint in its base64url `jkt` form, as in a token's `cnf.jkt`.
    #[must_use]
    pub fn as_jkt(&self) -> &str {
        // Base64url is ASCII; the fallback is unreachable and never a wrong match.
        std::str::from_utf8(&self.jkt).unwrap_or_default()
    }

    /// Whether `jkt` (base64url, as in a token's `cnf.jkt`) names this thumbprint.
    /// Compared in constant time.
    #[must_use]
    pub fn matches_jkt(&self, jkt: &str) -> bool {
        let mut decoded = [0u8; 32];
        let ok = matches!(URL_SAFE_NO_PAD.decode_slice(jkt, &mut decoded), Ok(32));
        ok & bool::from(decoded.ct_eq(&self.digest))
    }

    /// Computes the thumbprint of a JWK given as JSON text (any member order, extra members
    /// ignored, private members rejected).
    ///
    /// # Errors
    ///
    /// The key is malformed, private, or of an unknown type.
    pub fn of_jwk_json(jwk: &str) -> Result<Self, DpopError> {
        PublicKey::from_jwk(jwk).map(|(_, thumbprint)| thumbprint)
    }
}

impl PartialEq for Thumbprint {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Eq for Thumbprint {}

impl std::hash::Hash for Thumbprint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digest.hash(state);
    }
}

impl fmt::Display for Thumbprint {
    /// Base64url without padding: the `jkt` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_jkt())
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({self})")
    }
}

/// A JWK whose members were read strictly, before validation.
#[derive(Default)]
pub(crate) struct JwkMembers<'a> {
    kty: Option<Cow<'a, str>>,
    crv: Option<Cow<'a, str>>,
    x: Option<Cow<'a, str>>,
    y: Option<Cow<'a, str>>,
    n: Option<Cow<'a, str>>,
    e: Option<Cow<'a, str>>,
    has_private_member: bool,
}

/// A validated key and its thumbprint.
pub(crate) struct ValidatedJwk {
    pub(crate) key: PublicKey,
    pub(crate) thumbprint: Thumbprint,
}

impl<'de> JsonObject<'de> for JwkMembers<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A, rejection: &Rejection) -> Result<(), A::Error> {
        let slot = match name {
            "kty" => &mut self.kty,
            "crv" => &mut self.crv,
            "x" => &mut self.x,
            "y" => &mut self.y,
            "n" => &mut self.n,
            "e" => &mut self.e,
            // RFC 7518 §6.2.2, §6.3.2, §6.4.1, RFC 8037 §2: private or symmetric key material.
            "d" | "p" | "q" | "dp" | "dq" | "qi" | "oth" | "k" => {
                self.has_private_member = true;
                return json::skip(map, rejection);
            }
            _ => return json::skip(map, rejection),
        };
        *slot = Some(json::string(map, rejection, jwk_member_name(name))?);
        Ok(())
    }
}

/// A `'static` name for a JWK member we read, for error messages.
fn jwk_member_name(name: &str) -> &'static str {
    match name {
        "kty" => "jwk.kty",
        "crv" => "jwk.crv",
        "x" => "jwk.x",
        "y" => "jwk.y",
        "n" => "jwk.n",
        _ => "jwk.e",
    }
}

impl JwkMembers<'_> {
    /// Checks that this is a well-formed public key and computes its thumbprint.
    pub(crate) fn validate(&self) -> Result<ValidatedJwk, DpopError> {
        // RFC 9449 §4.3 check 7: the key must be public; `kty: oct` is a shared secret.
        if self.has_private_member {
            return Err(DpopError::PrivateKey);
        }
        let kty = self.kty.as_deref().ok_or(DpopError::MissingMember("jwk.kty"))?;
        match kty {
            "EC" => self.validate_ec(),
            "OKP" => self.validate_okp(),
            "RSA" => self.validate_rsa(),
            "oct" => Err(DpopError::PrivateKey),
            _ => Err(DpopError::InvalidKey("unsupported key type")),
        }
    }

    fn validate_ec(&self) -> Result<ValidatedJwk, DpopError> {
        let (crv, x, y) = (require(&self.crv, "jwk.crv")?, require(&self.x, "jwk.x")?, require(&self.y, "jwk.y")?);
        let curve = match crv {
            "P-256" => EcCurve::P256,
            "P-384" => EcCurve::P384,
            "P-521" => EcCurve::P521,
            _ => return Err(DpopError::InvalidKey("unsupported curve")),
        };
        let len = curve.coordinate_len();
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        decode_exact(x, len, "wrong coordinate size", &mut point)?;
        decode_exact(y, len, "wrong coordinate size", &mut point)?;
        // RFC 7638 §3.2: required members in lexicographic order, no whitespace.
        let thumbprint = thumbprint_of(&[("crv", crv), ("kty", "EC"), ("x", x), ("y", y)]);
        Ok(ValidatedJwk { key: PublicKey::Ec { curve, point: point.into_boxed_slice() }, thumbprint })
    }

    fn validate_okp(&self) -> Result<ValidatedJwk, DpopError> {
        let (crv, x) = (require(&self.crv, "jwk.crv")?, require(&self.x, "jwk.x")?);
        if crv != "Ed25519" {
            return Err(DpopError::InvalidKey("unsupported curve"));
        }
        let mut bytes = Vec::with_capacity(32);
        decode_exact(x, 32, "wrong key size", &mut bytes)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| DpopError::InvalidKey("wrong key size"))?;
        let thumbprint = thumbprint_of(&[("crv", crv), ("kty", "OKP"), ("x", x)]);
        Ok(ValidatedJwk { key: PublicKey::Ed25519 { x: key }, thumbprint })
    }

    fn validate_rsa(&self) -> Result<ValidatedJwk, DpopError> {
        let (n_text, e_text) = (require(&self.n, "jwk.n")?, require(&self.e, "jwk.e")?);
        // Bound the text before decoding: base64 of 4096 bits is 683 characters.
        if n_text.len() > MAX_RSA_BITS.div_ceil(6) {
            return Err(DpopError::InvalidKey("RSA modulus too large"));
        }
        if e_text.len() > MAX_RSA_EXPONENT_BYTES.div_ceil(3) * 4 {
            return Err(DpopError::InvalidKey("RSA exponent too large"));
        }
        let n = decode(n_text)?;
        let e = decode(e_text)?;
        // RFC 7518 §6.3.1: minimal big-endian integers, so one key has one thumbprint.
        if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
            return Err(DpopError::InvalidKey("non-minimal RSA integer"));
        }
        let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
        if bits < MIN_RSA_BITS {
            return Err(DpopError::InvalidKey("RSA modulus too small"));
        }
        if bits > MAX_RSA_BITS {
            return Err(DpopError::InvalidKey("RSA modulus too large"));
        }
        if e.len() > MAX_RSA_EXPONENT_BYTES || e.last().is_none_or(|b| b & 1 == 0) {
            return Err(DpopError::InvalidKey("invalid RSA exponent"));
        }
        let thumbprint = thumbprint_of(&[("e", e_text), ("kty", "RSA"), ("n", n_text)]);
        Ok(ValidatedJwk { key: PublicKey::Rsa { n: n.into_boxed_slice(), e: e.into_boxed_slice() }, thumbprint })
    }
}

fn require<'s>(member: &'s Option<Cow<'_, str>>, name: &'static str) -> Result<&'s str, DpopError> {
    member.as_deref().ok_or(DpopError::MissingMember(name))
}

fn decode(text: &str) -> Result<Vec<u8>, DpopError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| DpopError::InvalidKey("member is not base64url"))
}

/// Decodes base64url `text` that must hold exactly `len` bytes, appending them to `out`.
fn decode_exact(text: &str, len: usize, wrong_len: &'static str, out: &mut Vec<u8>) -> Result<(), DpopError> {
    // base64url without padding of `len` bytes has exactly this many characters.
    if text.len() != (len * 4).div_ceil(3) {
        return Err(DpopError::InvalidKey(wrong_len));
    }
    let start = out.len();
    out.resize(start + len, 0);
    let target = out.get_mut(start..).ok_or(DpopError::InvalidKey(wrong_len))?;
    match URL_SAFE_NO_PAD.decode_slice(text, target) {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err(DpopError::InvalidKey(wrong_len)),
        Err(_) => Err(DpopError::InvalidKey("member is not base64url")),
    }
}

/// SHA-256 of the RFC 7638 canonical JSON `{"a":"…","b":"…"}` of `members` (already sorted).
/// The values are base64url or fixed names, so they need no JSON escaping.
fn thumbprint_of(members: &[(&str, &str)]) -> Thumbprint {
    let mut canonical = String::with_capacity(256);
    canonical.push('{');
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":\"");
        canonical.push_str(value);
        canonical.push('"');
    }
    canonical.push('}');
    Thumbprint::from_bytes(crypto::sha256(canonical.as_bytes()))
}
