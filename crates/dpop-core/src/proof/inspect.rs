//! [`DpopVerifier::inspect`]: every check of a proof, reported one by one, for people debugging
//! DPoP (`dpop inspect`). It calls the verifier's own check functions — there is no second
//! implementation of any rule — but keeps going after a failure where later checks still make
//! sense, and records nothing in the replay store.

use serde_json::Value;

use crate::crypto::PreparedKey;
use crate::error::DpopError;
use crate::proof::checks;
use crate::proof::jws::{self, CompactJws};
use crate::proof::verifier::{DpopVerifier, ProofRequest};

/// How one check went.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOutcome {
    /// The check passed.
    Passed,
    /// The check failed with this error — the one the verifier would answer with.
    Failed(DpopError),
    /// Not run: something it needs failed earlier.
    Skipped,
    /// Not run: it does not apply to this inspection (no request given, no token, …).
    NotApplicable(&'static str),
}

/// One line of an inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// What is checked.
    pub check: &'static str,
    /// Where the rule comes from.
    pub section: &'static str,
    /// How it went.
    pub outcome: CheckOutcome,
}

/// Everything [`DpopVerifier::inspect`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// The decoded JOSE header, if it is JSON.
    pub header: Option<Value>,
    /// The decoded claims, if they are JSON.
    pub claims: Option<Value>,
    /// Every check, in the verifier's order.
    pub checks: Vec<CheckReport>,
}

impl Inspection {
    /// Whether every applicable check ran and passed (replay aside: inspection records nothing).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| matches!(c.outcome, CheckOutcome::Passed | CheckOutcome::NotApplicable(_)))
    }
}

type Check = (&'static str, &'static str);

const SIZE: Check = ("size", "bounded before decoding");
const COMPACT: Check = ("one compact JWS", "RFC 9449 §4.3 check 2");
const HEADER: Check = ("header is a strict JSON object", "RFC 9449 §4.3 check 2");
const TYP: Check = ("typ is dpop+jwt", "RFC 9449 §4.3 check 4");
const ALG: Check = ("alg is allowed", "RFC 9449 §4.3 check 5");
const CRIT: Check = ("no crit", "RFC 7515 §4.1.11");
const JWK: Check = ("jwk is public and fits alg", "RFC 9449 §4.3 check 7");
const CLAIMS: Check = ("claims are a strict JSON object", "RFC 9449 §4.3 check 2");
const REQUIRED: Check = ("jti, htm, htu, iat present", "RFC 9449 §4.3 check 3");
const JTI: Check = ("jti length", "bounded");
const HTM: Check = ("htm is the method", "RFC 9449 §4.3 check 8");
const HTU: Check = ("htu is the target URI", "RFC 9449 §4.3 check 9");
const NONCE: Check = ("server nonce", "RFC 9449 §4.3 check 10");
const IAT: Check = ("iat within the window", "RFC 9449 §4.3 check 11");
const ATH: Check = ("ath is the token hash", "RFC 9449 §4.3 check 12");
const SIGNATURE: Check = ("signature", "RFC 9449 §4.3 check 6");
const REPLAY: Check = ("not replayed", "RFC 9449 §11.1");

struct Report(Vec<CheckReport>);

impl Report {
    fn record<T>(&mut self, (check, section): Check, result: Result<T, DpopError>) -> Option<T> {
        let (outcome, value) = match result {
            Ok(value) => (CheckOutcome::Passed, Some(value)),
            Err(error) => (CheckOutcome::Failed(error), None),
        };
        self.0.push(CheckReport { check, section, outcome });
        value
    }

    fn not_run(&mut self, checks: &[Check], outcome: &CheckOutcome) {
        for &(check, section) in checks {
            self.0.push(CheckReport { check, section, outcome: outcome.clone() });
        }
    }
}

impl DpopVerifier {
    /// Walks every check of one `DPoP` header value. Without `request`, the checks that compare
    /// with a request (`htm`, `htu`, `ath`, nonce) are not applicable.
    #[must_use]
    pub fn inspect(&self, value: &[u8], request: Option<&ProofRequest<'_>>) -> Inspection {
        let mut report = Report(Vec::new());
        let mut inspection = Inspection { header: None, claims: None, checks: Vec::new() };
        report.record(SIZE, checks::check_proof_len(value, self.max_proof_len()));
        let Some(jws) = report.record(COMPACT, CompactJws::split(value)) else {
            report.not_run(
                &[HEADER, TYP, ALG, CRIT, JWK, CLAIMS, REQUIRED, JTI, HTM, HTU, NONCE, IAT, ATH, SIGNATURE],
                &CheckOutcome::Skipped,
            );
            report.not_run(&[REPLAY], &CheckOutcome::NotApplicable("inspection records nothing"));
            inspection.checks = report.0;
            return inspection;
        };

        let header_json = jws::decode_segment(jws.header, "header");
        inspection.header = header_json.as_ref().ok().and_then(|bytes| serde_json::from_slice(bytes).ok());
        let header = match &header_json {
            Ok(bytes) => report.record(HEADER, jws::parse_header(bytes)),
            Err(error) => report.record::<()>(HEADER, Err(error.clone())).and(None),
        };
        let (algorithm, key) = match &header {
            Some(header) => {
                report.record(TYP, checks::check_type(header));
                let algorithm = report.record(ALG, checks::check_algorithm(header, self.algorithms()));
                report.record(CRIT, checks::check_no_critical_extensions(header));
                let key = match algorithm {
                    Some(alg) => report.record(JWK, checks::check_public_key(header, alg)),
                    None => {
                        report.not_run(&[JWK], &CheckOutcome::Skipped);
                        None
                    }
                };
                (algorithm, key)
            }
            None => {
                report.not_run(&[TYP, ALG, CRIT, JWK], &CheckOutcome::Skipped);
                (None, None)
            }
        };

        let claims_json = jws::decode_segment(jws.payload, "claims");
        inspection.claims = claims_json.as_ref().ok().and_then(|bytes| serde_json::from_slice(bytes).ok());
        let claims = match &claims_json {
            Ok(bytes) => report.record(CLAIMS, jws::parse_claims(bytes)),
            Err(error) => report.record::<()>(CLAIMS, Err(error.clone())).and(None),
        };
        let required =
            claims.as_ref().and_then(|claims| report.record(REQUIRED, checks::check_required_claims(claims)));
        match (&claims, &required) {
            (Some(claims), Some(required)) => {
                report.record(JTI, checks::check_jti_len(required.jti, self.max_jti_len()));
                match request {
                    Some(request) => {
                        report.record(HTM, checks::check_method(required.htm, request.method()));
                        report.record(HTU, checks::check_uri(required.htu, request.target_uri()));
                        if request.nonce_required() {
                            report.record(NONCE, self.check_nonce(claims.nonce.as_deref()).map(|_| ()));
                        } else {
                            report.not_run(&[NONCE], &CheckOutcome::NotApplicable("not required"));
                        }
                    }
                    None => report.not_run(&[HTM, HTU, NONCE], &CheckOutcome::NotApplicable("no request given")),
                }
                report.record(IAT, self.check_issued_at(required.iat));
                match request.and_then(ProofRequest::hashed_token) {
                    Some(token) => {
                        report.record(ATH, checks::check_access_token_hash(claims, token));
                    }
                    None => report.not_run(&[ATH], &CheckOutcome::NotApplicable("no access token given")),
                }
            }
            (None, _) => report.not_run(&[REQUIRED, JTI, HTM, HTU, NONCE, IAT, ATH], &CheckOutcome::Skipped),
            (Some(_), None) => report.not_run(&[JTI, HTM, HTU, NONCE, IAT, ATH], &CheckOutcome::Skipped),
        }

        match (algorithm, &key) {
            (Some(algorithm), Some(key)) => {
                let signature = jws::decode_segment(jws.signature, "signature");
                let verified = signature.and_then(|sig| {
                    let prepared = PreparedKey::new(algorithm, &key.key)?;
                    checks::check_signature(&prepared, jws.signing_input, &sig)
                });
                report.record(SIGNATURE, verified);
            }
            _ => report.not_run(&[SIGNATURE], &CheckOutcome::Skipped),
        }
        report.not_run(&[REPLAY], &CheckOutcome::NotApplicable("inspection records nothing"));
        inspection.checks = report.0;
        inspection
    }
}
