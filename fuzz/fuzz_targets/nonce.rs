//! Any text as a proof's `nonce` claim: `NonceIssuer::check` never panics and never accepts a
//! nonce the issuer did not make (the fuzzer does not have the keys).
#![no_main]

use std::sync::LazyLock;

use dpop_core::clock::ManualClock;
use dpop_core::nonce::{NonceIssuer, NonceKey};
use libfuzzer_sys::fuzz_target;

/// The seeds' time: 2023-11-14T22:13:20Z.
const NOW: u64 = 1_700_000_000;

/// Key 3 signs; key 4 is a previous key still accepted, so both key ids reach the MAC check.
static ISSUER: LazyLock<NonceIssuer> = LazyLock::new(|| {
    NonceIssuer::new(NonceKey::new(3, [0x5a; 32]))
        .clock(ManualClock::at(NOW))
        .previous_key(NonceKey::new(4, [0xa5; 32]), NOW + 3600)
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let result = ISSUER.check(Some(&text));
    assert!(result.is_err(), "accepted a forged nonce {text:?}: {result:?}");
});
