//! Any bytes as the one `DPoP` header value: `check` never panics, accepts nothing but the two
//! genuine RFC 9449 example proofs for the requests they were made for, and every rejection
//! renders as a visible-ASCII `WWW-Authenticate` value.
#![no_main]

use std::sync::LazyLock;

use dpop_core::{Algorithm, AlgorithmSet, DpopVerifier, ProofRequest, clock::ManualClock, internals::www_authenticate};
use libfuzzer_sys::fuzz_target;

/// RFC 9449 Figure 2: token request proof (`POST https://server.example.com/token`).
const RFC_FIGURE_2: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const RFC_FIGURE_2_IAT: u64 = 1_562_262_616;

/// RFC 9449 Figure 13: resource request proof with `ath`.
const RFC_FIGURE_13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const RFC_FIGURE_13_IAT: u64 = 1_562_262_618;
const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

/// Every algorithm the compiled backend supports, so that every key type's parsing is reached.
fn algorithms() -> AlgorithmSet {
    Algorithm::ALL.into_iter().filter(|alg| alg.is_supported()).collect()
}

fn verifier_at(now: u64) -> DpopVerifier {
    DpopVerifier::builder().clock(ManualClock::at(now)).algorithms(algorithms().iter()).build().unwrap()
}

static TOKEN_ENDPOINT: LazyLock<DpopVerifier> = LazyLock::new(|| verifier_at(RFC_FIGURE_2_IAT));
static RESOURCE: LazyLock<DpopVerifier> = LazyLock::new(|| verifier_at(RFC_FIGURE_13_IAT));

fuzz_target!(|data: &[u8]| {
    let cases: [(&DpopVerifier, ProofRequest<'_>, &str); 2] = [
        (&TOKEN_ENDPOINT, ProofRequest::new("POST", "https://server.example.com/token"), RFC_FIGURE_2),
        (
            &RESOURCE,
            ProofRequest::new("GET", "https://resource.example.org/protectedresource").access_token(RFC_ACCESS_TOKEN),
            RFC_FIGURE_13,
        ),
    ];
    for (verifier, request, genuine) in cases {
        match verifier.check([data], &request) {
            Ok(_) => assert_eq!(
                data,
                genuine.as_bytes(),
                "accepted a proof that is not the genuine RFC example: {:?}",
                String::from_utf8_lossy(data)
            ),
            Err(error) => {
                let header = www_authenticate(&error, algorithms());
                assert!(
                    header.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
                    "challenge is not visible ASCII: {header:?}"
                );
            }
        }
    }
    // Two fields are always rejected (RFC 9449 §4.3 check 1).
    let request = ProofRequest::new("GET", "https://resource.example.org/protectedresource");
    assert!(RESOURCE.check([data, data], &request).is_err());
});
