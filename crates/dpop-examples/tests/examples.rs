//! The examples' servers, run in process from the code the examples run
//! (`examples/support/`): `mcp_server`'s configuration errors, `--help`, and full request
//! cycles against a development authorization server; `actix_server` over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../examples/support/mod.rs"]
mod examples_support;

use clap::{CommandFactory as _, Parser as _};
use dpop_guard::DpopKey;
use examples_support::auth_server::{AuthServer, AuthServerConfig};
use examples_support::client::{self, McpClient, Proof};
use examples_support::mcp_server::{Args, build};
use examples_support::{actix_app, challenge_param};
use dpop_test_support::{REDIS_URL, redis_or_skip};
use serde_json::{Value, json};

const CLIENT_ID: &str = "test-client";
const SCOPE: &str = "mcp:tools";

/// `mcp_server` with `options` after the required ones (inline keys).
fn args(options: &[&str]) -> Result<Args, clap::Error> {
    let jwks = json!({ "keys": [DpopKey::generate().unwrap().public_jwk()] }).to_string();
    let mut argv = vec!["mcp_server"];
    let given = |prefix: &str| options.iter().any(|option| option.starts_with(prefix));
    for (option, value) in
        [("--resource", "https://mcp.example.com/mcp"), ("--issuer", "https://as.example.com"), ("--jwks", &jwks)]
    {
        if !given(option) {
            argv.extend([option, value]);
        }
    }
    argv.extend(options);
    Args::try_parse_from(argv)
}

/// The start-up error for `options`.
async fn startup_error(options: &[&str]) -> String {
    match build(&args(options).unwrap()).await {
        Ok(_) => panic!("{options:?} was accepted"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn mcp_server_names_the_option_of_a_configuration_that_cannot_work() {
    assert!(build(&args(&[]).unwrap()).await.is_ok(), "the base configuration is valid");
    let cases: [(&[&str], &str); 12] = [
        (&["--resource", "ftp://mcp.example.com/mcp"], "--resource: the resource must be an absolute http(s) URI"),
        (
            &["--resource", "https://mcp.example.com/mcp?x=1"],
            "--resource: the resource must be an absolute http(s) URI",
        ),
        (&["--issuer", "as.example.com"], "--issuer: the authorization server's issuer identifier is an https:// URL"),
        (&["--jwks-url", "http://as.example.com/jwks"], "--jwks-url: the endpoint URL must be https"),
        (&["--jwks-url", "not a url"], "--jwks-url: the endpoint or issuer URL is not a valid http(s) URL"),
        (&["--jwks", "{\"keys\": []}"], "--jwks: no usable public signing key in it"),
        (&["--jwks", "[1, 2]"], "--jwks: neither a JWK Set (with `keys`) nor a JWK (with `kty`)"),
        (&["--jwks-file", "/nonexistent/jwks.json"], "--jwks-file: cannot read /nonexistent/jwks.json"),
        (&["--nonce", "post", "--nonce-key", "short"], "--nonce-key: a nonce key is 32 bytes"),
        (&["--nonce-key", &"ab".repeat(32)], "--nonce-key: set --nonce post or --nonce all to use it"),
        (&["--replay-store", "disk"], "--replay-store: `memory` or a Redis URL"),
        (&["--iat-window", "0"], "--iat-window: must be at least 1 second"),
    ];
    for (options, expected) in cases {
        let error = startup_error(options).await;
        assert!(error.starts_with(expected), "{options:?}: {error}");
    }
    // A single JWK, inline, is a key set of one.
    let jwk = DpopKey::generate().unwrap().public_jwk().to_string();
    assert!(build(&args(&["--jwks", &jwk]).unwrap()).await.is_ok());
}

#[test]
fn mcp_server_refuses_unusable_flags_before_starting() {
    let usage = |options: &[&str]| args(options).map(|_| ()).unwrap_err();
    let error = usage(&["--dpop-algs", "ES256,HS256"]);
    assert!(error.to_string().contains("unknown algorithm `HS256`"), "{error}");
    assert_eq!(error.exit_code(), 2);
    let error = usage(&["--nonce", "sometimes"]);
    assert_eq!(error.exit_code(), 2, "{error}");
    // The issuer's keys: exactly one source.
    let error =
        Args::try_parse_from(["mcp_server", "--resource", "https://m.example/mcp", "--issuer", "https://a.example"])
            .map(|_| ())
            .unwrap_err();
    assert!(error.to_string().contains("--jwks-url <URL>|--jwks-file <PATH>|--jwks <JSON>"), "{error}");
    let error = usage(&["--jwks-url", "https://a.example/jwks", "--jwks-file", "keys.json"]);
    assert!(error.to_string().contains("cannot be used with"), "{error}");
}

#[test]
fn mcp_server_help_documents_every_option_and_its_variable() {
    let help = Args::command().render_long_help().to_string();
    for (flag, variable) in [
        ("--listen", "MCP_LISTEN"),
        ("--resource", "MCP_RESOURCE"),
        ("--issuer", "MCP_ISSUER"),
        ("--jwks-url", "MCP_JWKS_URL"),
        ("--jwks-file", "MCP_JWKS_FILE"),
        ("--jwks", "MCP_JWKS"),
        ("--dpop-algs", "MCP_DPOP_ALGS"),
        ("--token-algs", "MCP_TOKEN_ALGS"),
        ("--iat-window", "MCP_IAT_WINDOW"),
        ("--nonce", "MCP_NONCE"),
        ("--nonce-key", "MCP_NONCE_KEY"),
        ("--replay-store", "MCP_REPLAY_STORE"),
        ("--allow-bearer", "MCP_ALLOW_BEARER"),
        ("--required-scope", "MCP_REQUIRED_SCOPES"),
        ("--allowed-host", "MCP_ALLOWED_HOSTS"),
    ] {
        assert!(help.contains(flag) && help.contains(&format!("env: {variable}")), "{flag} / {variable}:\n{help}");
    }
}

/// A running `mcp_server` with `options`, and a development authorization server for it.
struct McpServer {
    url: String,
    auth_server: AuthServer,
}

async fn start_mcp_server(options: &[&str]) -> McpServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/mcp");
    let auth_server = AuthServer::start(AuthServerConfig::new(&url, CLIENT_ID, &[SCOPE])).await.unwrap();
    let (listen, issuer, jwks_url) = (addr.to_string(), auth_server.issuer().to_owned(), auth_server.jwks_url());
    let mut argv = vec!["mcp_server", "--listen", &listen, "--resource", &url, "--issuer", &issuer];
    argv.extend(["--jwks-url", &jwks_url, "--required-scope", SCOPE]);
    argv.extend(options);
    let router = build(&Args::try_parse_from(argv).unwrap()).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    McpServer { url, auth_server }
}

impl McpServer {
    /// A client with a token from the development authorization server.
    async fn client(&self) -> McpClient {
        let http = client::http_client().unwrap();
        let key = DpopKey::generate().unwrap();
        let endpoint = self.auth_server.token_endpoint();
        let reply = client::request_token(&http, &key, &endpoint, CLIENT_ID, SCOPE, &self.url).await.unwrap();
        let token = client::access_token(&reply).unwrap();
        McpClient::new(http, &self.url, key, &token)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_from_401_to_a_tool_call() {
    let server = start_mcp_server(&["--nonce", "post"]).await;
    let http = client::http_client().unwrap();

    // Without a token: 401, pointing to the metadata, which points to the issuer.
    let reply = client::initialize_without_token(&http, &server.url).await.unwrap();
    assert_eq!(reply.status, 401);
    let metadata_url = client::resource_metadata_url(&reply).unwrap();
    let metadata = client::get(&http, &metadata_url).await.unwrap();
    assert_eq!(metadata.status, 200);
    assert_eq!(client::authorization_server(&metadata, &server.url).unwrap(), server.auth_server.issuer());
    assert_eq!(metadata.json().unwrap()["scopes_supported"], json!([SCOPE]));

    // GET and DELETE are protected like POST.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let reply = http.request(method.clone(), &server.url).send().await.unwrap();
        assert_eq!(reply.status(), 401, "{method}");
        assert!(reply.headers().contains_key("www-authenticate"), "{method}");
    }

    // With a token and proofs: the nonce challenge, then the MCP session.
    let mut mcp = server.client().await;
    let exchange = mcp.initialize().await.unwrap();
    let challenge = exchange.nonce_challenge.expect("POST needs a nonce");
    assert_eq!((challenge.status, challenge.error().as_deref()), (401, Some("use_dpop_nonce")));
    assert_eq!(exchange.reply.status, 200, "{}", exchange.reply.body);
    assert!(mcp.session().is_some());
    assert_eq!(mcp.notify("notifications/initialized").await.unwrap().reply.status, 202);

    let reply =
        mcp.request("tools/call", json!({ "name": "whoami", "arguments": {} }), &Proof::default()).await.unwrap();
    assert_eq!(reply.reply.status, 200, "{}", reply.reply.body);
    let identity = reply.reply.jsonrpc_result().unwrap()["structuredContent"].take();
    assert_eq!(identity["jkt"], json!(mcp.jkt()));
    assert_eq!(identity["sub"], CLIENT_ID);

    let echo = json!({ "name": "echo", "arguments": { "text": "hello" } });
    let reply = mcp.request("tools/call", echo, &Proof::default()).await.unwrap().reply;
    assert_eq!(reply.jsonrpc_result().unwrap()["content"][0]["text"], "hello");

    // No replay, no Bearer (not allowed by default), a proof for POST is no proof for GET.
    let replayed = mcp.replay_last().await.unwrap();
    assert_eq!((replayed.status, replayed.error().as_deref()), (401, Some("invalid_dpop_proof")));
    let bearer = mcp.call_as_bearer("whoami").await.unwrap();
    assert_eq!((bearer.status, bearer.error().as_deref()), (401, Some("invalid_token")));
    let post_proof = DpopKey::generate().unwrap().proof("POST", &server.url).access_token("token").sign().unwrap();
    let get = http.get(&server.url).header("authorization", "DPoP token").header("dpop", post_proof);
    let reply = get.send().await.unwrap();
    assert_eq!(reply.status(), 401);
    let challenge = reply.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("`htm` does not match"), "{challenge}");

    // DELETE needs no nonce under `--nonce post`, but a proof of its own.
    let reply = mcp.end_session().await.unwrap();
    assert!(reply.nonce_challenge.is_none());
    assert!((200..300).contains(&reply.reply.status), "{}", reply.reply.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_scopes_and_bearer_options() {
    // A scope the authorization server never grants: every token is short of it.
    let server = start_mcp_server(&["--required-scope", "admin", "--allow-bearer"]).await;
    let http = client::http_client().unwrap();
    let reply = client::initialize_without_token(&http, &server.url).await.unwrap();
    assert!(reply.challenge().unwrap().starts_with("Bearer"), "mixed mode: {:?}", reply.challenge());

    let mut mcp = server.client().await;
    let reply = mcp.initialize().await.unwrap().reply;
    assert_eq!((reply.status, reply.error().as_deref()), (403, Some("insufficient_scope")));
    assert_eq!(challenge_param(reply.challenge().unwrap(), "scope").as_deref(), Some("mcp:tools admin"));
    // The token is DPoP-bound: refused as Bearer even in mixed mode (RFC 9449 §7.2).
    let reply = mcp.call_as_bearer("whoami").await.unwrap();
    assert_eq!(reply.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_with_the_redis_replay_store() {
    if !redis_or_skip("examples::mcp_server_with_the_redis_replay_store").await {
        return;
    }
    let server = start_mcp_server(&["--replay-store", REDIS_URL]).await;
    let mut mcp = server.client().await;
    let reply = mcp.initialize().await.unwrap().reply;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let replayed = mcp.replay_last().await.unwrap();
    assert_eq!((replayed.status, replayed.error().as_deref()), (401, Some("invalid_dpop_proof")));
    assert!(challenge_param(replayed.challenge().unwrap(), "error_description").unwrap().contains("already been used"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_server_answers_who_is_calling() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthServerConfig::new(&base, actix_app::CLIENT_ID, &[actix_app::SCOPE]);
    let auth_server = AuthServer::start(config).await.unwrap();
    let _server = actix_app::spawn(listener, actix_app::guard(&base, &auth_server).unwrap());

    let key = DpopKey::generate().unwrap();
    let (anonymous, identified) = actix_app::try_it(&base, &auth_server, &key).await.unwrap();
    assert_eq!(anonymous.status, 401);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource");
    assert_eq!(challenge_param(anonymous.challenge().unwrap(), "resource_metadata"), Some(metadata_url.clone()));
    assert_eq!(identified.status, 200, "{}", identified.body);
    let identity: Value = serde_json::from_str(&identified.body).unwrap();
    assert_eq!(identity["jkt"], key.thumbprint().to_string().as_str());
    assert_eq!(identity["sub"], actix_app::CLIENT_ID);
    assert_eq!(identity["scheme"], "DPoP");

    let http = client::http_client().unwrap();
    let metadata = client::get(&http, &metadata_url).await.unwrap();
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.json().unwrap()["authorization_servers"], json!([auth_server.issuer()]));
}
