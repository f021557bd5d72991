//! Keys round-trip through files (JWK and PKCS#8 PEM) written for their owner only, and every
//! proof has its own `jti`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::PathBuf;

use dpop_client::{ClientError, DpopSession, keys};
use dpop_core::DpopKey;

/// A fresh path in the system temp directory, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> Self {
        let unique = DpopKey::generate().unwrap().thumbprint().to_string();
        Self(std::env::temp_dir().join(format!("dpop-client-{name}-{unique}")))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_key_round_trips_through_a_jwk_file_readable_by_its_owner_only() {
    let key = DpopKey::generate().unwrap();
    let path = TempPath::new("jwk");
    keys::save_jwk(&key, &path.0).unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&path.0), 0o600);
    let loaded = keys::load(&path.0).unwrap();
    assert_eq!(loaded.thumbprint(), key.thumbprint());
    let text = std::fs::read_to_string(&path.0).unwrap();
    assert!(text.contains("\"d\""));
}

#[test]
fn a_key_round_trips_through_a_pem_file_readable_by_its_owner_only() {
    let key = DpopKey::generate().unwrap();
    let path = TempPath::new("pem");
    keys::save_pem(&key, &path.0).unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&path.0), 0o600);
    let text = std::fs::read_to_string(&path.0).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
    assert_eq!(keys::load(&path.0).unwrap().thumbprint(), key.thumbprint());
    // The PEM key signs proofs the original key's thumbprint verifies.
    let loaded = keys::from_pkcs8_pem(&text).unwrap();
    assert_eq!(loaded.private_jwk().unwrap(), key.private_jwk().unwrap());
}

#[cfg(unix)]
#[test]
fn an_existing_readable_file_is_narrowed_before_the_key_goes_in() {
    use std::os::unix::fs::PermissionsExt as _;
    let path = TempPath::new("narrow");
    std::fs::write(&path.0, "old").unwrap();
    std::fs::set_permissions(&path.0, std::fs::Permissions::from_mode(0o644)).unwrap();
    keys::save_jwk(&DpopKey::generate().unwrap(), &path.0).unwrap();
    assert_eq!(mode(&path.0), 0o600);
}

#[test]
fn files_that_hold_no_key_are_refused() {
    let path = TempPath::new("bad");
    std::fs::write(&path.0, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
    assert!(matches!(keys::load(&path.0), Err(ClientError::Pem)));
    std::fs::write(&path.0, r#"{"kty":"EC","crv":"P-384","x":"","y":"","d":""}"#).unwrap();
    assert!(matches!(keys::load(&path.0), Err(ClientError::Key(_))));
    std::fs::write(&path.0, vec![b' '; 17 * 1024]).unwrap();
    assert!(matches!(keys::load(&path.0), Err(ClientError::KeyFileTooLarge(_))));
    assert!(matches!(keys::load(path.0.with_extension("missing")), Err(ClientError::Io { .. })));
}

#[test]
fn load_or_generate_keeps_the_key_it_made() {
    let path = TempPath::new("generate");
    let first = keys::load_or_generate(&path.0).unwrap();
    let second = keys::load_or_generate(&path.0).unwrap();
    assert_eq!(first.thumbprint(), second.thumbprint());
}

#[test]
fn ten_thousand_proofs_have_ten_thousand_jtis() {
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        let proof = session.proof("POST", "https://mcp.example.com/mcp", Some("token")).unwrap();
        let claims = proof.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
        )
        .unwrap();
        let jti = claims["jti"].as_str().unwrap().to_owned();
        assert_eq!(jti.len(), 22, "128 bits, base64url");
        assert!(seen.insert(jti), "a jti repeated");
    }
}

#[test]
fn proofs_carry_what_the_rfc_asks() {
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let proof = session.proof("GET", "https://mcp.example.com/mcp?x=1#frag", Some("token")).unwrap();
    let claims = proof.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["htu"], "https://mcp.example.com/mcp");
    assert_eq!(claims["ath"], dpop_core::access_token_hash("token"));
    assert!(claims.get("nonce").is_none());
    let without = session.proof("POST", "https://as.example.com/token", None).unwrap();
    assert!(!without.split('.').nth(1).unwrap().is_empty());
    assert!(matches!(session.proof("GET", "/relative", None), Err(ClientError::InvalidUrl)));
}
