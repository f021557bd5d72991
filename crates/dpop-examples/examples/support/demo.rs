//! The demo, in one process: a development authorization server, an MCP server protected by
//! DPoP, an MCP client built on the client library (rmcp, `DpopMcpClient`, `OAuthClient`), and an
//! attacker who has stolen what travels on the wire (the access token, proofs, the session id,
//! the nonce) but not the client's key.
//!
//! The client's steps are shown as the servers saw them (a wiretap records every exchange), so
//! the retries the library makes by itself — the nonces of both servers — are in the table.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dpop_guard::client::DpopSession;
use dpop_guard::client::oauth::OAuthClient;
use dpop_guard::token::{CachedValidator, JwtValidator};
use dpop_guard::{Algorithm, DpopGuard, DpopKey, DpopVerifier, NoncePolicy, nonce::NonceIssuer};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use super::auth_server::{AuthServer, AuthServerConfig};
use super::client::{Attacker, Proof, Reply, Stolen, http_client};
use super::mcp::{self, Tools};
use super::mcp_client::connect;
use super::wiretap::{Seen, Wiretap};
use super::{Error, serve, unix_now};

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

/// An exchange the client's step should cause, as the wiretap sees it.
struct Expect {
    step: &'static str,
    server: &'static str,
    method: &'static str,
    status: RangeInclusive<u16>,
    error: Option<&'static str>,
}

const fn expect(step: &'static str, server: &'static str, method: &'static str, status: u16) -> Expect {
    Expect { step, server, method, status: status..=status, error: None }
}

const fn refused(
    step: &'static str,
    server: &'static str,
    method: &'static str,
    status: u16,
    error: &'static str,
) -> Expect {
    Expect { step, server, method, status: status..=status, error: Some(error) }
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
        let _ = writeln!(out, "{:<54} {:<6} {:<20} secure?", "step (as the servers saw it)", "status", "error");
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

    /// Records what the servers `seen` against what a client step should have caused: one row
    /// per expected exchange, in order among those of the same server and method (others, such
    /// as rmcp's event stream, are not this step's), and one insecure row per extra exchange of
    /// those kinds. `also` must hold for the last row to be secure.
    fn saw(&mut self, seen: &[Seen], expected: &[Expect], also: bool) -> bool {
        let mut all = true;
        for (at, expect) in expected.iter().enumerate() {
            let earlier = expected.iter().take(at);
            let nth = earlier.filter(|other| other.server == expect.server && other.method == expect.method).count();
            let got = seen.iter().filter(of_kind(expect.server, expect.method)).nth(nth);
            let last = at + 1 == expected.len();
            let secure = got
                .is_some_and(|got| expect.status.contains(&got.status) && got.error.as_deref() == expect.error)
                && (also || !last);
            all &= secure;
            self.rows.push(Row {
                step: expect.step,
                status: got.map(|got| got.status),
                error: got.and_then(|got| got.error.clone()),
                secure,
            });
        }
        let mut kinds: Vec<(&str, &str)> = expected.iter().map(|expect| (expect.server, expect.method)).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for (server, method) in kinds {
            let count = expected.iter().filter(|expect| expect.server == server && expect.method == method).count();
            for extra in seen.iter().filter(of_kind(server, method)).skip(count) {
                all = false;
                let (status, error) = (Some(extra.status), extra.error.clone());
                self.rows.push(Row { step: "unexpected request", status, error, secure: false });
            }
        }
        all
    }

    /// Records `reply` as the outcome of the attack `step`: secure when it is a 401 with the
    /// challenge `error`, for the expected reason (its `error_description` mentions `reason`).
    fn expect_refusal(&mut self, step: &'static str, reply: &Reply, error: &str, reason: &str) {
        let for_that_reason = reply.error_description().is_some_and(|description| description.contains(reason));
        let got = reply.error();
        let secure = reply.status == 401 && got.as_deref() == Some(error) && for_that_reason;
        self.rows.push(Row { step, status: Some(reply.status), error: got, secure });
    }
}

/// Runs the demo: starts both servers on ephemeral ports of 127.0.0.1, plays the client and
/// the attacker, and reports. The report says whether every outcome was the secure one.
///
/// # Errors
///
/// The servers could not start.
pub(crate) async fn run() -> Result<Report, Error> {
    let tap = Wiretap::default();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let (mcp_listener, as_listener) =
        (tokio::net::TcpListener::bind(loopback).await?, tokio::net::TcpListener::bind(loopback).await?);
    let mcp_url = format!("http://{}/mcp", mcp_listener.local_addr()?);
    let issuer = format!("http://{}", as_listener.local_addr()?);
    let (auth_server, as_app) = AuthServer::router(AuthServerConfig::new(&mcp_url, CLIENT_ID, &[SCOPE]), &issuer)?;
    serve(as_listener, tap.tap("AS", as_app), "development authorization server");

    let whoami_calls = Arc::new(AtomicUsize::new(0));
    let tools = Tools::new(Arc::clone(&whoami_calls));
    let app = mcp::router(guard(&mcp_url, &auth_server)?, "/mcp", vec!["127.0.0.1".to_owned()], tools);
    serve(mcp_listener, tap.tap("MCP", app), "MCP server");

    let session = DpopSession::new(DpopKey::generate()?);
    let mut report = Report {
        issuer: auth_server.issuer().to_owned(),
        mcp_url: mcp_url.clone(),
        client_jkt: session.jkt(),
        ..Report::default()
    };
    if let Err(error) = play(&mut report, &mcp_url, &session, &tap, &whoami_calls).await {
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
async fn play(
    report: &mut Report,
    mcp_url: &str,
    session: &DpopSession,
    tap: &Wiretap,
    whoami_calls: &AtomicUsize,
) -> Result<(), Error> {
    // The client knows nothing but the MCP server's URL.
    let oauth = OAuthClient::with_http(http_client()?, session.clone());
    let discovery = oauth.discover(mcp_url).await;
    let discovered = report.saw(
        &tap.take(),
        &[
            expect("client: GET /mcp without a token", "MCP", "GET", 401),
            expect("client: GET resource metadata (RFC 9728)", "MCP", "GET", 200),
            expect("client: GET AS metadata (RFC 8414)", "AS", "GET", 200),
        ],
        discovery.is_ok(),
    );
    let discovery = discovery?;
    ensure(discovered)?;

    let server = &discovery.authorization_server;
    let tokens = oauth.client_credentials(server, CLIENT_ID, Some(SCOPE), &discovery.resource).await;
    let issued = report.saw(
        &tap.take(),
        &[
            refused("client: token request (AS asks for a nonce)", "AS", "POST", 400, "use_dpop_nonce"),
            expect("client: token request again, with the nonce", "AS", "POST", 200),
        ],
        tokens.is_ok(),
    );
    let tokens = tokens?;
    ensure(issued)?;

    let mcp = connect(mcp_url, session.clone(), tokens.access_token).await;
    let initialized = report.saw(
        &tap.take(),
        &[
            refused("client: initialize (server asks for a nonce)", "MCP", "POST", 401, "use_dpop_nonce"),
            expect("client: initialize again, with the nonce", "MCP", "POST", 200),
            expect("client: notifications/initialized", "MCP", "POST", 202),
        ],
        mcp.is_ok(),
    );
    let mcp = mcp?;
    ensure(initialized)?;

    let tools = mcp.list_all_tools().await;
    let names: Vec<String> = tools.iter().flatten().map(|tool| tool.name.to_string()).collect();
    let listed = names.iter().any(|name| name == "whoami") && names.iter().any(|name| name == "echo");
    ensure(report.saw(&tap.take(), &[expect("client: tools/list", "MCP", "POST", 200)], listed))?;

    let result = mcp.call_tool(CallToolRequestParams::new("whoami")).await;
    let identity = result.ok().and_then(|result| result.structured_content);
    let knows_caller = identity.as_ref().is_some_and(|identity| {
        identity["jkt"] == json!(session.jkt()) && identity["sub"] == json!(CLIENT_ID) && identity["scheme"] == "DPoP"
    });
    report.whoami = identity;
    let seen = tap.take();
    let step = "client: tools/call whoami (answers the client's jkt)";
    ensure(report.saw(&seen, &[expect(step, "MCP", "POST", 200)], knows_caller))?;

    // The attacker has everything that went over the wire: the token, the proofs, the session
    // id, the nonce. Not the client's private key.
    let call = seen.iter().rfind(|seen| seen.jsonrpc_method().as_deref() == Some("tools/call"));
    let call = call.ok_or("the wiretap missed the tools/call request")?;
    let stolen = Stolen::from(call)?;
    let attacker = Attacker::new(http_client()?, mcp_url, &stolen);
    let whoami = serde_json::from_slice::<Value>(&call.body)?;

    let reply = attacker.replay(call).await?;
    report.expect_refusal("attacker: replays that request (same proof)", &reply, "invalid_dpop_proof", "used");

    let reply = attacker.post(&DpopKey::generate()?, &whoami, &Proof::default()).await?;
    report.expect_refusal("attacker: stolen token, proofs with own key", &reply, "invalid_token", "binding");

    let reply = attacker.post_as_bearer(&whoami).await?;
    report.expect_refusal("attacker: stolen token sent as Bearer", &reply, "invalid_token", "Bearer");

    // Proofs the client signed for something else (captured, or made in advance).
    let client_key = session.key();
    let other_url = Proof { htu: Some(mcp_url.replace("/mcp", "/admin")), ..Proof::default() };
    let reply = attacker.post(client_key, &whoami, &other_url).await?;
    report.expect_refusal("attacker: client's proof for another URL (htu)", &reply, "invalid_dpop_proof", "htu");

    let other_method = Proof { htm: Some("GET".to_owned()), ..Proof::default() };
    let reply = attacker.post(client_key, &whoami, &other_method).await?;
    report.expect_refusal("attacker: client's proof for GET sent as POST (htm)", &reply, "invalid_dpop_proof", "htm");

    let stale = Proof { iat: Some(unix_now()? - 3600), ..Proof::default() };
    let reply = attacker.post(client_key, &whoami, &stale).await?;
    report.expect_refusal("attacker: client's proof from an hour ago (iat)", &reply, "invalid_dpop_proof", "iat");

    // The nonce the client's session holds for the server, one character changed.
    let nonce = session.nonce(mcp_url).ok_or("the client's session holds no nonce of the MCP server")?;
    let forged = Proof { nonce: Some(forge(&nonce)), ..Proof::default() };
    let reply = attacker.post(client_key, &whoami, &forged).await?;
    report.expect_refusal("attacker: proof with a nonce the server never issued", &reply, "use_dpop_nonce", "nonce");
    tap.take();

    // DELETE needs no nonce under this policy, but a proof like any request.
    let closed = mcp.cancel().await;
    let step = "client: ends the MCP session (DELETE)";
    let deleted = Expect { step, server: "MCP", method: "DELETE", status: 200..=299, error: None };
    report.saw(&tap.take(), &[deleted], closed.is_ok());

    let calls = whoami_calls.load(Ordering::SeqCst);
    report.rows.push(Row {
        step: "server: whoami ran for the client only",
        status: None,
        error: None,
        secure: calls == 1,
    });
    Ok(())
}

/// Whether an exchange was with `server`, by `method`.
fn of_kind<'a>(server: &'a str, method: &'a str) -> impl Fn(&&Seen) -> bool + 'a {
    move |seen| seen.server == server && seen.method == method
}

/// An honest step that failed stops the demo.
fn ensure(secure: bool) -> Result<(), Error> {
    if secure { Ok(()) } else { Err("a step the client needs failed".into()) }
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
