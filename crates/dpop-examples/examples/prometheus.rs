//! The guard's counters in Prometheus: the `metrics` feature of dpop-guard counts every decision
//! as `dpop_guard_requests_total{outcome, code}`, and `metrics-exporter-prometheus` renders them
//! on `GET /metrics` (an ordinary axum route, outside the DPoP layer, for the scraper).
//!
//! `cargo run --example prometheus -- jwks.json` (the issuer's JWK Set, e.g. from
//! `dpop jwks --issuer-key issuer.json`), then `curl -i http://127.0.0.1:3001/whoami` (a 401,
//! counted as `outcome="rejected"`) and `curl http://127.0.0.1:3001/metrics`.

use std::time::Duration;

use axum::{Router, routing::get};
use dpop_guard::DpopGuard;
use dpop_guard::axum::{Authenticated, DpopLayer};
use dpop_guard::token::{CachedValidator, JwkSet, JwtValidator};
use metrics_exporter_prometheus::PrometheusBuilder;

const ISSUER: &str = "https://auth.example.com";
const ADDR: &str = "127.0.0.1:3001";
const RESOURCE: &str = "http://127.0.0.1:3001/whoami";

/// Runs only for a valid access token bound to the key that signed this request's fresh proof.
async fn whoami(auth: Authenticated) -> String {
    format!("subject {}, key {}\n", auth.subject().unwrap_or("-"), auth.jkt().unwrap_or("-"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The recorder first: counters recorded before it is installed are lost.
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let upkeep = metrics.clone();
    // Without the exporter's own listener, upkeep (draining histograms, idle timeouts) is ours.
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    let path = std::env::args().nth(1).ok_or("usage: prometheus <the issuer's JWK Set file>")?;
    let keys = JwkSet::from_json(&std::fs::read_to_string(path)?)?;
    let tokens = JwtValidator::builder(ISSUER, RESOURCE).keys(keys).build()?;
    let guard = DpopGuard::builder().resource(RESOURCE).token_validator(CachedValidator::new(tokens)).build()?;
    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(DpopLayer::with_guard(guard))
        // Added after the layer, so outside it: the scraper sends no DPoP proof.
        .route("/metrics", get(move || std::future::ready(metrics.render())));

    let listener = tokio::net::TcpListener::bind(ADDR).await?;
    println!("GET {RESOURCE} with a DPoP-bound token from {ISSUER}; try it without one:");
    println!("  curl -i {RESOURCE}");
    println!("then see dpop_guard_requests_total:");
    println!("  curl -s http://{ADDR}/metrics | grep dpop_guard_requests_total");
    axum::serve(listener, app).await?;
    Ok(())
}
