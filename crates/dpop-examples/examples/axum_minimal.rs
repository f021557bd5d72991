//! The whole DPoP setup of an axum server, in one file. With the `dpop` tool (`crates/dpop-cli`):
//! `dpop jwks --issuer-key issuer.json > jwks.json && cargo run --example axum_minimal -- jwks.json`,
//! then `curl http://127.0.0.1:3000/whoami -H "Authorization: DPoP $TOKEN" -H "DPoP: $(dpop proof
//! --method GET --url http://127.0.0.1:3000/whoami --key key.json --token "$TOKEN")"` with a token
//! from `dpop token --issuer-key issuer.json --iss https://auth.example.com --aud
//! http://127.0.0.1:3000/whoami --key key.json`.
use axum::{Router, routing::get};
use dpop_guard::DpopGuard;
use dpop_guard::axum::{Authenticated, DpopLayer};
use dpop_guard::token::{CachedValidator, JwkSet, JwtValidator};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "http://127.0.0.1:3000/whoami";

/// Runs only for a valid access token bound to the key that signed this request's fresh proof.
async fn whoami(auth: Authenticated) -> String {
    format!("subject {}, key {}\n", auth.subject().unwrap_or("-"), auth.jkt().unwrap_or("-"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: axum_minimal <the issuer's JWK Set file>")?;
    let keys = JwkSet::from_json(&std::fs::read_to_string(path)?)?;
    let tokens = JwtValidator::builder(ISSUER, RESOURCE).keys(keys).build()?;
    let guard = DpopGuard::builder().resource(RESOURCE).token_validator(CachedValidator::new(tokens)).build()?;
    let app = Router::new().route("/whoami", get(whoami)).layer(DpopLayer::with_guard(guard));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("GET {RESOURCE} with a DPoP-bound token from {ISSUER}");
    axum::serve(listener, app).await?;
    Ok(())
}
