//! `cargo run --example demo`, as a test: the same function the example's `main` runs
//! (`examples/support/demo.rs`), asserting that every step ran and had the secure outcome.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../examples/support/mod.rs"]
mod examples_support;

use examples_support::demo;

/// Every step of the demo, in order.
const STEPS: [&str; 19] = [
    "client: GET /mcp without a token",
    "client: GET resource metadata (RFC 9728)",
    "client: GET AS metadata (RFC 8414)",
    "client: token request (AS asks for a nonce)",
    "client: token request again, with the nonce",
    "client: initialize (server asks for a nonce)",
    "client: initialize again, with the nonce",
    "client: notifications/initialized",
    "client: tools/list",
    "client: tools/call whoami (answers the client's jkt)",
    "attacker: replays that request (same proof)",
    "attacker: stolen token, proofs with own key",
    "attacker: stolen token sent as Bearer",
    "attacker: client's proof for another URL (htu)",
    "attacker: client's proof for GET sent as POST (htm)",
    "attacker: client's proof from an hour ago (iat)",
    "attacker: proof with a nonce the server never issued",
    "client: ends the MCP session (DELETE)",
    "server: whoami ran for the client only",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_of_the_demo_is_the_secure_one() {
    let report = demo::run().await.unwrap();
    let printed = report.render();
    assert!(report.all_secure(), "{printed}");
    assert_eq!(report.aborted, None, "{printed}");

    let steps: Vec<&str> = report.rows.iter().map(|row| row.step).collect();
    assert_eq!(steps, STEPS, "{printed}");
    for step in STEPS {
        let line = printed.lines().find(|line| line.starts_with(step)).unwrap_or_else(|| panic!("{step}: {printed}"));
        assert!(line.ends_with(" yes"), "{line}");
    }
    assert!(printed.ends_with("19 of 19 outcomes are the secure ones\n"), "{printed}");

    let whoami = report.whoami.expect("whoami answered");
    assert_eq!(whoami["jkt"], report.client_jkt.as_str());
    assert_eq!(whoami["sub"], demo::CLIENT_ID);
    assert_eq!(whoami["scope"], demo::SCOPE);
}

#[test]
fn the_report_says_no_and_fails_when_an_outcome_is_insecure() {
    let mut report = demo::Report::default();
    report.rows.push(demo::Row { step: "attacker: something", status: Some(200), error: None, secure: false });
    assert!(!report.all_secure());
    let printed = report.render();
    assert!(printed.lines().any(|line| line.starts_with("attacker: something") && line.ends_with(" NO")), "{printed}");
    assert!(printed.contains("NOT SECURE"), "{printed}");

    let aborted = demo::Report { aborted: Some("no token".to_owned()), ..demo::Report::default() };
    assert!(!aborted.all_secure(), "a demo that stopped early is not a success");
}
