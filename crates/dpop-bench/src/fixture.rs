//! Keys, the access token, and pools of pre-signed proofs.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_core::{Algorithm, DpopKey, PublicKey};
use serde_json::json;

use crate::BoxError;

/// The protected resource: the token audience and the guard's public origin plus path. The
/// load generator connects to 127.0.0.1 whatever this says; the guard rebuilds the target URI
/// from its configured origin, as behind a reverse proxy.
pub const RESOURCE: &str = "https://mcp.example.com/mcp";
/// The request path.
pub const PATH: &str = "/mcp";
/// The request method (MCP Streamable HTTP posts).
pub const METHOD: &str = "POST";
/// The authorization server that signs the access token.
pub const ISSUER: &str = "https://as.example.com";
/// The `kid` of the authorization server's key.
pub const AS_KID: &str = "bench-as-1";

/// Everything both sides need: generated fresh for each run, nothing on disk.
pub struct Fixture {
    /// The client's DPoP key.
    pub client: DpopKey,
    /// The authorization server's token signing key.
    pub authorization_server: DpopKey,
    /// A JWT access token (RFC 9068 `at+jwt`) for [`RESOURCE`], bound to the client key.
    pub access_token: String,
}

impl Fixture {
    /// Fresh keys and a token valid for an hour.
    ///
    /// # Errors
    ///
    /// The crypto backend failed.
    pub fn generate() -> Result<Self, BoxError> {
        let client = DpopKey::generate()?;
        let authorization_server = DpopKey::generate()?;
        let access_token = mint_access_token(&authorization_server, &client)?;
        Ok(Self { client, authorization_server, access_token })
    }

    /// The authorization server's public JWK set, as the resource server loads it.
    #[must_use]
    pub fn jwks_json(&self) -> String {
        let mut jwk = self.authorization_server.public_jwk();
        if let Some(members) = jwk.as_object_mut() {
            members.insert("kid".into(), AS_KID.into());
            members.insert("alg".into(), "ES256".into());
            members.insert("use".into(), "sig".into());
        }
        json!({ "keys": [jwk] }).to_string()
    }

    /// The client's public JWK (JSON text), for the bare-verification server.
    #[must_use]
    pub fn client_public_jwk(&self) -> String {
        self.client.public_jwk().to_string()
    }

    /// `count` distinct proofs for `METHOD RESOURCE` with `ath` of the access token, signed on
    /// `threads` threads.
    ///
    /// # Errors
    ///
    /// The crypto backend failed.
    pub fn proofs(&self, count: usize, threads: usize) -> Result<Vec<String>, BoxError> {
        sign_proofs(&self.client, &self.access_token, count, threads)
    }
}

/// A JWT access token signed by `authorization_server`, bound to `client` (`cnf.jkt`).
///
/// # Errors
///
/// The crypto backend failed.
pub fn mint_access_token(authorization_server: &DpopKey, client: &DpopKey) -> Result<String, BoxError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": AS_KID });
    let claims = json!({
        "iss": ISSUER,
        "sub": "bench-user",
        "aud": RESOURCE,
        "client_id": "bench-client",
        "scope": "mcp:tools mcp:resources",
        "iat": now,
        "exp": now + 3600,
        "jti": "bench-token-1",
        "cnf": { "jkt": client.thumbprint().to_string() },
    });
    Ok(authorization_server.sign_jws(&header.to_string(), &claims.to_string())?)
}

/// Signs `count` proofs with `key` on `threads` threads (signing is never measured).
///
/// # Errors
///
/// The crypto backend failed.
pub fn sign_proofs(key: &DpopKey, access_token: &str, count: usize, threads: usize) -> Result<Vec<String>, BoxError> {
    let threads = threads.clamp(1, 64);
    let per_thread = count.div_ceil(threads);
    let chunks: Vec<Result<Vec<String>, BoxError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(count.saturating_sub(t * per_thread));
                scope.spawn(move || -> Result<Vec<String>, BoxError> {
                    (0..n).map(|_| Ok(key.proof(METHOD, RESOURCE).access_token(access_token).sign()?)).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| BoxError::from("signing thread panicked"))?).collect()
    });
    let mut proofs = Vec::with_capacity(count);
    for chunk in chunks {
        proofs.extend(chunk?);
    }
    Ok(proofs)
}

/// The bare signature check of a compact JWS: split off the signature, decode it, verify
/// `header.payload` with `key`. No parsing, no claim checks, no replay: the crypto floor.
///
/// # Errors
///
/// Not a compact JWS, or the signature does not verify.
pub fn verify_bare(key: &PublicKey, jws: &[u8]) -> Result<(), BoxError> {
    let dot = jws.iter().rposition(|b| *b == b'.').ok_or("no signature segment")?;
    let (input, signature) = (jws.get(..dot).ok_or("bad split")?, jws.get(dot + 1..).ok_or("bad split")?);
    let mut raw = [0u8; 64];
    let n = URL_SAFE_NO_PAD.decode_slice(signature, &mut raw)?;
    key.verify(Algorithm::ES256, input, raw.get(..n).ok_or("bad signature length")?)?;
    Ok(())
}

/// The signing input and decoded signature of each proof, split before any measurement.
///
/// # Errors
///
/// A proof is not a compact JWS.
pub fn split_signatures(proofs: &[String]) -> Result<Vec<(&str, Vec<u8>)>, BoxError> {
    proofs
        .iter()
        .map(|proof| {
            let (input, signature) = proof.rsplit_once('.').ok_or("no signature segment")?;
            Ok((input, URL_SAFE_NO_PAD.decode(signature)?))
        })
        .collect()
}

/// The client's public key as a verifier holds it once parsed.
///
/// # Errors
///
/// The JWK does not parse.
pub fn public_key(key: &DpopKey) -> Result<PublicKey, BoxError> {
    Ok(PublicKey::from_jwk(&key.public_jwk().to_string())?.0)
}
