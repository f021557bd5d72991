//! The MCP client of `examples/mcp_client.rs`, on rmcp and the client library: discovery (401 →
//! `resource_metadata` → RFC 9728 → RFC 8414), registration (RFC 7591) unless a client id is
//! given, the authorization code grant with PKCE and `dpop_jkt`, a DPoP-bound token, then MCP
//! over streamable HTTP with a proof on every request.
//!
//! When the authorization endpoint redirects at once (a development server that approves
//! without a person), the redirect is followed here; otherwise the URL is printed for a person to
//! open, and the code comes back to the library's loopback redirect listener
//! ([`LoopbackRedirect`], RFC 8252 §7.3: 127.0.0.1 on an ephemeral port).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dpop_guard::DpopKey;
use dpop_guard::client::oauth::{Discovery, LoopbackRedirect, OAuthClient, TokenSet};
use dpop_guard::client::rmcp::DpopMcpClient;
use dpop_guard::client::{DpopSession, keys};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{Map, Value};

use super::Error;
use super::client::http_client;

/// How long a person has to approve in the browser.
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(600);
/// The path of the loopback redirect URI.
const CALLBACK_PATH: &str = "/callback";

/// An MCP client that finds and authorizes against a DPoP-protected MCP server, then lists its
/// tools and calls them.
///
/// It discovers the authorization server from the server's 401 (RFC 9728, RFC 8414), registers
/// itself (RFC 7591) unless --client-id is given, and gets a DPoP-bound token with the
/// authorization code grant (PKCE, `dpop_jkt`). When the authorization endpoint redirects at
/// once, as development servers do, the redirect is followed; otherwise the URL to open is
/// printed and the code comes back to http://127.0.0.1:<ephemeral port>/callback.
#[derive(Debug, Parser)]
#[command(name = "mcp_client", version)]
pub(crate) struct Args {
    /// The MCP endpoint, e.g. http://127.0.0.1:8080/mcp
    #[arg(value_name = "SERVER_URL")]
    pub(crate) server_url: String,

    /// A file with the DPoP key (a private JWK or PKCS#8 PEM), created with owner-only
    /// permissions if absent. Default: a new key for this run only.
    #[arg(long, value_name = "PATH")]
    pub(crate) key: Option<PathBuf>,

    /// The OAuth client id; without it the client registers itself (RFC 7591).
    #[arg(long, value_name = "ID")]
    pub(crate) client_id: Option<String>,

    /// The scope to ask for (space-separated). Default: the resource's `scopes_supported`.
    #[arg(long, value_name = "SCOPES")]
    pub(crate) scope: Option<String>,

    /// A tool to call (repeat). Default: every tool that needs no arguments.
    #[arg(long = "call", value_name = "TOOL")]
    pub(crate) calls: Vec<String>,

    /// The arguments of the tools given with --call, as a JSON object.
    #[arg(long, value_name = "JSON", requires = "calls")]
    pub(crate) arguments: Option<String>,
}

/// What the client did.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The thumbprint of the client's key: the token's `cnf.jkt`.
    pub(crate) jkt: String,
    /// The issuer that authorized the client.
    pub(crate) issuer: String,
    /// Whether a person had to approve (the code came to the loopback listener).
    pub(crate) approved_by_person: bool,
    /// The tools: name and description.
    pub(crate) tools: Vec<(String, String)>,
    /// The tools called, with their results.
    pub(crate) calls: Vec<(String, Value)>,
}

/// Runs the client as `args` say; `show` receives what a person must read (the URL to open).
///
/// # Errors
///
/// Discovery, authorization, or an MCP request failed.
pub(crate) async fn run(args: &Args, show: impl Fn(&str)) -> Result<Outcome, Error> {
    let arguments = match &args.arguments {
        Some(json) => match serde_json::from_str::<Value>(json)? {
            Value::Object(arguments) => Some(arguments),
            _ => return Err("--arguments: a JSON object".into()),
        },
        None => None,
    };
    let key = match &args.key {
        Some(path) => keys::load_or_generate(path)?,
        None => DpopKey::generate()?,
    };
    let session = DpopSession::new(key);
    let oauth = OAuthClient::with_http(http_client()?, session.clone());
    let discovery = oauth.discover(&args.server_url).await?;
    let (tokens, approved_by_person) =
        authorize(&oauth, &discovery, args.client_id.as_deref(), args.scope.as_deref(), show).await?;

    let mcp = connect(&args.server_url, session.clone(), tokens.access_token).await?;
    let result = use_tools(&mcp, &args.calls, arguments).await;
    // Ends the MCP session (DELETE) whatever happened.
    mcp.cancel().await?;
    let (tools, calls) = result?;
    Ok(Outcome { jkt: session.jkt(), issuer: discovery.authorization_server.issuer, approved_by_person, tools, calls })
}

/// An rmcp client of the MCP endpoint `url`, `initialize`d, sending `token` with a proof of
/// `session`'s key on every request.
///
/// # Errors
///
/// `initialize` failed.
pub(crate) async fn connect(
    url: &str,
    session: DpopSession,
    token: String,
) -> Result<RunningService<RoleClient, ()>, Error> {
    let config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(DpopMcpClient::new(session), config);
    Ok(().serve(transport).await?)
}

type Tools = (Vec<(String, String)>, Vec<(String, Value)>);

/// Lists the tools and calls `calls` (default: those without required arguments).
async fn use_tools(
    mcp: &RunningService<RoleClient, ()>,
    calls: &[String],
    arguments: Option<Map<String, Value>>,
) -> Result<Tools, Error> {
    let listed = mcp.list_all_tools().await?;
    let needs_nothing = |tool: &rmcp::model::Tool| {
        tool.input_schema.get("required").and_then(Value::as_array).is_none_or(|required| required.is_empty())
    };
    let names: Vec<String> = if calls.is_empty() {
        listed.iter().filter(|tool| needs_nothing(tool)).map(|tool| tool.name.to_string()).collect()
    } else {
        calls.to_vec()
    };
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        let mut request = CallToolRequestParams::new(name.clone());
        if let Some(arguments) = &arguments {
            request = request.with_arguments(arguments.clone());
        }
        let result = mcp.call_tool(request).await?;
        results.push((name, serde_json::to_value(result)?));
    }
    let tools = listed
        .iter()
        .map(|tool| (tool.name.to_string(), tool.description.as_deref().unwrap_or_default().to_owned()))
        .collect();
    Ok((tools, results))
}

/// The authorization code grant: registered unless `client_id` is given, approved at once or by
/// a person, exchanged for a DPoP-bound token. Says whether a person approved.
async fn authorize(
    oauth: &OAuthClient,
    discovery: &Discovery,
    client_id: Option<&str>,
    scope: Option<&str>,
    show: impl Fn(&str),
) -> Result<(TokenSet, bool), Error> {
    let loopback = LoopbackRedirect::bind(CALLBACK_PATH).await?;
    let redirect_uri = loopback.redirect_uri().to_owned();
    let client_id = match client_id {
        Some(id) => id.to_owned(),
        None => oauth.register(&discovery.authorization_server, "dpop-guard mcp_client", &redirect_uri).await?,
    };
    let scopes = discovery.scopes.join(" ");
    let scope = scope.or_else(|| (!scopes.is_empty()).then_some(scopes.as_str()));
    let request = oauth.authorization_request(discovery, &client_id, &redirect_uri, scope)?;

    // A development server answers with the redirect itself; a real one with a login page.
    let response = http_client()?.get(request.url()).send().await?;
    let redirected_at_once = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .and_then(|location| location.split_once('?'))
        .filter(|(uri, _)| *uri == redirect_uri)
        .map(|(_, query)| query.to_owned());
    drop(response);
    let (code, by_person) = match redirected_at_once {
        Some(query) => (request.code_from_redirect(&query)?, false),
        None => {
            show(&format!("Open this URL in a browser to authorize the client:\n\n  {}\n", request.url()));
            (loopback.receive(&request, APPROVAL_TIMEOUT).await?, true)
        }
    };
    let tokens = oauth.exchange_code(discovery, &client_id, &code, &request).await?;
    Ok((tokens, by_person))
}
