//! The examples, run in process from the code the examples run (`examples/support/`):
//! `mcp_server`'s configuration errors, `--help`, and full request cycles against a development
//! authorization server (its own, or one in the same process); `mcp_client` against it; the
//! README's curl flow with the real `dpop` binary; `actix_server` over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../examples/support/mod.rs"]
mod examples_support;

use std::path::PathBuf;
use std::process::Command;

use clap::{CommandFactory as _, Parser as _};
use dpop_guard::DpopKey;
use dpop_guard::client::DpopSession;
use dpop_guard::client::oauth::OAuthClient;
use dpop_test_support::{REDIS_URL, redis_or_skip};
use examples_support::auth_server::{AuthServer, AuthServerConfig};
use examples_support::client::{Attacker, Stolen, http_client};
use examples_support::mcp_client::{self, connect};
use examples_support::mcp_server::{Args, DEV_CLIENT_ID, INITIALIZE, build};
use examples_support::wiretap::{Seen, Wiretap};
use examples_support::{actix_app, challenge_param};
use rmcp::model::CallToolRequestParams;
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
        let replaced = given(option) || (option == "--jwks" && given("--discover"));
        if !replaced {
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
    let cases: [(&[&str], &str); 17] = [
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
        (&["--issuer", "https://a.example,https://b.example"], "--issuer: several issuers need --discover"),
        (&["--issuer", "http://as.example.com", "--discover"], "--issuer: the endpoint URL must be https"),
        (&["--issuer", "https://a.example,https://a.example", "--discover"], "--issuer: "),
        (&["--dev-issuer-key", "issuer.json"], "--dev-issuer-key: the key of --dev-authorization-server"),
        (&["--jwks-url", "https://a.example/jwks", "--issuer", ""], "--issuer: the authorization server's"),
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
    assert!(error.to_string().contains("--discover|--dev-authorization-server"), "{error}");
    // The development authorization server stands alone: no issuer, no other key source.
    let dev = |options: &[&str]| {
        let mut argv = vec!["mcp_server", "--resource", "http://127.0.0.1:8080/mcp", "--dev-authorization-server"];
        argv.extend(options);
        Args::try_parse_from(argv).map(|_| ())
    };
    assert!(dev(&[]).is_ok());
    assert!(dev(&["--issuer", "https://a.example"]).unwrap_err().to_string().contains("cannot be used with"));
    assert!(dev(&["--jwks", "{}"]).unwrap_err().to_string().contains("cannot be used with"));
}

#[tokio::test]
async fn mcp_server_discovers_the_keys_of_several_issuers() {
    let options = ["--issuer", "https://login.example.com", "--issuer", "https://partner.example.org", "--discover"];
    let argv = ["mcp_server", "--resource", "https://mcp.example.com/mcp"].into_iter().chain(options);
    assert!(build(&Args::try_parse_from(argv).unwrap()).await.is_ok(), "nothing is fetched before the first token");
}

#[test]
fn mcp_server_help_documents_every_option_and_its_variable() {
    let help = Args::command().render_long_help().to_string();
    for (flag, variable) in [
        ("--listen", "MCP_LISTEN"),
        ("--resource", "MCP_RESOURCE"),
        ("--issuer", "MCP_ISSUER"),
        ("--discover", "MCP_DISCOVER"),
        ("--dev-authorization-server", "MCP_DEV_AUTHORIZATION_SERVER"),
        ("--dev-issuer-key", "MCP_DEV_ISSUER_KEY"),
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
    assert!(help.contains("DEVELOPMENT ONLY — NEVER IN PRODUCTION"), "{help}");
}

/// A running `mcp_server` with `options`, a development authorization server for it (its own
/// unless `--dev-authorization-server` is among the options), and what crossed the wire.
struct McpServer {
    url: String,
    issuer: String,
    tap: Wiretap,
}

async fn start_mcp_server(options: &[&str]) -> McpServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/mcp");
    let listen = addr.to_string();
    let mut argv = vec!["mcp_server".to_owned(), "--listen".to_owned(), listen, "--resource".to_owned(), url.clone()];
    let issuer = if options.contains(&"--dev-authorization-server") {
        format!("http://{addr}")
    } else {
        let auth_server = AuthServer::start(AuthServerConfig::new(&url, CLIENT_ID, &[SCOPE])).await.unwrap();
        argv.extend(["--issuer".to_owned(), auth_server.issuer().to_owned(), "--jwks-url".to_owned()]);
        argv.extend([auth_server.jwks_url(), "--required-scope".to_owned(), SCOPE.to_owned()]);
        auth_server.issuer().to_owned()
    };
    argv.extend(options.iter().map(|&option| option.to_owned()));
    let router = build(&Args::try_parse_from(argv).unwrap()).await.unwrap();
    let tap = Wiretap::default();
    let router = tap.tap("MCP", router);
    tokio::spawn(async move { axum::serve(listener, router).await });
    McpServer { url, issuer, tap }
}

impl McpServer {
    /// A DPoP-bound token for `session`'s key, from the client library (client credentials).
    async fn token(&self, session: &DpopSession, client_id: &str) -> String {
        let oauth = OAuthClient::with_http(http_client().unwrap(), session.clone());
        let server = oauth.authorization_server(&self.issuer).await.unwrap();
        oauth.client_credentials(&server, client_id, None, &self.url).await.unwrap().access_token
    }

    /// The request of the JSON-RPC `method` the wiretap saw last.
    fn last(&self, seen: &[Seen], method: &str) -> Seen {
        seen.iter().rfind(|seen| seen.jsonrpc_method().as_deref() == Some(method)).cloned().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_from_401_to_a_tool_call() {
    let server = start_mcp_server(&["--nonce", "post"]).await;
    let http = http_client().unwrap();

    // Without a token: 401 on every method, pointing to the metadata, which points to the issuer.
    for method in [reqwest::Method::POST, reqwest::Method::GET, reqwest::Method::DELETE] {
        let reply = http.request(method.clone(), &server.url).send().await.unwrap();
        assert_eq!(reply.status(), 401, "{method}");
        let challenge = reply.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge_param(challenge, "resource_metadata").is_some(), "{method}: {challenge}");
    }
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let oauth = OAuthClient::with_http(http_client().unwrap(), session.clone());
    let discovery = oauth.discover(&server.url).await.unwrap();
    assert_eq!(discovery.authorization_server.issuer, server.issuer);
    assert_eq!(discovery.scopes, [SCOPE]);
    server.tap.take();

    // With a token and proofs: the nonce challenge (followed by the library), then the session.
    let mcp = connect(&server.url, session.clone(), server.token(&session, CLIENT_ID).await).await.unwrap();
    let posts: Vec<(u16, Option<String>)> =
        server.tap.take().iter().filter(|seen| seen.method == "POST").map(|s| (s.status, s.error.clone())).collect();
    assert_eq!(posts, [(401, Some("use_dpop_nonce".to_owned())), (200, None), (202, None)]);

    let whoami = mcp.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    let identity = whoami.structured_content.unwrap();
    assert_eq!(identity["jkt"], json!(session.jkt()));
    assert_eq!(identity["sub"], CLIENT_ID);
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".into(), "hello".into());
    let echo = mcp.call_tool(CallToolRequestParams::new("echo").with_arguments(arguments)).await.unwrap();
    assert_eq!(serde_json::to_value(&echo.content).unwrap()[0]["text"], "hello");

    // No replay, no Bearer (not allowed by default), a proof for POST is no proof for GET.
    let call = server.last(&server.tap.take(), "tools/call");
    let stolen = Stolen::from(&call).unwrap();
    let attacker = Attacker::new(http_client().unwrap(), &server.url, &stolen);
    let replayed = attacker.replay(&call).await.unwrap();
    assert_eq!((replayed.status, replayed.error().as_deref()), (401, Some("invalid_dpop_proof")));
    let bearer = attacker.post_as_bearer(&serde_json::from_slice(&call.body).unwrap()).await.unwrap();
    assert_eq!((bearer.status, bearer.error().as_deref()), (401, Some("invalid_token")));
    let post_proof = DpopKey::generate().unwrap().proof("POST", &server.url).access_token("token").sign().unwrap();
    let get = http.get(&server.url).header("authorization", "DPoP token").header("dpop", post_proof);
    let reply = get.send().await.unwrap();
    assert_eq!(reply.status(), 401);
    let challenge = reply.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("`htm` does not match"), "{challenge}");

    // DELETE needs no nonce under `--nonce post`, but a proof of its own.
    server.tap.take();
    mcp.cancel().await.unwrap();
    let deletes: Vec<Seen> = server.tap.take().into_iter().filter(|seen| seen.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!((200..300).contains(&deletes[0].status) && deletes[0].header("dpop").is_some(), "{deletes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_scopes_and_bearer_options() {
    // A scope the authorization server never grants: every token is short of it.
    let server = start_mcp_server(&["--required-scope", "admin", "--allow-bearer"]).await;
    let http = http_client().unwrap();
    let reply = http.post(&server.url).send().await.unwrap();
    let challenge = reply.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "mixed mode: {challenge}");

    let session = DpopSession::new(DpopKey::generate().unwrap());
    let token = server.token(&session, CLIENT_ID).await;
    let own = Stolen { token, mcp_headers: reqwest::header::HeaderMap::new(), nonce: None };
    let client = Attacker::new(http_client().unwrap(), &server.url, &own);
    let message = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
    let reply = client.post(session.key(), &message, &Default::default()).await.unwrap();
    assert_eq!((reply.status, reply.error().as_deref()), (403, Some("insufficient_scope")));
    assert_eq!(challenge_param(reply.challenge().unwrap(), "scope").as_deref(), Some("mcp:tools admin"));
    // The token is DPoP-bound: refused as Bearer even in mixed mode (RFC 9449 §7.2).
    let reply = client.post_as_bearer(&message).await.unwrap();
    assert_eq!(reply.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_with_the_redis_replay_store() {
    if !redis_or_skip("examples::mcp_server_with_the_redis_replay_store").await {
        return;
    }
    let server = start_mcp_server(&["--replay-store", REDIS_URL]).await;
    let session = DpopSession::new(DpopKey::generate().unwrap());
    let mcp = connect(&server.url, session.clone(), server.token(&session, CLIENT_ID).await).await.unwrap();
    let initialize = server.last(&server.tap.take(), "initialize");
    assert_eq!(initialize.status, 200);
    let stolen = Stolen::from(&initialize).unwrap();
    let replayed = Attacker::new(http_client().unwrap(), &server.url, &stolen).replay(&initialize).await.unwrap();
    assert_eq!((replayed.status, replayed.error().as_deref()), (401, Some("invalid_dpop_proof")));
    assert!(replayed.error_description().unwrap().contains("already been used"));
    mcp.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_client_authorizes_with_the_dev_authorization_server_and_calls_the_tools() {
    let server = start_mcp_server(&["--dev-authorization-server", "--nonce", "post"]).await;
    let directory = TempDir::new("mcp-client");
    let key = directory.0.join("key.jwk");
    let argv = ["mcp_client", &server.url, "--key", key.to_str().unwrap()];
    let shown = std::sync::Mutex::new(Vec::new());
    let outcome = mcp_client::run(&mcp_client::Args::try_parse_from(argv).unwrap(), |text| {
        shown.lock().unwrap().push(text.to_owned())
    })
    .await
    .unwrap();
    assert!(shown.lock().unwrap().is_empty(), "the development server approves at once: nothing to show");
    assert!(!outcome.approved_by_person);
    assert_eq!(outcome.issuer, server.issuer);
    let names: Vec<&str> = outcome.tools.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["echo", "whoami"]);
    // Only whoami needs no arguments.
    let [(called, result)] = outcome.calls.as_slice() else { panic!("{:?}", outcome.calls) };
    assert_eq!(called, "whoami");
    assert_eq!(result["structuredContent"]["jkt"], json!(outcome.jkt));
    assert_eq!(result["structuredContent"]["sub"], "dev-user");

    // The key was kept, readable by its owner only, and is used again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let argv = [
        "mcp_client",
        &server.url,
        "--key",
        key.to_str().unwrap(),
        "--call",
        "echo",
        "--arguments",
        r#"{"text":"hi"}"#,
    ];
    let again = mcp_client::run(&mcp_client::Args::try_parse_from(argv).unwrap(), |_| {}).await.unwrap();
    assert_eq!(again.jkt, outcome.jkt);
    assert_eq!(again.calls[0].1["content"][0]["text"], "hi");

    let help = mcp_client::Args::command().render_long_help().to_string();
    for documented in ["<SERVER_URL>", "--key", "--client-id", "--scope", "--call", "--arguments", "127.0.0.1"] {
        assert!(help.contains(documented), "{documented}:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_authorization_server_refuses_what_it_must() {
    let server = start_mcp_server(&["--dev-authorization-server"]).await;
    let http = http_client().unwrap();
    let token_endpoint = format!("{}/token", server.issuer);
    // A token request without a proof: the library's 400 JSON.
    let form = format!("grant_type=client_credentials&client_id={DEV_CLIENT_ID}");
    let reply = http.post(&token_endpoint).header("content-type", "application/x-www-form-urlencoded").body(form);
    let reply = reply.send().await.unwrap();
    assert_eq!(reply.status(), 400);
    let body: Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    // An authorization request without PKCE goes back to the client with an error; one for a
    // redirect URI the client does not have is answered here.
    let authorize = format!("{}/authorize", server.issuer);
    let query = format!("{authorize}?response_type=code&client_id={DEV_CLIENT_ID}&state=s&redirect_uri=");
    let reply = http.get(format!("{query}http%3A%2F%2F127.0.0.1%3A9%2Fcb")).send().await.unwrap();
    assert_eq!(reply.status(), 303);
    let location = reply.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("http://127.0.0.1:9/cb?error=invalid_request"), "{location}");
    let reply = http.get(format!("{query}https%3A%2F%2Fevil.example%2Fcb")).send().await.unwrap();
    assert_eq!(reply.status(), 400);
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("dpop-examples-{name}-{}", DpopKey::generate().unwrap().thumbprint()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `dpop` binary cargo built beside this test (`cargo test --workspace` builds it), if any.
fn dpop_binary() -> Option<PathBuf> {
    let test = std::env::current_exe().ok()?;
    let profile = test.parent()?.parent()?;
    let binary = profile.join(format!("dpop{}", std::env::consts::EXE_SUFFIX));
    binary.is_file().then_some(binary)
}

/// The README's "Try it with curl", as written: keys and a token from the `dpop` binary (the
/// token signed with the issuer key the development authorization server uses), an HTTP request
/// as curl sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_flow_of_the_readme_works() {
    let Some(dpop) = dpop_binary() else {
        eprintln!(
            "skipped examples::the_curl_flow_of_the_readme_works: no dpop binary beside the tests (build it: cargo build -p dpop-cli)"
        );
        return;
    };
    let directory = TempDir::new("curl");
    let run = |args: &[&str]| {
        let output = Command::new(&dpop).args(args).current_dir(&directory.0).output().unwrap();
        assert!(output.status.success(), "dpop {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    run(&["keygen", "--out", "issuer.json"]);
    run(&["keygen", "--out", "key.json"]);
    let issuer_key = directory.0.join("issuer.json");
    let server =
        start_mcp_server(&["--dev-authorization-server", "--dev-issuer-key", issuer_key.to_str().unwrap()]).await;
    let (resource, issuer) = (server.url.as_str(), server.issuer.as_str());
    let token = run(&[
        "token",
        "--issuer-key",
        "issuer.json",
        "--iss",
        issuer,
        "--aud",
        resource,
        "--key",
        "key.json",
        "--scope",
        "mcp:tools",
    ]);
    let proof = run(&["proof", "--method", "POST", "--url", resource, "--key", "key.json", "--token", &token]);
    let reply = http_client()
        .unwrap()
        .post(resource)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert!(reply.headers().contains_key("mcp-session-id"));
    assert!(reply.text().await.unwrap().contains("dpop-guard-example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_server_answers_who_is_calling() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthServerConfig::new(&base, actix_app::CLIENT_ID, &[actix_app::SCOPE]);
    let auth_server = AuthServer::start(config).await.unwrap();
    let _server = actix_app::spawn(listener, actix_app::guard(&base, &auth_server).unwrap());

    let session = DpopSession::new(DpopKey::generate().unwrap());
    let (anonymous, identified) = actix_app::try_it(&base, &auth_server, &session).await.unwrap();
    assert_eq!(anonymous.status, 401);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource");
    assert_eq!(
        challenge_param(anonymous.challenge.as_deref().unwrap(), "resource_metadata"),
        Some(metadata_url.clone())
    );
    assert_eq!(identified.status, 200, "{}", identified.body);
    let identity: Value = serde_json::from_str(&identified.body).unwrap();
    assert_eq!(identity["jkt"], session.jkt().as_str());
    assert_eq!(identity["sub"], actix_app::CLIENT_ID);
    assert_eq!(identity["scheme"], "DPoP");

    let metadata = http_client().unwrap().get(&metadata_url).send().await.unwrap().text().await.unwrap();
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["authorization_servers"], json!([auth_server.issuer()]));
}
