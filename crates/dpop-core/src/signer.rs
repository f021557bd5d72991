//! The client side: an ES256 key and proofs signed with it (RFC 9449 §4). Rust MCP clients, the
//! tests and the tools use it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::clock::{Clock, SystemClock};
use crate::crypto::{self, CryptoError, Es256KeyPair};
use crate::proof::jwk::Thumbprint;
use crate::token::binding::access_token_hash;

/// An ES256 (P-256) key pair that signs DPoP proofs.
pub struct DpopKey {
    pair: Es256KeyPair,
    x: String,
    y: String,
    thumbprint: Thumbprint,
}

/// A private JWK that cannot be used as a DPoP signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError(&'static str);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid DPoP signing key: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

impl From<CryptoError> for KeyError {
    fn from(error: CryptoError) -> Self {
        Self(error.as_str())
    }
}

impl DpopKey {
    /// Generates a fresh key from the operating system's random generator.
    ///
    /// # Errors
    ///
    /// The crypto backend failed.
    pub fn generate() -> Result<Self, CryptoError> {
        Self::from_pair(Es256KeyPair::generate()?)
    }

    /// Loads a private P-256 JWK (`kty` `EC`, `crv` `P-256`, `x`, `y`, `d`).
    ///
    /// # Errors
    ///
    /// The JSON is not such a key, or `d` does not belong to `x`/`y`.
    pub fn from_jwk(private_jwk: &str) -> Result<Self, KeyError> {
        let jwk: Map<String, Value> = serde_json::from_str(private_jwk).map_err(|_| KeyError("not a JSON object"))?;
        let member = |name: &'static str| jwk.get(name).and_then(Value::as_str).ok_or(KeyError(name));
        if member("kty")? != "EC" || member("crv")? != "P-256" {
            return Err(KeyError("only EC P-256 keys sign ES256 proofs"));
        }
        let decode = |name: &'static str| URL_SAFE_NO_PAD.decode(member(name)?).map_err(|_| KeyError(name));
        let (x, y, d) = (decode("x")?, decode("y")?, decode("d")?);
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Ok(Self::from_pair(Es256KeyPair::from_private_key(&d, &point)?)?)
    }

    fn from_pair(pair: Es256KeyPair) -> Result<Self, CryptoError> {
        let point = pair.public_point();
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(CryptoError::KeyEncoding);
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = Thumbprint::from_bytes(crypto::sha256(canonical.as_bytes()));
        Ok(Self { pair, x, y, thumbprint })
    }

    /// The public JWK, as it goes into a proof's `jwk` header.
    #[must_use]
    pub fn public_jwk(&self) -> Value {
        json!({ "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y })
    }

    /// The private JWK (with `d`), for storing the key.
    ///
    /// # Errors
    ///
    /// The backend could not export the key.
    pub fn private_jwk(&self) -> Result<Value, CryptoError> {
        let d = URL_SAFE_NO_PAD.encode(self.pair.private_scalar()?);
        Ok(json!({ "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y, "d": d }))
    }

    /// The key's RFC 7638 thumbprint: the `jkt` tokens get bound to.
    #[must_use]
    pub const fn thumbprint(&self) -> Thumbprint {
        self.thumbprint
    }

    /// Starts a proof for a request with `method` to `url`.
    pub fn proof<'a>(&'a self, method: &'a str, url: &'a str) -> ProofBuilder<'a> {
        ProofBuilder { key: self, method, url, access_token: None, nonce: None, issued_at: None, jti: None }
    }

    /// Signs an arbitrary JOSE header and payload (JSON texts) as a compact ES256 JWS.
    ///
    /// Low level, for tests and tools that need proofs no honest client would make.
    ///
    /// # Errors
    ///
    /// The backend failed to sign.
    pub fn sign_jws(&self, header: &str, payload: &str) -> Result<String, CryptoError> {
        let mut jws = URL_SAFE_NO_PAD.encode(header);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
        let signature = self.pair.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey").field("thumbprint", &self.thumbprint).finish_non_exhaustive()
    }
}

/// A proof being built. [`sign`](ProofBuilder::sign) makes the `DPoP` header value.
#[derive(Debug)]
#[must_use]
pub struct ProofBuilder<'a> {
    key: &'a DpopKey,
    method: &'a str,
    url: &'a str,
    access_token: Option<&'a str>,
    nonce: Option<&'a str>,
    issued_at: Option<i64>,
    jti: Option<&'a str>,
}

impl<'a> ProofBuilder<'a> {
    /// Binds the proof to an access token (`ath`), for requests to a resource server.
    pub fn access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// Includes a server-provided nonce (RFC 9449 §8, §9).
    pub fn nonce(mut self, nonce: &'a str) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Sets `iat` (default: now, by the system clock).
    pub fn issued_at(mut self, iat: i64) -> Self {
        self.issued_at = Some(iat);
        self
    }

    /// Sets `jti` (default: 128 random bits, base64url).
    pub fn jti(mut self, jti: &'a str) -> Self {
        self.jti = Some(jti);
        self
    }

    /// The claims this proof will carry, as JSON.
    ///
    /// # Errors
    ///
    /// The random generator failed while making a `jti`.
    pub fn claims(&self) -> Result<Value, CryptoError> {
        let jti = match self.jti {
            Some(jti) => jti.to_owned(),
            None => {
                let mut random = [0u8; 16];
                crypto::fill_random(&mut random)?;
                URL_SAFE_NO_PAD.encode(random)
            }
        };
        let iat = self.issued_at.unwrap_or_else(|| i64::try_from(SystemClock.now()).unwrap_or(i64::MAX));
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(jti));
        claims.insert("htm".into(), self.method.into());
        // RFC 9449 §4.2: the target URI without query and fragment.
        claims.insert("htu".into(), crate::proof::htu::without_query(self.url).into());
        claims.insert("iat".into(), iat.into());
        if let Some(token) = self.access_token {
            claims.insert("ath".into(), access_token_hash(token).into());
        }
        if let Some(nonce) = self.nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        Ok(Value::Object(claims))
    }

    /// The JOSE header this proof will carry.
    #[must_use]
    pub fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.public_jwk() })
    }

    /// Signs the proof: the compact JWS for the `DPoP` header.
    ///
    /// # Errors
    ///
    /// The backend failed to sign.
    pub fn sign(self) -> Result<String, CryptoError> {
        let claims = self.claims()?;
        self.key.sign_jws(&self.header().to_string(), &claims.to_string())
    }
}
