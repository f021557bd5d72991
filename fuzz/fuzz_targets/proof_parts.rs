//! Structure-aware proof fuzzing: the input is the decoded JOSE header, claims and signature
//! (separated by 0xFF), base64url-encoded here into a compact JWS, so that mutations land in the
//! JSON and reach every check behind the parser. Never panics; accepts nothing but the genuine
//! RFC 9449 Figure 13 proof for the request it was made for.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_core::{Algorithm, DpopVerifier, ProofRequest, clock::ManualClock};
use libfuzzer_sys::fuzz_target;

/// RFC 9449 Figure 13: resource request proof with `ath`.
const RFC_FIGURE_13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const RFC_FIGURE_13_IAT: u64 = 1_562_262_618;
const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

static RESOURCE: LazyLock<DpopVerifier> = LazyLock::new(|| {
    DpopVerifier::builder()
        .clock(ManualClock::at(RFC_FIGURE_13_IAT))
        .algorithms(Algorithm::ALL.into_iter().filter(|alg| alg.is_supported()))
        .build()
        .unwrap()
});

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let (Some(header), Some(claims), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let mut proof = URL_SAFE_NO_PAD.encode(header);
    proof.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut proof);
    proof.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut proof);

    let request =
        ProofRequest::new("GET", "https://resource.example.org/protectedresource").access_token(RFC_ACCESS_TOKEN);
    if RESOURCE.check([proof.as_bytes()], &request).is_ok() {
        assert_eq!(proof, RFC_FIGURE_13, "accepted a proof that is not the genuine RFC example");
    }
    // And never for another method.
    let other = ProofRequest::new("POST", "https://resource.example.org/protectedresource");
    assert!(RESOURCE.check([proof.as_bytes()], &other).is_err(), "accepted for another method: {proof}");
});
