//! `dpop token` and `dpop jwks`: a development authorization server in two commands.
//!
//! `dpop token` mints an RFC 9068 `at+jwt` access token bound to a client key (`cnf.jkt`),
//! signed with an issuer key (any private JWK `dpop keygen` writes); `dpop jwks` prints that
//! key's public JWK set, for a resource server to validate the tokens with. The `kid` of an
//! issuer key is its RFC 7638 thumbprint, so both commands agree on it without storing it.
//!
//! For development and tests only: no client authentication, no consent, no revocation, and
//! the issuer key is a file on the developer's disk.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpop_core::{DpopKey, Thumbprint};
use serde_json::{Map, Value, json};

use crate::output::{self, Failure};
use crate::proof::load_key;
use crate::{input, thumbprint};

/// The longest `--lifetime`: one year.
const MAX_LIFETIME: u64 = 365 * 24 * 60 * 60;

/// Arguments of `dpop token`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("binding").required(true).args(["key", "jkt"])))]
pub(crate) struct TokenArgs {
    /// The issuer's private JWK (create one with `dpop keygen --out issuer.json`); its
    /// thumbprint is the token's `kid`
    #[arg(long, value_name = "PATH")]
    issuer_key: String,

    /// The `iss` claim: the issuer identifier the resource server expects
    #[arg(long, value_name = "URL")]
    iss: String,

    /// The `aud` claim: the resource's canonical URI (RFC 8707); repeat for several audiences
    #[arg(long, value_name = "URI", required = true)]
    aud: Vec<String>,

    /// The client's JWK file (private or public, as `dpop keygen` writes them): the token is
    /// bound to its thumbprint (`cnf.jkt`)
    #[arg(long, value_name = "PATH")]
    key: Option<String>,

    /// The thumbprint to bind the token to (`cnf.jkt`), instead of --key
    // A base64url thumbprint may start with `-`: it is still this option's value.
    #[arg(long, value_name = "JKT", allow_hyphen_values = true)]
    jkt: Option<String>,

    /// The `scope` claim: space-separated scopes, e.g. "mcp:tools mcp:resources"
    #[arg(long, value_name = "SCOPES")]
    scope: Option<String>,

    /// The `sub` claim: the resource owner
    #[arg(long, value_name = "SUBJECT", default_value = "dev-user")]
    sub: String,

    /// The `client_id` claim
    #[arg(long, value_name = "CLIENT_ID", default_value = "dpop-cli")]
    client_id: String,

    /// Seconds from now until `exp` (1 to one year)
    #[arg(long, value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIFETIME))]
    lifetime: u64,
}

/// Arguments of `dpop jwks`.
#[derive(Debug, clap::Args)]
pub(crate) struct JwksArgs {
    /// An issuer's private JWK (as given to `dpop token --issuer-key`); repeat to publish several
    /// keys, e.g. during a rotation
    #[arg(long, value_name = "PATH", required = true)]
    issuer_key: Vec<String>,
}

/// Mints the token and prints it alone on stdout.
pub(crate) fn run_token(args: &TokenArgs) -> Result<ExitCode, Failure> {
    let issuer = load_key(&args.issuer_key)?;
    let jkt = match (&args.key, &args.jkt) {
        (Some(source), _) => thumbprint::of_jwk_text(&input::read_text(source)?, &input::describe(source))?.to_string(),
        (None, Some(jkt)) => checked_jkt(jkt)?,
        (None, None) => return Err(Failure::usage("give --key or --jkt: the key the token is bound to")),
    };
    if args.iss.is_empty() || args.aud.iter().any(String::is_empty) {
        return Err(Failure::usage("--iss and --aud must not be empty"));
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Failure::failed("the system clock is before 1970"))?
        .as_secs();
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::from(args.iss.as_str()));
    claims.insert(
        "aud".into(),
        match args.aud.as_slice() {
            [one] => Value::from(one.as_str()),
            several => Value::from(several),
        },
    );
    claims.insert("sub".into(), Value::from(args.sub.as_str()));
    claims.insert("client_id".into(), Value::from(args.client_id.as_str()));
    if let Some(scope) = &args.scope {
        claims.insert("scope".into(), Value::from(scope.as_str()));
    }
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now.saturating_add(args.lifetime)));
    claims.insert("jti".into(), Value::from(random_jti()?));
    claims.insert("cnf".into(), json!({ "jkt": jkt }));

    let header = json!({ "typ": "at+jwt", "alg": "ES256", "kid": issuer.thumbprint().to_string() });
    let token = issuer
        .sign_jws(&header.to_string(), &Value::Object(claims).to_string())
        .map_err(|error| Failure::failed(format_args!("cannot sign the token: {error}")))?;
    output::note("a development access token, signed by a key on this disk: never use one in production");
    output::stdout(&format!("{token}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the JWK set of the issuer keys.
pub(crate) fn run_jwks(args: &JwksArgs) -> Result<ExitCode, Failure> {
    let mut keys = Vec::with_capacity(args.issuer_key.len());
    for source in &args.issuer_key {
        keys.push(published_jwk(&load_key(source)?));
    }
    let text = serde_json::to_string_pretty(&json!({ "keys": keys })).map_err(Failure::failed)?;
    output::stdout(&format!("{text}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// The public JWK of an issuer key as an authorization server publishes it.
fn published_jwk(key: &DpopKey) -> Value {
    let mut jwk = key.public_jwk();
    if let Value::Object(members) = &mut jwk {
        members.insert("kid".into(), Value::from(key.thumbprint().to_string()));
        members.insert("use".into(), Value::from("sig"));
        members.insert("alg".into(), Value::from("ES256"));
    }
    jwk
}

/// A `--jkt`: the base64url (no padding) SHA-256 thumbprint RFC 9449 §6.1 puts in `cnf.jkt`.
fn checked_jkt(jkt: &str) -> Result<String, Failure> {
    let bytes = URL_SAFE_NO_PAD.decode(jkt).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
    let Some(bytes) = bytes else {
        return Err(Failure::usage(format_args!(
            "--jkt `{jkt}` is not a JWK SHA-256 thumbprint (43 base64url characters, as `dpop thumbprint` prints)"
        )));
    };
    Ok(Thumbprint::from_bytes(bytes).to_string())
}

/// 128 random bits, base64url: the token's `jti`.
fn random_jti() -> Result<String, Failure> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| Failure::failed(format_args!("no random numbers: {error}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
