//! `DpopVerifier::inspect`: each check reported, with the verifier's own errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{Fixture, METHOD, TOKEN, URL};
use dpop_core::inspect::CheckOutcome;
use dpop_core::{DpopError, ProofRequest};
use serde_json::json;

fn outcome<'a>(inspection: &'a dpop_core::inspect::Inspection, check: &str) -> &'a CheckOutcome {
    &inspection.checks.iter().find(|c| c.check == check).unwrap().outcome
}

#[test]
fn a_valid_proof_passes_every_check() {
    let f = Fixture::new();
    let request = ProofRequest::new(METHOD, URL).access_token(TOKEN);
    let inspection = f.verifier.inspect(f.valid().as_bytes(), Some(&request));
    assert!(inspection.passed(), "{:#?}", inspection.checks);
    assert_eq!(inspection.header.as_ref().unwrap()["typ"], "dpop+jwt");
    assert_eq!(inspection.claims.as_ref().unwrap()["htu"], URL);
    assert_eq!(inspection.checks.len(), 17);
}

#[test]
fn one_bad_claim_fails_only_its_check() {
    let f = Fixture::new();
    let proof = f.mutated(|_, c| c["htm"] = json!("GET"));
    let request = ProofRequest::new(METHOD, URL).access_token(TOKEN);
    let inspection = f.verifier.inspect(proof.as_bytes(), Some(&request));
    assert!(!inspection.passed());
    let failed: Vec<_> =
        inspection.checks.iter().filter(|c| matches!(c.outcome, CheckOutcome::Failed(_))).map(|c| c.check).collect();
    assert_eq!(failed, ["htm is the method"]);
    assert_eq!(outcome(&inspection, "htm is the method"), &CheckOutcome::Failed(DpopError::MethodMismatch));
    assert_eq!(outcome(&inspection, "signature"), &CheckOutcome::Passed);
}

#[test]
fn without_a_request_the_request_checks_do_not_apply() {
    let f = Fixture::new();
    let inspection = f.verifier.inspect(f.valid().as_bytes(), None);
    assert!(inspection.passed());
    assert!(matches!(outcome(&inspection, "htu is the target URI"), CheckOutcome::NotApplicable(_)));
    assert!(matches!(outcome(&inspection, "ath is the token hash"), CheckOutcome::NotApplicable(_)));
}

#[test]
fn garbage_fails_early_and_skips_the_rest() {
    let f = Fixture::new();
    let inspection = f.verifier.inspect(b"not a jwt", None);
    assert!(matches!(outcome(&inspection, "one compact JWS"), CheckOutcome::Failed(DpopError::MalformedProof(_))));
    assert_eq!(outcome(&inspection, "signature"), &CheckOutcome::Skipped);
    assert_eq!(inspection.checks.len(), 17);
}

#[test]
fn a_bad_header_still_inspects_the_claims() {
    let f = Fixture::new();
    let proof = f.raw("{\"typ\":1}", &f.claims_text());
    let inspection = f.verifier.inspect(proof.as_bytes(), None);
    assert_eq!(
        outcome(&inspection, "header is a strict JSON object"),
        &CheckOutcome::Failed(DpopError::InvalidMember("typ"))
    );
    assert_eq!(outcome(&inspection, "jti, htm, htu, iat present"), &CheckOutcome::Passed);
    assert_eq!(outcome(&inspection, "signature"), &CheckOutcome::Skipped);
}

#[test]
fn inspection_records_nothing() {
    let f = Fixture::new();
    let proof = f.valid();
    let _ = f.verifier.inspect(proof.as_bytes(), None);
    block_on(f.verify(&proof)).unwrap();
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}
