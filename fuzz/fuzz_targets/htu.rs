//! Any text as one or two URIs (split at the first newline): `normalize_htu` never panics and is
//! idempotent, its output is a plain http(s) URI, and `htu_matches` is symmetric, reflexive on
//! every URI that normalizes, and exactly equality of the normal forms.
#![no_main]

use dpop_core::{internals::htu_matches, internals::normalize_htu};
use libfuzzer_sys::fuzz_target;

fn check_one(uri: &str) {
    match normalize_htu(uri) {
        Some(normal) => {
            assert_eq!(normalize_htu(&normal).as_deref(), Some(normal.as_str()), "not idempotent on {uri:?}");
            assert!(normal.starts_with("http://") || normal.starts_with("https://"), "{uri:?} -> {normal:?}");
            assert!(!normal.contains(['?', '#']), "{uri:?} -> {normal:?}");
            assert!(htu_matches(uri, uri), "not reflexive on {uri:?}");
            assert!(htu_matches(uri, &normal), "{uri:?} does not match its normal form {normal:?}");
        }
        None => assert!(!htu_matches(uri, uri)),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, "https://mcp.example.com/mcp"));
    check_one(a);
    check_one(b);
    let matches = htu_matches(a, b);
    assert_eq!(matches, htu_matches(b, a), "not symmetric: {a:?} vs {b:?}");
    let (na, nb) = (normalize_htu(a), normalize_htu(b));
    assert_eq!(matches, na.is_some() && na == nb, "{a:?} vs {b:?}");
});
