//! `htu` comparison (RFC 9449 §4.3 check 9) on a table of equal and unequal URI pairs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use dpop_core::{internals::htu_matches, internals::normalize_htu};

/// (htu, target URI, same resource?)
const PAIRS: &[(&str, &str, bool)] = &[
    // Identical.
    ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp", true),
    // §6.2.2.1 case: scheme and host are case-insensitive...
    ("HTTPS://mcp.example.com/mcp", "https://mcp.example.com/mcp", true),
    ("https://MCP.Example.COM/mcp", "https://mcp.example.com/mcp", true),
    // ...the path is not.
    ("https://mcp.example.com/MCP", "https://mcp.example.com/mcp", false),
    // §6.2.2.1 / §6.2.2.2 percent-encoding: hex case, unreserved characters decoded.
    ("https://mcp.example.com/%7Euser", "https://mcp.example.com/~user", true),
    ("https://mcp.example.com/%7euser", "https://mcp.example.com/~user", true),
    ("https://mcp.example.com/a%2fb", "https://mcp.example.com/a%2Fb", true),
    ("https://mcp.example.com/%61bc", "https://mcp.example.com/abc", true),
    // A reserved character stays encoded: `/` and `%2F` differ.
    ("https://mcp.example.com/a%2Fb", "https://mcp.example.com/a/b", false),
    ("https://mcp.example.com/a%20b", "https://mcp.example.com/a%20b", true),
    // §6.2.2.3 dot segments.
    ("https://mcp.example.com/a/./b/../c", "https://mcp.example.com/a/c", true),
    ("https://mcp.example.com/./mcp", "https://mcp.example.com/mcp", true),
    ("https://mcp.example.com/x/../mcp", "https://mcp.example.com/mcp", true),
    ("https://mcp.example.com/a/%2E%2E/mcp", "https://mcp.example.com/mcp", true),
    ("https://mcp.example.com/../../mcp", "https://mcp.example.com/mcp", true),
    // §6.2.3 scheme-based: default ports and the empty path.
    ("https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp", true),
    ("http://mcp.example.com:80/mcp", "http://mcp.example.com/mcp", true),
    ("https://mcp.example.com:/mcp", "https://mcp.example.com/mcp", true),
    ("https://mcp.example.com", "https://mcp.example.com/", true),
    ("https://mcp.example.com:443", "https://mcp.example.com/", true),
    // A non-default port is part of the origin.
    ("https://mcp.example.com:8443/mcp", "https://mcp.example.com/mcp", false),
    ("https://mcp.example.com:80/mcp", "https://mcp.example.com/mcp", false),
    ("http://mcp.example.com:443/mcp", "http://mcp.example.com/mcp", false),
    // Scheme and host.
    ("http://mcp.example.com/mcp", "https://mcp.example.com/mcp", false),
    ("https://mcp.example.org/mcp", "https://mcp.example.com/mcp", false),
    ("https://evil.mcp.example.com/mcp", "https://mcp.example.com/mcp", false),
    // Trailing slash and other paths are other resources.
    ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp/", false),
    ("https://mcp.example.com/mcp/", "https://mcp.example.com/mcp", false),
    ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp/tools", false),
    ("https://mcp.example.com//mcp", "https://mcp.example.com/mcp", false),
    // Query and fragment are ignored on both sides (§4.3 check 9).
    ("https://mcp.example.com/mcp?x=1", "https://mcp.example.com/mcp", true),
    ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp?session=abc", true),
    ("https://mcp.example.com/mcp#frag", "https://mcp.example.com/mcp", true),
    ("https://mcp.example.com/mcp?a=/../../admin", "https://mcp.example.com/mcp", true),
    ("https://mcp.example.com?x=1", "https://mcp.example.com/", true),
    // IP literals.
    ("http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/mcp", true),
    ("http://[::1]:8080/mcp", "http://[::1]:8080/mcp", true),
    ("http://[0:0:0:0:0:0:0:1]:8080/mcp", "http://[::1]:8080/mcp", true),
    ("http://[::1]:8080/mcp", "http://[::2]:8080/mcp", false),
    // Never equal: not absolute http(s), userinfo, garbage.
    ("/mcp", "/mcp", false),
    ("https://user:pw@mcp.example.com/mcp", "https://user:pw@mcp.example.com/mcp", false),
    ("ftp://mcp.example.com/mcp", "ftp://mcp.example.com/mcp", false),
    ("https:///mcp", "https:///mcp", false),
    ("https://mcp.example.com/a b", "https://mcp.example.com/a b", false),
    ("https://mcp.exämple.com/mcp", "https://mcp.exämple.com/mcp", false),
    ("", "", false),
];

#[test]
fn the_table_holds_both_ways() {
    assert!(PAIRS.len() >= 30);
    for &(htu, target, equal) in PAIRS {
        assert_eq!(htu_matches(htu, target), equal, "{htu} vs {target}");
        assert_eq!(htu_matches(target, htu), equal, "{target} vs {htu} (symmetry)");
    }
}

#[test]
fn normalization_is_idempotent() {
    for &(htu, target, _) in PAIRS {
        for uri in [htu, target] {
            if let Some(once) = normalize_htu(uri) {
                assert_eq!(normalize_htu(&once).as_deref(), Some(once.as_str()), "{uri}");
            }
        }
    }
}

#[test]
fn normal_forms() {
    assert_eq!(
        normalize_htu("HTTPS://Mcp.Example.com:443/a/./b/../%7e?q#f").as_deref(),
        Some("https://mcp.example.com/a/~")
    );
    assert_eq!(normalize_htu("http://localhost").as_deref(), Some("http://localhost/"));
}
