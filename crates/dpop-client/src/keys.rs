//! Keeping the key: a private JWK (RFC 7517) or PKCS#8 PEM (RFC 5958, RFC 7468) file that only
//! its owner can read.
//!
//! A DPoP-bound token is worth exactly as much as the key it is bound to: keep the key as long
//! as the tokens (refresh tokens included), and nowhere anyone else can read it. Files written
//! here are created with mode `0600` on Unix (owner read/write), and an existing file is
//! narrowed to `0600` before the key is written into it.
//!
//! ```
//! use dpop_client::keys;
//! use dpop_core::DpopKey;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = DpopKey::generate()?;
//! let pem = keys::to_pkcs8_pem(&key)?;
//! assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
//! let again = keys::from_pkcs8_pem(&pem)?;
//! assert_eq!(again.thumbprint(), key.thumbprint());
//! # Ok(())
//! # }
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_core::DpopKey;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use serde_json::Value;

use crate::error::ClientError;

/// No key file this crate writes comes near this; anything larger is not read.
const MAX_KEY_FILE_LEN: u64 = 16 * 1024;

/// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), wiped from memory when dropped.
///
/// # Errors
///
/// The backend could not export the key.
pub fn to_pkcs8_pem(key: &DpopKey) -> Result<Zeroizing<String>, ClientError> {
    let jwk = key.private_jwk()?;
    let d = Zeroizing::new(decode_member(&jwk, "d")?);
    let secret = p256::SecretKey::from_slice(&d).map_err(|_| ClientError::Pem.logged())?;
    secret.to_pkcs8_pem(LineEnding::LF).map_err(|_| ClientError::Pem.logged())
}

/// Reads a PKCS#8 PEM P-256 private key.
///
/// # Errors
///
/// [`ClientError::Pem`] for anything else.
pub fn from_pkcs8_pem(pem: &str) -> Result<DpopKey, ClientError> {
    let secret = p256::SecretKey::from_pkcs8_pem(pem.trim()).map_err(|_| ClientError::Pem.logged())?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(ClientError::Pem.logged());
    };
    let d = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.to_bytes()));
    let jwk = Zeroizing::new(
        serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y), "d": d.as_str(),
        })
        .to_string(),
    );
    Ok(DpopKey::from_jwk(&jwk)?)
}

/// Writes the key as a private JWK to `path`, readable by its owner only.
///
/// # Errors
///
/// The file could not be written, or the backend could not export the key.
pub fn save_jwk(key: &DpopKey, path: impl AsRef<Path>) -> Result<(), ClientError> {
    let jwk = Zeroizing::new(key.private_jwk()?.to_string());
    write_private(path.as_ref(), jwk.as_bytes())
}

/// Writes the key as PKCS#8 PEM to `path`, readable by its owner only.
///
/// # Errors
///
/// The file could not be written, or the backend could not export the key.
pub fn save_pem(key: &DpopKey, path: impl AsRef<Path>) -> Result<(), ClientError> {
    let pem = to_pkcs8_pem(key)?;
    write_private(path.as_ref(), pem.as_bytes())
}

/// Reads a key file written by [`save_jwk`] or [`save_pem`] (or any private P-256 JWK or PKCS#8
/// PEM): the format is recognized from the text.
///
/// # Errors
///
/// The file could not be read, is too large, or holds no P-256 private key.
pub fn load(path: impl AsRef<Path>) -> Result<DpopKey, ClientError> {
    let path = path.as_ref();
    let io = |source| ClientError::Io { path: path.to_owned(), source }.logged();
    let file = File::open(path).map_err(io)?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE_LEN + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(ClientError::KeyFileTooLarge(path.to_owned()).logged());
    }
    if text.trim_start().starts_with('{') { Ok(DpopKey::from_jwk(&text)?) } else { from_pkcs8_pem(&text) }
}

/// Loads the key at `path`, or generates one and saves it there as a JWK when there is no file.
///
/// # Errors
///
/// As [`load`] and [`save_jwk`].
pub fn load_or_generate(path: impl AsRef<Path>) -> Result<DpopKey, ClientError> {
    let path = path.as_ref();
    if path.exists() {
        return load(path);
    }
    let key = DpopKey::generate()?;
    save_jwk(&key, path)?;
    tracing::info!(jkt = %key.thumbprint(), "generated a new DPoP key");
    Ok(key)
}

fn decode_member(jwk: &Value, name: &'static str) -> Result<Vec<u8>, ClientError> {
    let text = jwk.get(name).and_then(Value::as_str).ok_or_else(|| ClientError::Pem.logged())?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| ClientError::Pem.logged())
}

/// Creates or truncates `path` with owner-only permissions, narrowing an existing file's mode
/// before anything secret is written into it.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), ClientError> {
    let io = |source| ClientError::Io { path: path.to_owned(), source }.logged();
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options.open(path).map_err(io)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        write_all(file, contents).map_err(io)
    }
    #[cfg(not(unix))]
    {
        write_all(options.open(path).map_err(io)?, contents).map_err(io)
    }
}

fn write_all(mut file: File, contents: &[u8]) -> std::io::Result<()> {
    file.write_all(contents)?;
    file.sync_all()
}
