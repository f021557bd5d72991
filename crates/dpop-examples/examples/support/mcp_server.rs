//! The configuration of `examples/mcp_server.rs`: flags and environment variables, checked at
//! start-up, turned into the axum router of the MCP server.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::{ArgGroup, Parser, ValueEnum};
use dpop_guard::client::keys;
use dpop_guard::redis::RedisReplayStore;
use dpop_guard::token::{CachedValidator, ConfigError as TokenConfigError, JwkSet, JwtValidator, MultiIssuerValidator};
use dpop_guard::{
    Algorithm, DpopGuard, DpopVerifier, InvalidToken, NoncePolicy, TokenError, TokenValidator, nonce::NonceIssuer,
    nonce::NonceKey,
};
use serde_json::{Value, json};

use super::auth_server::{AuthServer, AuthServerConfig};
use super::mcp::{self, Tools};

/// An MCP server (streamable HTTP) whose every request needs a DPoP-bound access token
/// (RFC 9449) from your authorization server.
///
/// Every option can also be set with the environment variable shown. The server serves the
/// RFC 9728 protected resource metadata at /.well-known/oauth-protected-resource/<path of the
/// resource>, challenges requests without credentials with a `WWW-Authenticate` header that
/// points to it, and logs why each refused request was refused (RUST_LOG, default `info`).
/// POST, GET and DELETE on the MCP endpoint are all protected: every request needs its own proof.
#[derive(Debug, Parser)]
#[command(
    name = "mcp_server",
    version,
    group(ArgGroup::new("keys").required(true)
        .args(["jwks_url", "jwks_file", "jwks", "discover", "dev_authorization_server"])),
    after_help = "Examples:\n  mcp_server --resource https://mcp.example.com/mcp --issuer https://auth.example.com \\\n    \
                  --jwks-url https://auth.example.com/.well-known/jwks.json --nonce post --required-scope mcp:tools\n  \
                  mcp_server --resource https://mcp.example.com/mcp --issuer https://login.example.com \\\n    \
                  --issuer https://partner.example.org --discover\n  \
                  mcp_server --resource http://127.0.0.1:8080/mcp --dev-authorization-server   # DEVELOPMENT ONLY"
)]
pub(crate) struct Args {
    /// The address to listen on.
    #[arg(long, env = "MCP_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,

    /// The canonical URL of this MCP endpoint, as clients reach it (e.g.
    /// https://mcp.example.com/mcp): the audience (`aud`) access tokens must be issued for, what
    /// DPoP proofs' `htu` is checked against (never the Host header), and where the MCP
    /// endpoint is served (its path).
    #[arg(long, env = "MCP_RESOURCE", value_name = "URL")]
    pub(crate) resource: String,

    /// The authorization server's issuer identifier: the exact `iss` of the access tokens,
    /// advertised in the resource metadata. Repeat (or comma-separate) for several
    /// authorization servers, with --discover: each one's keys from its own metadata.
    #[arg(
        long,
        env = "MCP_ISSUER",
        value_name = "URL",
        value_delimiter = ',',
        required_unless_present = "dev_authorization_server"
    )]
    pub(crate) issuer: Vec<String>,

    /// Find each issuer's JWK Set URL in its metadata (RFC 8414, else OpenID Connect
    /// Discovery), fetched on first use (https; plain http only to a loopback address).
    #[arg(long, env = "MCP_DISCOVER")]
    pub(crate) discover: bool,

    /// DEVELOPMENT ONLY — NEVER IN PRODUCTION: run a development authorization server in this
    /// process, at the origin of --resource (its issuer), that approves every request without
    /// asking anyone: RFC 8414 metadata, /register, /authorize (redirects at once with a code),
    /// /token (DPoP proofs with nonces), /jwks. No --issuer or --jwks-* then.
    #[arg(long, env = "MCP_DEV_AUTHORIZATION_SERVER", conflicts_with = "issuer")]
    pub(crate) dev_authorization_server: bool,

    /// DEVELOPMENT ONLY: the development authorization server's signing key, a private JWK
    /// (created with owner-only permissions if absent), so that `dpop token --issuer-key` can
    /// mint its tokens too. Default: a new key at every start.
    #[arg(long, env = "MCP_DEV_ISSUER_KEY", value_name = "PATH")]
    pub(crate) dev_issuer_key: Option<PathBuf>,

    /// The issuer's JWK Set URL, fetched on first use and refreshed when a token names an
    /// unknown key (https; plain http only to a loopback address).
    #[arg(long, env = "MCP_JWKS_URL", value_name = "URL")]
    pub(crate) jwks_url: Option<String>,

    /// A file with the issuer's public keys: a JWK Set or a single JWK.
    #[arg(long, env = "MCP_JWKS_FILE", value_name = "PATH")]
    pub(crate) jwks_file: Option<PathBuf>,

    /// The issuer's public keys inline: a JWK Set or a single JWK, as JSON.
    #[arg(long, env = "MCP_JWKS", value_name = "JSON")]
    pub(crate) jwks: Option<String>,

    /// The signature algorithms DPoP proofs may use, comma-separated (ES256, ES384, ES512,
    /// EdDSA, RS256, PS256).
    #[arg(long, env = "MCP_DPOP_ALGS", value_name = "ALGS", value_delimiter = ',', default_value = "ES256",
          value_parser = parse_algorithm)]
    pub(crate) dpop_algs: Vec<Algorithm>,

    /// The signature algorithms access tokens may use, comma-separated [default: ES256, RS256,
    /// PS256, EdDSA, those the crypto backend has].
    #[arg(long, env = "MCP_TOKEN_ALGS", value_name = "ALGS", value_delimiter = ',', value_parser = parse_algorithm)]
    pub(crate) token_algs: Vec<Algorithm>,

    /// How far a proof's `iat` may be from this server's clock, into the past and into the
    /// future, in seconds.
    #[arg(long, env = "MCP_IAT_WINDOW", value_name = "SECONDS", default_value_t = 300)]
    pub(crate) iat_window: u64,

    /// Server-provided nonces (RFC 9449 §8): a proof must then carry a recent nonce from this
    /// server, so it cannot have been made in advance. `post`: on POST requests (every MCP
    /// message); `all`: on every request.
    #[arg(long, env = "MCP_NONCE", value_enum, default_value_t = NonceMode::Off)]
    pub(crate) nonce: NonceMode,

    /// The secret that signs nonces, 32 bytes as 64 hex digits or 43 base64url characters.
    /// Replicas with the same secret accept each other's nonces. Default: a random secret.
    #[arg(long, env = "MCP_NONCE_KEY", value_name = "SECRET", hide_env_values = true)]
    pub(crate) nonce_key: Option<String>,

    /// Where proofs are recorded so that none is accepted twice: `memory` (this process only)
    /// or a Redis / Valkey URL shared by every replica (redis://host:6379/0, rediss://…).
    #[arg(long, env = "MCP_REPLAY_STORE", value_name = "STORE", default_value = "memory", hide_env_values = true)]
    pub(crate) replay_store: String,

    /// Also accept `Authorization: Bearer` tokens, for clients without DPoP. DPoP-bound tokens
    /// are still refused as Bearer.
    #[arg(long, env = "MCP_ALLOW_BEARER")]
    pub(crate) allow_bearer: bool,

    /// A scope every access token must grant (repeat, or comma-separate); advertised in the
    /// resource metadata. A token without it is refused with 403 insufficient_scope.
    #[arg(long = "required-scope", env = "MCP_REQUIRED_SCOPES", value_name = "SCOPE", value_delimiter = ',')]
    pub(crate) required_scopes: Vec<String>,

    /// A Host header value the MCP transport accepts (its DNS rebinding protection; repeat, or
    /// comma-separate) [default: the host of --resource, and loopback names when listening on
    /// a loopback address].
    #[arg(long = "allowed-host", env = "MCP_ALLOWED_HOSTS", value_name = "HOST", value_delimiter = ',')]
    pub(crate) allowed_hosts: Vec<String>,
}

/// When proofs must carry a server nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum NonceMode {
    /// No nonces.
    Off,
    /// On POST requests.
    Post,
    /// On every request.
    All,
}

fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let names = Algorithm::ALL.map(Algorithm::name).join(", ");
    Algorithm::from_name(name.trim()).ok_or_else(|| format!("unknown algorithm `{name}` (one of {names})"))
}

/// A configuration that cannot work, with what to change.
#[derive(Debug)]
pub(crate) struct StartupError(String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

fn invalid(option: &str, why: impl fmt::Display) -> StartupError {
    StartupError(format!("{option}: {why}"))
}

/// The MCP server that `args` describe: the router to serve on `args.listen`.
///
/// # Errors
///
/// A [`StartupError`] naming the option to fix.
pub(crate) async fn build(args: &Args) -> Result<Router, StartupError> {
    // Checked first and alone, so that the message names this option. The validator is never
    // called (this guard serves no request); a proof-only guard would log its warning.
    let refuse_all = dpop_guard::validator_fn(|_| Err(TokenError::Invalid(InvalidToken::Other("unused"))));
    DpopGuard::builder()
        .token_validator(refuse_all)
        .resource(&args.resource)
        .build()
        .map_err(|error| invalid("--resource", error))?;
    for issuer in &args.issuer {
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(invalid("--issuer", "the authorization server's issuer identifier is an https:// URL"));
        }
    }
    if args.dev_issuer_key.is_some() && !args.dev_authorization_server {
        return Err(invalid("--dev-issuer-key", "the key of --dev-authorization-server: set that too"));
    }
    let (validator, issuers, dev_server) = if args.dev_authorization_server {
        let (validator, issuer, router) = development_authorization_server(args)?;
        (validator, vec![issuer], Some(router))
    } else {
        (token_validator(args)?, args.issuer.clone(), None)
    };
    let verifier = verifier(args).await?;
    let mut guard = DpopGuard::builder()
        .verifier(verifier)
        .resource(&args.resource)
        .token_validator(CachedValidator::new(validator))
        .required_scopes(args.required_scopes.iter().cloned())
        .allow_bearer(args.allow_bearer);
    for issuer in &issuers {
        guard = guard.authorization_server(issuer.clone());
    }
    if !args.required_scopes.is_empty() {
        guard = guard.scopes_supported(args.required_scopes.iter().cloned());
    }
    guard = match args.nonce {
        NonceMode::Off => guard,
        NonceMode::Post => guard.nonce_policy(NoncePolicy::when(|method, _path| method == "POST")),
        NonceMode::All => guard.nonce_policy(NoncePolicy::Always),
    };
    let guard = guard.build().map_err(|error| invalid("--resource", error))?;

    let allowed_hosts = if args.allowed_hosts.is_empty() { default_hosts(args) } else { args.allowed_hosts.clone() };
    tracing::info!(
        resource = %args.resource,
        ?issuers,
        discover = args.discover,
        nonce = ?args.nonce,
        replay_store = if args.replay_store == "memory" { "memory" } else { "redis" },
        allow_bearer = args.allow_bearer,
        required_scopes = ?args.required_scopes,
        ?allowed_hosts,
        "MCP server configured"
    );
    let mcp = mcp::router(guard, mcp::url_path(&args.resource), allowed_hosts, Tools::new(Default::default()));
    Ok(match dev_server {
        // The authorization server's routes, outside the DPoP layer; everything else is the MCP
        // server's (its endpoint, its metadata, its refusals).
        Some(dev_server) => dev_server.fallback_service(mcp),
        None => mcp,
    })
}

/// The access token validator: for each issuer, its keys from a URL, a file, inline JSON, or
/// discovery.
fn token_validator(args: &Args) -> Result<Arc<dyn TokenValidator>, StartupError> {
    let option = match (&args.jwks_url, &args.jwks_file, &args.jwks) {
        (Some(_), _, _) => "--jwks-url",
        (None, Some(_), _) => "--jwks-file",
        (None, None, Some(_)) => "--jwks",
        (None, None, None) if args.discover => "--discover",
        (None, None, None) => {
            return Err(invalid("--jwks-url, --jwks-file, --jwks or --discover", "the issuer's keys are needed"));
        }
    };
    let keys = match (&args.jwks_file, &args.jwks) {
        (Some(path), _) if args.jwks_url.is_none() => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| invalid("--jwks-file", format!("cannot read {}: {error}", path.display())))?;
            Some(key_set(&text).map_err(|why| invalid("--jwks-file", why))?)
        }
        (None, Some(json)) if args.jwks_url.is_none() => Some(key_set(json).map_err(|why| invalid("--jwks", why))?),
        _ => None,
    };
    let validators = match args.issuer.as_slice() {
        [] => return Err(invalid("--issuer", "the authorization server's issuer identifier is needed")),
        [issuer] => vec![jwt_validator(args, issuer, keys, option)?],
        several if args.discover => {
            several.iter().map(|issuer| jwt_validator(args, issuer, None, option)).collect::<Result<_, _>>()?
        }
        _ => return Err(invalid("--issuer", "several issuers need --discover: each one's keys from its own metadata")),
    };
    match <[JwtValidator; 1]>::try_from(validators) {
        Ok([one]) => Ok(Arc::new(one)),
        Err(several) => Ok(Arc::new(MultiIssuerValidator::new(several).map_err(|error| invalid("--issuer", error))?)),
    }
}

/// The validator of one issuer's tokens, with `keys` or the key source `option` names.
fn jwt_validator(args: &Args, issuer: &str, keys: Option<JwkSet>, option: &str) -> Result<JwtValidator, StartupError> {
    let mut builder = JwtValidator::builder(issuer, args.resource.clone());
    if !args.token_algs.is_empty() {
        builder = builder.algorithms(args.token_algs.iter().copied());
    }
    builder = match (keys, &args.jwks_url) {
        (Some(keys), _) => builder.keys(keys),
        (None, Some(url)) => builder.jwks_url(url.clone()),
        (None, None) => builder.discover(),
    };
    builder.build().map_err(|error| match error {
        TokenConfigError::EmptyIssuer => invalid("--issuer", error),
        TokenConfigError::InvalidUrl | TokenConfigError::InsecureUrl if option == "--discover" => {
            invalid("--issuer", error)
        }
        TokenConfigError::EmptyAudience => invalid("--resource", error),
        TokenConfigError::UnsupportedAlgorithm(_) | TokenConfigError::NoAlgorithms => invalid("--token-algs", error),
        _ => invalid(option, error),
    })
}

/// DEVELOPMENT ONLY: the authorization server at the origin of `--resource`, its tokens'
/// validator (its keys, in process), its issuer, its routes.
fn development_authorization_server(args: &Args) -> Result<(Arc<dyn TokenValidator>, String, Router), StartupError> {
    let option = "--dev-authorization-server";
    let issuer = mcp::url_origin(&args.resource).ok_or_else(|| invalid("--resource", "no origin"))?.to_owned();
    let scopes: Vec<&str> = match args.required_scopes.as_slice() {
        [] => vec![DEV_SCOPE],
        required => required.iter().map(String::as_str).collect(),
    };
    let mut config = AuthServerConfig::new(&args.resource, DEV_CLIENT_ID, &scopes);
    config.token_lifetime = Duration::from_secs(3600);
    if let Some(path) = &args.dev_issuer_key {
        config.signing_key = Some(keys::load_or_generate(path).map_err(|error| invalid("--dev-issuer-key", error))?);
    }
    let (server, router) = AuthServer::router(config, &issuer).map_err(|error| invalid(option, error))?;
    let keys = JwkSet::from_json(&server.jwks_json()).map_err(|error| invalid(option, error))?;
    let validator = jwt_validator(args, &issuer, Some(keys), option)?;
    tracing::warn!(
        %issuer,
        "DEVELOPMENT ONLY: this process runs an authorization server that approves every request \
         without asking anyone; never expose it, never use it in production"
    );
    tracing::info!("try it:\n{}", try_it(args, &issuer, &scopes.join(" ")));
    Ok((Arc::new(validator), issuer, router))
}

/// The client id the development authorization server knows in advance (client credentials).
pub(crate) const DEV_CLIENT_ID: &str = "dev-client";
/// The scope the development authorization server grants when none is required.
pub(crate) const DEV_SCOPE: &str = "mcp:tools";

/// Ready-to-paste commands against the development authorization server: the MCP client, and
/// curl with tokens from `dpop token`.
pub(crate) fn try_it(args: &Args, issuer: &str, scope: &str) -> String {
    let resource = &args.resource;
    let mut text = format!("  cargo run --example mcp_client -- {resource}\n");
    match &args.dev_issuer_key {
        Some(issuer_key) => {
            let issuer_key = issuer_key.display();
            text.push_str(&format!(
                "  dpop keygen --out key.json\n  \
                 TOKEN=$(dpop token --issuer-key {issuer_key} --iss {issuer} --aud {resource} --key key.json --scope '{scope}')\n  \
                 curl -i {resource} -H \"Authorization: DPoP $TOKEN\" \\\n    \
                 -H \"DPoP: $(dpop proof --method POST --url {resource} --key key.json --token \"$TOKEN\")\" \\\n    \
                 -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n    \
                 -d '{INITIALIZE}'\n"
            ));
        }
        None => text.push_str("  (start with --dev-issuer-key issuer.json for tokens from `dpop token` and curl)\n"),
    }
    text
}

/// An MCP `initialize` request, for curl.
pub(crate) const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;

/// A JWK Set, or a single JWK made into one.
fn key_set(json: &str) -> Result<JwkSet, String> {
    let document: Value = serde_json::from_str(json).map_err(|error| format!("not JSON: {error}"))?;
    let set = match document.get("keys") {
        Some(_) => JwkSet::from_json(json),
        None if document.get("kty").is_some() => JwkSet::from_json(&json!({ "keys": [document] }).to_string()),
        None => return Err("neither a JWK Set (with `keys`) nor a JWK (with `kty`)".to_owned()),
    };
    let set = set.map_err(|error| error.to_string())?;
    if set.is_empty() {
        return Err("no usable public signing key in it".to_owned());
    }
    Ok(set)
}

/// The proof verifier: algorithms, `iat` window, nonces, replay store.
async fn verifier(args: &Args) -> Result<DpopVerifier, StartupError> {
    if args.iat_window == 0 {
        return Err(invalid("--iat-window", "must be at least 1 second"));
    }
    let window = Duration::from_secs(args.iat_window);
    let mut builder =
        DpopVerifier::builder().algorithms(args.dpop_algs.iter().copied()).max_age(window).max_clock_skew(window);
    match (args.nonce, &args.nonce_key) {
        (NonceMode::Off, Some(_)) => return Err(invalid("--nonce-key", "set --nonce post or --nonce all to use it")),
        (NonceMode::Off, None) => {}
        (_, Some(secret)) => {
            let key = NonceKey::from_text(0, secret).map_err(|error| invalid("--nonce-key", error))?;
            builder = builder.nonces(NonceIssuer::new(key));
        }
        (_, None) => {
            let issuer = NonceIssuer::process_wide().map_err(|error| invalid("--nonce", error))?;
            builder = builder.nonces(issuer);
        }
    }
    match args.replay_store.as_str() {
        "memory" => {}
        url if url.contains("://") => {
            // Never echo the URL: it may hold a password.
            let store = RedisReplayStore::connect(url).await.map_err(|error| invalid("--replay-store", error))?;
            builder = builder.replay_store(store);
        }
        _ => return Err(invalid("--replay-store", "`memory` or a Redis URL such as redis://127.0.0.1:6379")),
    }
    builder.build().map_err(|error| invalid("--dpop-algs", error))
}

/// The host of the resource URL, and the loopback names when listening on loopback.
fn default_hosts(args: &Args) -> Vec<String> {
    let mut hosts: Vec<String> = mcp::url_host(&args.resource).map(str::to_owned).into_iter().collect();
    if args.listen.ip().is_loopback() {
        hosts.extend(["localhost", "127.0.0.1", "::1"].map(str::to_owned));
    }
    hosts
}
