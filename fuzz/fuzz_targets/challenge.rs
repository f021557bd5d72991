//! Any description, scope and metadata URL (two flag bytes, then the three texts separated by
//! 0xFF): the rendered `WWW-Authenticate` value is visible ASCII, SP and HTAB only, and reads back
//! (RFC 9110 §11.6.1 grammar, every parameter a quoted-string) into exactly the parameters given.
#![no_main]

use dpop_core::{
    Algorithm, AlgorithmSet, ErrorCode, internals::Challenge, internals::ErrorScheme, internals::quoted_string,
};
use libfuzzer_sys::fuzz_target;

const CODES: [ErrorCode; 6] = [
    ErrorCode::InvalidDpopProof,
    ErrorCode::InvalidToken,
    ErrorCode::UseDpopNonce,
    ErrorCode::InvalidRequest,
    ErrorCode::InsufficientScope,
    ErrorCode::TemporarilyUnavailable,
];

#[path = "../../crates/dpop-core/tests/support/challenge_grammar.rs"]
mod challenge_grammar;

use challenge_grammar::{ChallengeInputs, Reader, expected_challenges, parse_challenges, sanitized};

fn is_visible(text: &str) -> bool {
    text.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let (flags, algs_bits, rest) = match data {
        [flags, algs, rest @ ..] => (*flags, *algs, rest),
        _ => return,
    };
    let mut texts = rest.split(|&b| b == 0xFF).map(String::from_utf8_lossy);
    let description = texts.next().unwrap_or_default();
    let scope = texts.next().filter(|_| flags & 0x40 != 0);
    let metadata = texts.next().filter(|_| flags & 0x80 != 0);

    let bearer = flags & 1 != 0;
    let on = match (flags >> 1) & 3 {
        0 => None,
        1 => Some(ErrorScheme::Dpop),
        2 => Some(ErrorScheme::Bearer),
        _ => Some(ErrorScheme::Both),
    };
    let code = CODES[usize::from((flags >> 3) & 7) % CODES.len()];
    let algs: AlgorithmSet =
        Algorithm::ALL.into_iter().enumerate().filter(|(i, _)| algs_bits & (1 << i) != 0).map(|(_, a)| a).collect();

    let mut challenge = Challenge::new(algs).with_bearer(bearer);
    if let Some(on) = on {
        challenge = challenge.error_code(code, &description, on);
    }
    if let Some(scope) = &scope {
        challenge = challenge.scope(scope);
    }
    if let Some(metadata) = &metadata {
        challenge = challenge.resource_metadata(metadata);
    }
    let rendered = challenge.render();
    assert!(is_visible(&rendered), "not a visible-ASCII header value: {rendered:?}");
    let parsed = parse_challenges(&rendered).unwrap_or_else(|error| panic!("{error} in {rendered:?}"));

    let expected = expected_challenges(&ChallengeInputs {
        error: on.map(|on| (code, &*description, on)),
        scope: scope.as_deref(),
        metadata: metadata.as_deref(),
        bearer,
        algs,
    });
    assert_eq!(parsed, expected, "rendered: {rendered:?}");

    // `quoted_string` alone: one quoted-string that reads back as the sanitized text.
    let quoted = quoted_string(&description);
    assert!(is_visible(&quoted), "{quoted:?}");
    let mut reader = Reader { bytes: quoted.as_bytes(), at: 0 };
    assert_eq!(reader.quoted_string().as_deref(), Ok(sanitized(&description).as_str()), "{quoted:?}");
    assert_eq!(reader.at, quoted.len(), "trailing bytes in {quoted:?}");
});
