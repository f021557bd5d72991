//! The demo, in one process: a development authorization server, an MCP server protected by
//! DPoP, a client that finds its way like an MCP client, and an attacker who has stolen what
//! travels on the wire (the access token, proofs, the session id) but not the client's key.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dpop_guard::token::{CachedValidator, JwtValidator};
use dpop_guard::{Algorithm, DpopGuard, DpopKey, DpopVerifier, NoncePolicy, nonce::NonceIssuer};
use serde_json::{Value, json};

use super::auth_server::{AuthServer, AuthServerConfig};
use super::client::{self, Exchange, McpClient, Proof, Reply};
use super::mcp::{self, Tools};
use super::{Error, challenge_param, unix_now};

/// The client the authorization server knows.
pub(crate) const CLIENT_ID: &str = "demo-client";
/// The scope the MCP server requires.
pub(crate) const SCOPE: &str = "mcp:tools";

/// One step: what happened and whether it is the secure outcome.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) step: &'static str,
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) secure: bool,
}

/// Everything the demo did.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) issuer: String,
    pub(crate) mcp_url: String,
    pub(crate) client_jkt: String,
    pub(crate) rows: Vec<Row>,
    /// What the `whoami` tool answered the client.
    pub(crate) whoami: Option<Value>,
    /// Why the demo could not go on, if it stopped early.
    pub(crate) aborted: Option<String>,
}

impl Report {
    /// Every step ran and had the secure outcome.
    pub(crate) fn all_secure(&self) -> bool {
        self.aborted.is_none() && self.rows.iter().all(|row| row.secure)
    }

    /// The report as printed: the setup, one line per step, the verdict.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ =
            writeln!(out, "dpop-guard demo: an MCP client and an attacker against an MCP server that requires DPoP");
        let _ = writeln!(out, "  authorization server  {} (development only)", self.issuer);
        let _ = writeln!(out, "  MCP server            {}", self.mcp_url);
        let _ = writeln!(out, "  client key            jkt {}", self.client_jkt);
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<54} {:<6} {:<20} secure?", "step", "status", "WWW-Authenticate");
        for row in &self.rows {
            let status = row.status.map_or_else(|| "-".to_owned(), |status| status.to_string());
            let error = row.error.as_deref().unwrap_or("-");
            let secure = if row.secure { "yes" } else { "NO" };
            let _ = writeln!(out, "{:<54} {status:<6} {error:<20} {secure}", row.step);
        }
        let _ = writeln!(out);
        if let Some(whoami) = &self.whoami {
            let _ = writeln!(out, "whoami answered the client: {whoami}");
        }
        if let Some(reason) = &self.aborted {
            let _ = writeln!(out, "the demo stopped early: {reason}");
        }
        let secure = self.rows.iter().filter(|row| row.secure).count();
        let verdict = if self.all_secure() { "" } else { " — NOT SECURE" };
        let _ = writeln!(out, "{secure} of {} outcomes are the secure ones{verdict}", self.rows.len());
        out
    }

    /// Records `reply` as the outcome of the attack `step`: secure when it is a 401 with the
    /// challenge `error`, for the expected reason (its `error_description` mentions `reason`).
    fn expect_refusal(&mut self, step: &'static str, reply: &Reply, error: &str, reason: &str) -> bool {
        let description = reply.challenge().and_then(|challenge| challenge_param(challenge, "error_description"));
        let for_that_reason = description.is_some_and(|description| description.contains(reason));
        self.expect(step, reply, 401, Some(error), for_that_reason)
    }

    /// Records `reply` as the outcome of `step`: secure when it has `status`, the challenge
    /// `error` (none for `None`), and `also` holds.
    fn expect(&mut self, step: &'static str, reply: &Reply, status: u16, error: Option<&str>, also: bool) -> bool {
        let got = reply.error();
        let secure = reply.status == status && got.as_deref() == error && also;
        self.rows.push(Row { step, status: Some(reply.status), error: got, secure });
        secure
    }
}

/// Runs the demo: starts both servers on ephemeral ports of 127.0.0.1, plays the client and
/// the attacker, and reports. The report says whether every outcome was the secure one.
///
/// # Errors
///
/// The servers could not start.
pub(crate) async fn run() -> Result<Report, Error> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let mcp_url = format!("http://{}/mcp", listener.local_addr()?);
    let auth_server = AuthServer::start(AuthServerConfig::new(&mcp_url, CLIENT_ID, &[SCOPE])).await?;

    let whoami_calls = Arc::new(AtomicUsize::new(0));
    let tools = Tools::new(Arc::clone(&whoami_calls));
    let app = mcp::router(guard(&mcp_url, &auth_server)?, "/mcp", vec!["127.0.0.1".to_owned()], tools);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "MCP server stopped");
        }
    });

    let key = DpopKey::generate()?;
    let mut report = Report {
        issuer: auth_server.issuer().to_owned(),
        mcp_url: mcp_url.clone(),
        client_jkt: key.thumbprint().to_string(),
        ..Report::default()
    };
    if let Err(error) = play(&mut report, &mcp_url, key, &whoami_calls).await {
        report.aborted = Some(error.to_string());
    }
    Ok(report)
}

/// The MCP server's guard: DPoP-bound JWTs from the authorization server (keys fetched from its
/// JWKS), the resource's metadata, nonces on every POST (each MCP message).
///
/// # Errors
///
/// An invalid configuration.
pub(crate) fn guard(mcp_url: &str, auth_server: &AuthServer) -> Result<DpopGuard, Error> {
    let validator = JwtValidator::builder(auth_server.issuer(), mcp_url)
        .jwks_url(auth_server.jwks_url())
        .algorithms([Algorithm::ES256])
        .build()?;
    let verifier = DpopVerifier::builder().nonces(NonceIssuer::process_wide()?).build()?;
    Ok(DpopGuard::builder()
        .verifier(verifier)
        .resource(mcp_url)
        .authorization_server(auth_server.issuer())
        .scopes_supported([SCOPE])
        .token_validator(CachedValidator::new(validator))
        .required_scopes([SCOPE])
        .nonce_policy(NoncePolicy::when(|method, _path| method == "POST"))
        .build()?)
}

/// The steps. Stops at the first honest step that fails: what follows needs it.
async fn play(report: &mut Report, mcp_url: &str, key: DpopKey, whoami_calls: &AtomicUsize) -> Result<(), Error> {
    let http = client::http_client()?;

    // The client knows nothing but the MCP server's URL.
    let reply = client::initialize_without_token(&http, mcp_url).await?;
    let metadata_url = client::resource_metadata_url(&reply);
    ensure(report.expect("client: initialize without a token", &reply, 401, None, metadata_url.is_ok()))?;

    let reply = client::get(&http, &metadata_url?).await?;
    let issuer = client::authorization_server(&reply, mcp_url);
    ensure(report.expect("client: GET resource metadata (RFC 9728)", &reply, 200, None, issuer.is_ok()))?;
    let issuer = issuer?;

    let reply = client::get(&http, &client::authorization_server_metadata_url(&issuer)).await?;
    let token_endpoint = client::token_endpoint(&reply, &issuer);
    ensure(report.expect("client: GET AS metadata (RFC 8414)", &reply, 200, None, token_endpoint.is_ok()))?;

    let reply = client::request_token(&http, &key, &token_endpoint?, CLIENT_ID, SCOPE, mcp_url).await?;
    let token = client::access_token(&reply);
    ensure(report.expect("client: token request with a DPoP proof", &reply, 200, None, token.is_ok()))?;
    let token = token?;

    let mut mcp = McpClient::new(http.clone(), mcp_url, key, &token);
    let Exchange { nonce_challenge, reply } = mcp.initialize().await?;
    // Without a challenge, the reply itself is the outcome: not the expected one.
    let challenge = nonce_challenge.as_ref().unwrap_or(&reply);
    report.expect("client: initialize (server asks for a nonce)", challenge, 401, Some("use_dpop_nonce"), true);
    let session = mcp.session().is_some();
    ensure(report.expect("client: initialize again, with the nonce", &reply, 200, None, session))?;

    let reply = mcp.notify("notifications/initialized").await?.reply;
    ensure(report.expect("client: notifications/initialized", &reply, 202, None, true))?;

    let reply = mcp.request("tools/list", json!({}), &Proof::default()).await?.reply;
    let names = tool_names(&reply);
    let listed = names.contains(&"whoami".to_owned()) && names.contains(&"echo".to_owned());
    ensure(report.expect("client: tools/list", &reply, 200, None, listed))?;

    let reply = mcp.request("tools/call", whoami(), &Proof::default()).await?.reply;
    let identity =
        reply.jsonrpc_result().ok().and_then(|mut result| result.get_mut("structuredContent").map(Value::take));
    let knows_caller = identity.as_ref().is_some_and(|identity| {
        identity["jkt"] == json!(mcp.jkt()) && identity["sub"] == json!(CLIENT_ID) && identity["scheme"] == "DPoP"
    });
    report.whoami = identity;
    ensure(report.expect("client: tools/call whoami (answers the client's jkt)", &reply, 200, None, knows_caller))?;

    // The attacker has everything that went over the wire: the token, the proofs, the session
    // id, the nonce. Not the client's private key.
    let reply = mcp.replay_last().await?;
    report.expect_refusal("attacker: replays that request (same proof)", &reply, "invalid_dpop_proof", "used");

    let mut attacker = McpClient::new(http.clone(), mcp_url, DpopKey::generate()?, &token);
    attacker.join_session(&mcp);
    let reply = attacker.request("tools/call", whoami(), &Proof::default()).await?.reply;
    report.expect_refusal("attacker: stolen token, proofs with own key", &reply, "invalid_token", "binding");

    let reply = attacker.call_as_bearer("whoami").await?;
    report.expect_refusal("attacker: stolen token sent as Bearer", &reply, "invalid_token", "Bearer");

    // Proofs the client signed for something else (captured, or made in advance).
    let other_url = Proof { htu: Some(mcp_url.replace("/mcp", "/admin")), ..Proof::default() };
    let reply = mcp.request("tools/call", whoami(), &other_url).await?.reply;
    report.expect_refusal("attacker: client's proof for another URL (htu)", &reply, "invalid_dpop_proof", "htu");

    let other_method = Proof { htm: Some("GET".to_owned()), ..Proof::default() };
    let reply = mcp.request("tools/call", whoami(), &other_method).await?.reply;
    report.expect_refusal("attacker: client's proof for GET sent as POST (htm)", &reply, "invalid_dpop_proof", "htm");

    let stale = Proof { iat: Some(unix_now()? - 3600), ..Proof::default() };
    let reply = mcp.request("tools/call", whoami(), &stale).await?.reply;
    report.expect_refusal("attacker: client's proof from an hour ago (iat)", &reply, "invalid_dpop_proof", "iat");

    let forged = Proof { nonce: Some(forge(mcp.nonce().unwrap_or("AAAA"))), ..Proof::default() };
    let reply = mcp.request("tools/call", whoami(), &forged).await?.reply;
    report.expect_refusal("attacker: proof with a nonce the server never issued", &reply, "use_dpop_nonce", "nonce");

    // DELETE needs no nonce under this policy, but a proof like any request.
    let reply = mcp.end_session().await?.reply;
    let ended = (200..300).contains(&reply.status);
    report.expect("client: ends the MCP session (DELETE)", &reply, reply.status, None, ended);

    let calls = whoami_calls.load(Ordering::SeqCst);
    report.rows.push(Row {
        step: "server: whoami ran for the client only",
        status: None,
        error: None,
        secure: calls == 1,
    });
    Ok(())
}

/// An honest step that failed stops the demo.
fn ensure(secure: bool) -> Result<(), Error> {
    if secure { Ok(()) } else { Err("a step the client needs failed".into()) }
}

fn whoami() -> Value {
    json!({ "name": "whoami", "arguments": {} })
}

fn tool_names(reply: &Reply) -> Vec<String> {
    let result = reply.jsonrpc_result().unwrap_or_default();
    let tools = result.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
    tools.iter().filter_map(|tool| tool.get("name").and_then(Value::as_str)).map(str::to_owned).collect()
}

/// `nonce` with one character changed: same shape, wrong MAC.
fn forge(nonce: &str) -> String {
    let middle = nonce.len() / 2;
    nonce
        .char_indices()
        .map(|(at, c)| match (at == middle, c) {
            (true, 'A') => 'B',
            (true, _) => 'A',
            (false, c) => c,
        })
        .collect()
}
