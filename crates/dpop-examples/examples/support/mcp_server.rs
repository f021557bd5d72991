//! The configuration of `examples/mcp_server.rs`: flags and environment variables, checked at
//! start-up, turned into the axum router of the MCP server.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use clap::{ArgGroup, Parser, ValueEnum};
use dpop_guard::redis::RedisReplayStore;
use dpop_guard::token::{CachedValidator, ConfigError as TokenConfigError, JwkSet, JwtValidator};
use dpop_guard::{Algorithm, DpopGuard, DpopVerifier, NoncePolicy, nonce::NonceIssuer, nonce::NonceKey};
use serde_json::{Value, json};

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
    group(ArgGroup::new("keys").required(true).args(["jwks_url", "jwks_file", "jwks"])),
    after_help = "Example:\n  mcp_server --resource https://mcp.example.com/mcp --issuer https://auth.example.com \\\n    \
                  --jwks-url https://auth.example.com/.well-known/jwks.json --nonce post --required-scope mcp:tools"
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
    /// advertised in the resource metadata.
    #[arg(long, env = "MCP_ISSUER", value_name = "URL")]
    pub(crate) issuer: String,

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
    // Checked first and alone, so that the message names this option.
    DpopGuard::builder().proof_only().resource(&args.resource).build().map_err(|error| invalid("--resource", error))?;
    if !(args.issuer.starts_with("https://") || args.issuer.starts_with("http://")) {
        return Err(invalid("--issuer", "the authorization server's issuer identifier is an https:// URL"));
    }
    let validator = token_validator(args)?;
    let verifier = verifier(args).await?;
    let mut guard = DpopGuard::builder()
        .verifier(verifier)
        .resource(&args.resource)
        .authorization_server(args.issuer.clone())
        .token_validator(CachedValidator::new(validator))
        .required_scopes(args.required_scopes.iter().cloned())
        .allow_bearer(args.allow_bearer);
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
        issuer = %args.issuer,
        nonce = ?args.nonce,
        replay_store = if args.replay_store == "memory" { "memory" } else { "redis" },
        allow_bearer = args.allow_bearer,
        required_scopes = ?args.required_scopes,
        ?allowed_hosts,
        "MCP server configured"
    );
    Ok(mcp::router(guard, mcp::url_path(&args.resource), allowed_hosts, Tools::new(Default::default())))
}

/// The access token validator: the issuer's keys from a URL, a file or inline JSON.
fn token_validator(args: &Args) -> Result<JwtValidator, StartupError> {
    let mut builder = JwtValidator::builder(args.issuer.clone(), args.resource.clone());
    if !args.token_algs.is_empty() {
        builder = builder.algorithms(args.token_algs.iter().copied());
    }
    let option = match (&args.jwks_url, &args.jwks_file, &args.jwks) {
        (Some(url), _, _) => {
            builder = builder.jwks_url(url.clone());
            "--jwks-url"
        }
        (None, Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| invalid("--jwks-file", format!("cannot read {}: {error}", path.display())))?;
            builder = builder.keys(key_set(&text).map_err(|why| invalid("--jwks-file", why))?);
            "--jwks-file"
        }
        (None, None, Some(json)) => {
            builder = builder.keys(key_set(json).map_err(|why| invalid("--jwks", why))?);
            "--jwks"
        }
        (None, None, None) => return Err(invalid("--jwks-url, --jwks-file or --jwks", "the issuer's keys are needed")),
    };
    builder.build().map_err(|error| match error {
        TokenConfigError::EmptyIssuer => invalid("--issuer", error),
        TokenConfigError::EmptyAudience => invalid("--resource", error),
        TokenConfigError::UnsupportedAlgorithm(_) | TokenConfigError::NoAlgorithms => invalid("--token-algs", error),
        _ => invalid(option, error),
    })
}

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
