//! Signing one proof with `ath` through the session, beside the bare ES256 signature of the same
//! header and claims: what the session adds (jti, claims, nonce and clock lookup, base64) over
//! the signature every proof costs anyway. Read the two medians as a same-run ratio.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use dpop_client::DpopSession;
use dpop_core::DpopKey;

const URL: &str = "https://mcp.example.com/mcp";
const TOKEN: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJjbGllbnQifQ.c2lnbmF0dXJl";

fn proof(c: &mut Criterion) {
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let key = session.key();
    let builder = key.proof("POST", URL).access_token(TOKEN);
    let (header, claims) = (builder.header().to_string(), builder.claims().unwrap().to_string());

    let mut group = c.benchmark_group("client_proof");
    group.bench_function("bare_es256_signature", |b| b.iter(|| key.sign_jws(&header, &claims).unwrap()));
    group.bench_function("session_proof_with_ath", |b| b.iter(|| session.proof("POST", URL, Some(TOKEN)).unwrap()));
    group.finish();
}

criterion_group!(benches, proof);
criterion_main!(benches);
