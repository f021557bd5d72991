//! Signing one proof with `ath` through the session, beside the bare ES256 signature of the same
//! header and claims: what the session adds (jti, claims, nonce and clock lookup, SHA-256 of the
//! token, base64) over the signature every proof costs anyway.
//!
//! Both sign with the same key and backend the same bytes: the session's JOSE header and claims
//! of the same members and lengths (`jti` of 128 bits, `iat` of now, `ath` of the same token).
//! After the run, the bench prints both medians and their ratio (issue 13 asks ≤ 1.10).
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use criterion::Criterion;
use dpop_client::DpopSession;
use dpop_core::DpopKey;

const URL: &str = "https://mcp.example.com/mcp";
const TOKEN: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJjbGllbnQifQ.c2lnbmF0dXJl";
const GROUP: &str = "client_proof";
const BARE: &str = "bare_es256_signature";
const SESSION: &str = "session_proof_with_ath";

fn proof(c: &mut Criterion) {
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let key = session.key();
    let builder = key.proof("POST", URL).access_token(TOKEN);
    let (header, claims) = (builder.header().to_string(), builder.claims().unwrap().to_string());
    let signed_len = |jws: String| jws.rsplit_once('.').map(|(signed, _)| signed.len());
    assert_eq!(
        signed_len(key.sign_jws(&header, &claims).unwrap()),
        signed_len(session.proof("POST", URL, Some(TOKEN)).unwrap()),
        "both sign header.payload of the same length"
    );

    let mut group = c.benchmark_group(GROUP);
    group.bench_function(BARE, |b| b.iter(|| key.sign_jws(&header, &claims).unwrap()));
    group.bench_function(SESSION, |b| b.iter(|| session.proof("POST", URL, Some(TOKEN)).unwrap()));
    group.finish();
}

/// The median (ns) criterion estimated for `function` in this run, from its report directory
/// (`$CRITERION_HOME`, else `<target dir>/criterion`, as criterion chooses).
fn median(function: &str, started: SystemTime) -> Option<f64> {
    let home = match std::env::var_os("CRITERION_HOME") {
        Some(home) => PathBuf::from(home),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).parent()?.join("criterion"),
    };
    let path = home.join(GROUP).join(function).join("new").join("estimates.json");
    // Not an estimate of an earlier run (a filter may have skipped this function).
    if std::fs::metadata(&path).ok()?.modified().ok()? < started {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    estimates.pointer("/median/point_estimate")?.as_f64()
}

fn main() {
    let started = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    proof(&mut criterion);
    criterion.final_summary();
    if let (Some(bare), Some(session)) = (median(BARE, started), median(SESSION, started)) {
        println!(
            "medians: {BARE} {:.2} µs, {SESSION} {:.2} µs; ratio {:.3}",
            bare / 1e3,
            session / 1e3,
            session / bare
        );
    }
}
