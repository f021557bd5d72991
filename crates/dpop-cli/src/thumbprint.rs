//! `dpop thumbprint`: the RFC 7638 thumbprint (the `jkt`) of a JWK.
//!
//! A private JWK is accepted: RFC 7638 §3.2 builds the thumbprint from the required *public*
//! members only, so a private key and its public part have the same thumbprint. Its private
//! members are dropped before computing (dpop-core's [`Thumbprint::of_jwk_json`] refuses them,
//! as a proof's `jwk` must be public), with a note on stderr. A symmetric (`oct`) key is refused:
//! DPoP keys are asymmetric, and `Thumbprint::of_jwk_json` knows no `oct` thumbprint.

use std::borrow::Cow;
use std::process::ExitCode;

use dpop_core::{DpopError, Thumbprint};
use serde_json::{Map, Value};

use crate::input;
use crate::output::{self, Failure};

/// JWK members holding private key material (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// Arguments of `dpop thumbprint`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The JWK: JSON text (anything starting with `{`), a file path, or - for stdin. A private
    /// JWK gives the thumbprint of its public part (RFC 7638 uses only the public members)
    #[arg(value_name = "JWK|PATH|-")]
    jwk: String,
}

/// Reads the JWK and prints its thumbprint.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let (text, name) = if args.jwk.trim_start().starts_with('{') {
        (args.jwk.clone(), "the JWK".to_owned())
    } else {
        let text = input::read_text(&args.jwk).map_err(|failure| {
            Failure::usage(format_args!(
                "{} (give the JWK as JSON text, a file path, or - for stdin)",
                failure.message()
            ))
        })?;
        (text, input::describe(&args.jwk))
    };
    let thumbprint = of_jwk_text(&text, &name)?;
    output::stdout(&format!("{thumbprint}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// The thumbprint of a public or private JWK given as text; `name` names it in messages.
pub(crate) fn of_jwk_text(text: &str, name: &str) -> Result<Thumbprint, Failure> {
    let public = public_part(text, name)?;
    Thumbprint::of_jwk_json(&public)
        .map_err(|error| Failure::usage(format_args!("{name} is not a usable public JWK: {}", problem(&error))))
}

/// The JWK text without private members. Text that is no JSON object is passed on unchanged
/// for `Thumbprint::of_jwk_json` to reject.
fn public_part<'t>(text: &'t str, name: &str) -> Result<Cow<'t, str>, Failure> {
    let Ok(mut jwk) = serde_json::from_str::<Map<String, Value>>(text) else {
        return Ok(Cow::Borrowed(text));
    };
    if jwk.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err(Failure::usage(format_args!(
            "{name} is a symmetric (oct) key; DPoP keys are asymmetric (EC, OKP, RSA)"
        )));
    }
    let dropped: Vec<&str> = PRIVATE_MEMBERS.into_iter().filter(|member| jwk.remove(*member).is_some()).collect();
    if dropped.is_empty() {
        // Unchanged, so the strict parser still sees duplicate members and the like.
        return Ok(Cow::Borrowed(text));
    }
    output::note(format_args!(
        "{name} is a private key; this is the thumbprint of its public part (private members {} ignored)",
        dropped.join(", ")
    ));
    Ok(Cow::Owned(Value::Object(jwk).to_string()))
}

/// What is wrong with a JWK, without the "DPoP proof" wording the error descriptions use.
fn problem(error: &DpopError) -> Cow<'static, str> {
    match error {
        DpopError::MalformedProof(_) => Cow::Borrowed("not a JSON object"),
        DpopError::InvalidKey(why) => Cow::Borrowed(why),
        DpopError::MissingMember(member) => Cow::Owned(format!("`{member}` is missing")),
        DpopError::InvalidMember(member) => Cow::Owned(format!("`{member}` is not a string")),
        DpopError::DuplicateMember(_) => Cow::Borrowed("a member appears twice"),
        DpopError::TooManyMembers(_) => Cow::Borrowed("too many members"),
        DpopError::PrivateKey => Cow::Borrowed("it holds private key material"),
        other => other.description(),
    }
}
