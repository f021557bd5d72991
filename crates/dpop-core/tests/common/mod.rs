//! Shared fixtures: the RFC 9449 / RFC 7638 vectors and a proof factory for mutation tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use dpop_core::{DpopError, DpopKey, DpopVerifier, ProofRequest, VerifiedProof, clock::ManualClock};
use serde_json::Value;

/// RFC 9449 §4.1 Figure 2 (= Figure 5): token request proof, iat 1562262616.
pub const RFC_FIGURE_2: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
pub const RFC_FIGURE_2_IAT: u64 = 1_562_262_616;

/// RFC 9449 §5 Figure 7: refresh request proof, same `jti` as Figure 2, iat 1562265296.
pub const RFC_FIGURE_7: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA";
pub const RFC_FIGURE_7_IAT: u64 = 1_562_265_296;

/// RFC 9449 §7.1 Figure 13: resource request proof with `ath`, iat 1562262618.
pub const RFC_FIGURE_13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
pub const RFC_FIGURE_13_IAT: u64 = 1_562_262_618;
/// The opaque access token of RFC 9449 Figures 6 and 13.
pub const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
/// `ath` of [`RFC_ACCESS_TOKEN`].
pub const RFC_ATH: &str = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";

/// RFC 9449 Figures 4 and 14: the example public key, and its thumbprint (§6.1, Figures 9, 11).
pub const RFC_JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
pub const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

/// RFC 7638 §3.1: the RSA example key and its thumbprint.
pub const RFC7638_JWK: &str = r#"{
 "kty": "RSA",
 "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
 "e": "AQAB",
 "alg": "RS256",
 "kid": "2011-04-29"
}"#;
pub const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/// The clock every fixture proof is made and checked at.
pub const NOW: u64 = 1_700_000_000;
pub const METHOD: &str = "POST";
pub const URL: &str = "https://mcp.example.com/mcp";
pub const TOKEN: &str = "an-access-token";

/// A verifier on a manual clock at `now`.
pub fn verifier_at(now: u64) -> (DpopVerifier, ManualClock) {
    let clock = ManualClock::at(now);
    let verifier = DpopVerifier::builder().clock(clock.clone()).build().unwrap();
    (verifier, clock)
}

/// A key, a verifier at [`NOW`], and a valid proof for `POST URL` with [`TOKEN`] to mutate.
pub struct Fixture {
    pub key: DpopKey,
    pub verifier: DpopVerifier,
    pub clock: ManualClock,
}

impl Fixture {
    pub fn new() -> Self {
        let (verifier, clock) = verifier_at(NOW);
        Self { key: DpopKey::generate().unwrap(), verifier, clock }
    }

    pub fn with_verifier(verifier: DpopVerifier, clock: ManualClock) -> Self {
        Self { key: DpopKey::generate().unwrap(), verifier, clock }
    }

    /// The header and claims of a valid proof.
    pub fn parts(&self) -> (Value, Value) {
        let builder = self.key.proof(METHOD, URL).access_token(TOKEN).issued_at(NOW as i64);
        (builder.header(), builder.claims().unwrap())
    }

    /// A valid proof.
    pub fn valid(&self) -> String {
        self.mutated(|_, _| {})
    }

    /// A proof signed by the fixture key after `change` edited its header and claims.
    pub fn mutated(&self, change: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = self.parts();
        change(&mut header, &mut claims);
        self.key.sign_jws(&header.to_string(), &claims.to_string()).unwrap()
    }

    /// A proof signed by the fixture key over raw JSON texts.
    pub fn raw(&self, header: &str, claims: &str) -> String {
        self.key.sign_jws(header, claims).unwrap()
    }

    /// Verifies `proof` as the only `DPoP` header of `POST URL` with [`TOKEN`].
    pub async fn verify(&self, proof: &str) -> Result<VerifiedProof, DpopError> {
        self.verify_values(&[proof.as_bytes()]).await
    }

    pub async fn verify_values(&self, values: &[&[u8]]) -> Result<VerifiedProof, DpopError> {
        let request = ProofRequest::new(METHOD, URL).access_token(TOKEN);
        self.verifier.verify(values.iter().copied(), &request).await
    }

    /// The header JSON text of a valid proof, for raw (duplicate-member) tests.
    pub fn header_text(&self) -> String {
        self.parts().0.to_string()
    }

    /// The claims JSON text of a valid proof.
    pub fn claims_text(&self) -> String {
        self.parts().1.to_string()
    }
}
