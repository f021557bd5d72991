//! The case-table runner shared by the HTTP tests: every case against a fresh server per
//! profile, asserting status, the exact `WWW-Authenticate`, the rejection shape and whether the
//! handler ran.

use std::fmt::Debug;

use dpop_guard::DpopGuard;

use super::{Client, Framework, RawRequest, RawResponse, send};

/// One row of a table.
pub struct Case<P> {
    pub name: &'static str,
    /// Which guard the server runs.
    pub profile: P,
    /// The requests to send; every one before the last must succeed (2xx).
    pub requests: fn(&Client) -> Vec<RawRequest>,
    pub status: u16,
    pub challenge: Option<&'static str>,
    pub handler_runs: bool,
}

/// Runs `cases` against `framework`, one server per profile, and fails with every mismatch.
pub async fn assert_cases<P: Copy + PartialEq + Debug>(
    framework: Framework,
    profiles: &[P],
    guard: impl Fn(P) -> DpopGuard,
    cases: &[Case<P>],
) {
    let mut failures = Vec::new();
    for &profile in profiles {
        let server = framework.start(guard(profile)).await;
        for case in cases.iter().filter(|case| case.profile == profile) {
            let client = Client::new(server.base());
            let requests = (case.requests)(&client);
            let Some((last, before)) = requests.split_last() else { continue };
            let mut prepared = true;
            for request in before {
                let response = send(server.addr, request).await;
                if !(200..300).contains(&response.status) {
                    failures
                        .push(format!("{framework:?} / {}: preparatory request got {}", case.name, response.status));
                    prepared = false;
                }
            }
            if !prepared {
                continue;
            }
            let runs_before = server.handler_runs();
            let response = send(server.addr, last).await;
            let ran = server.handler_runs() > runs_before;
            let challenges = response.all("www-authenticate");
            let challenge = match challenges.as_slice() {
                [] => None,
                [one] => Some(*one),
                many => {
                    failures.push(format!("{framework:?} / {}: {} WWW-Authenticate fields", case.name, many.len()));
                    continue;
                }
            };
            if response.status != case.status || challenge != case.challenge || ran != case.handler_runs {
                failures.push(format!(
                    "{framework:?} / {}:\n    expected {} {:?} handler_runs={}\n    got      {} {:?} handler_runs={} body={}",
                    case.name, case.status, case.challenge, case.handler_runs, response.status, challenge, ran, response.body
                ));
            }
            if response.status >= 400 {
                check_rejection_shape(framework, case.name, &response, &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Every rejection: `Cache-Control: no-store` and a JSON `{error, error_description}` body.
fn check_rejection_shape(framework: Framework, name: &str, response: &RawResponse, failures: &mut Vec<String>) {
    if response.all("cache-control") != ["no-store"] {
        failures.push(format!("{framework:?} / {name}: cache-control {:?}", response.all("cache-control")));
    }
    let body: Result<serde_json::Value, _> = serde_json::from_str(&response.body);
    let well_formed = body.as_ref().is_ok_and(|b| b["error"].is_string() && b["error_description"].is_string());
    if !well_formed {
        failures.push(format!("{framework:?} / {name}: body is not the JSON error document: {}", response.body));
    }
}
