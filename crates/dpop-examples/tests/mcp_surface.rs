//! Through every framework: RFC 9728 metadata, `resource_metadata` in challenges, server nonces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use dpop_guard::{DpopGuard, DpopVerifier, NoncePolicy, nonce::NonceIssuer};
use serde_json::json;
use support::{Client, Framework, RawRequest, send};

fn guard_for(base: &str, nonces: bool) -> DpopGuard {
    let mut verifier = DpopVerifier::builder();
    if nonces {
        verifier = verifier.nonces(NonceIssuer::process_wide().unwrap());
    }
    let mut guard = support::guard_builder()
        .verifier(verifier.build().unwrap())
        .resource(&format!("{base}/mcp"))
        .authorization_server("https://as.example.com")
        .scopes_supported(["mcp:tools"]);
    if nonces {
        guard = guard.nonce_policy(NoncePolicy::when(|method, _| method == "POST"));
    }
    guard.build().unwrap()
}

async fn metadata_and_challenges(framework: Framework) {
    let server = framework.start_with(|base| guard_for(base, false)).await;
    let base = server.base();
    let response = send(server.addr, &RawRequest::new("GET", "/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(response.status, 200, "{framework:?}: {}", response.body);
    assert_eq!(response.all("access-control-allow-origin"), ["*"]);
    let document: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(
        document,
        json!({
            "resource": format!("{base}/mcp"),
            "authorization_servers": ["https://as.example.com"],
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "dpop_bound_access_tokens_required": true,
        }),
        "{framework:?}"
    );
    assert_eq!(server.handler_runs(), 0, "{framework:?}: the document is the layer's, not a handler's");

    let metadata = format!(r#"resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#);
    let client = Client::new(base.clone());
    let bad_proof = client.with_proof("POST", "/mcp", &client.proof_for("GET", &client.url("/mcp")));
    for request in [RawRequest::new("POST", "/mcp"), bad_proof] {
        let response = send(server.addr, &request).await;
        assert_eq!(response.status, 401, "{framework:?}");
        let challenge = response.all("www-authenticate");
        assert!(challenge[0].ends_with(&metadata), "{framework:?}: {challenge:?}");
    }
    assert_eq!(send(server.addr, &client.valid("POST", "/mcp")).await.status, 200, "{framework:?}");
}

async fn nonce_flow(framework: Framework) {
    let server = framework.start_with(|base| guard_for(base, true)).await;
    let client = Client::new(server.base());
    let url = client.url("/mcp");

    // GET needs no nonce under this policy.
    assert_eq!(send(server.addr, &client.valid("GET", "/mcp")).await.status, 200, "{framework:?}");

    // POST without one: Figure 24, with exactly one DPoP-Nonce.
    let first = send(server.addr, &client.valid("POST", "/mcp")).await;
    assert_eq!(first.status, 401, "{framework:?}");
    assert!(first.all("www-authenticate")[0].starts_with(
        r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256""#
    ));
    let nonces = first.all("dpop-nonce");
    assert_eq!(nonces.len(), 1, "{framework:?}");
    let nonce = nonces[0].to_owned();

    // Retry with it.
    let proof = client.key.proof("POST", &url).access_token(&client.token).nonce(&nonce).sign().unwrap();
    let retry = send(server.addr, &client.with_proof("POST", "/mcp", &proof)).await;
    assert_eq!(retry.status, 200, "{framework:?}: {}", retry.body);

    // A forged nonce.
    let forged = format!("{}A", &nonce[..nonce.len() - 1]);
    let forged = if forged == nonce { format!("{}B", &nonce[..nonce.len() - 1]) } else { forged };
    let proof = client.key.proof("POST", &url).access_token(&client.token).nonce(&forged).sign().unwrap();
    let response = send(server.addr, &client.with_proof("POST", "/mcp", &proof)).await;
    assert_eq!(response.status, 401, "{framework:?}");
    assert_eq!(response.all("dpop-nonce").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_serves_metadata_and_nonces() {
    metadata_and_challenges(Framework::Tower).await;
    nonce_flow(Framework::Tower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serves_metadata_and_nonces() {
    metadata_and_challenges(Framework::Axum).await;
    nonce_flow(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_serves_metadata_and_nonces() {
    metadata_and_challenges(Framework::Actix).await;
    nonce_flow(Framework::Actix).await;
}
