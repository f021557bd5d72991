//! `dpop proof`: signs a proof with a private JWK and prints only the compact JWS.

use std::process::ExitCode;

use dpop_core::{DpopKey, internals::normalize_htu};
use serde_json::{Map, Value};

use crate::input;
use crate::output::{self, Failure};

/// Arguments of `dpop proof`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The request method, the `htm` claim (compared case-sensitively: use GET, POST, ...)
    #[arg(long, value_name = "METHOD")]
    method: String,

    /// The request's absolute http(s) URL, the `htu` claim; a query or fragment is dropped, as
    /// RFC 9449 §4.2 requires
    #[arg(long, value_name = "URL")]
    url: String,

    /// The private JWK file written by `dpop keygen --out` (EC P-256), or - for stdin
    #[arg(long, value_name = "PATH")]
    key: String,

    /// The access token sent with the request: adds its hash as the `ath` claim
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,

    /// A server-provided nonce (from the DPoP-Nonce response header): the `nonce` claim
    #[arg(long, value_name = "NONCE")]
    nonce: Option<String>,

    /// The `iat` claim, in seconds since the Unix epoch (default: now)
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    iat: Option<i64>,

    /// The `jti` claim (default: 128 random bits, base64url)
    #[arg(long, value_name = "JTI")]
    jti: Option<String>,
}

/// Loads the key, signs, prints the proof.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let key = load_key(&args.key)?;
    let url = htu(&args.url);
    if args.method.bytes().any(|b| b.is_ascii_lowercase()) {
        output::note(format_args!(
            "`htm` is compared case-sensitively and HTTP methods are upper case; `{}` matches no usual request",
            args.method
        ));
    }

    let mut builder = key.proof(&args.method, url);
    if let Some(token) = &args.token {
        builder = builder.access_token(token);
    }
    if let Some(nonce) = &args.nonce {
        builder = builder.nonce(nonce);
    }
    if let Some(iat) = args.iat {
        builder = builder.issued_at(iat);
    }
    if let Some(jti) = &args.jti {
        builder = builder.jti(jti);
    }
    let proof = builder.sign().map_err(|error| Failure::failed(format_args!("cannot sign the proof: {error}")))?;
    output::stdout(&format!("{proof}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// The private key in `source` (a file written by `dpop keygen --out`, or - for stdin), with a
/// hint when it is a public JWK.
pub(crate) fn load_key(source: &str) -> Result<DpopKey, Failure> {
    let text = input::read_text(source)?;
    DpopKey::from_jwk(&text).map_err(|error| {
        let name = input::describe(source);
        match serde_json::from_str::<Map<String, Value>>(&text) {
            Err(_) => Failure::usage(format_args!("{name} is not a JWK: not a JSON object")),
            Ok(jwk) if !jwk.contains_key("d") => Failure::usage(format_args!(
                "{name} is a public JWK; signing needs the private one (`dpop keygen --out`)"
            )),
            Ok(_) => Failure::usage(format_args!("{name}: {error}")),
        }
    })
}

/// `url` without query and fragment (RFC 9449 §4.2: `htu` has neither), with a note when that
/// changed it or when no verifier would accept it.
fn htu(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let htu = url.get(..end).unwrap_or(url);
    if htu.len() != url.len() {
        output::note(format_args!("`htu` is `{htu}`: RFC 9449 §4.2 leaves out the query and fragment"));
    }
    if normalize_htu(htu).is_none() {
        output::note(format_args!(
            "`{htu}` is not an absolute http(s) URI without userinfo; verifiers will reject the proof"
        ));
    }
    htu
}
