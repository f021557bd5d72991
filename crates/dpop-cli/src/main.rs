//! `dpop`: a command-line tool for people debugging DPoP (RFC 9449).
//!
//! ```text
//! dpop keygen --out key.json [--public-out key.pub.json] [--force]
//! dpop proof --method POST --url https://mcp.example.com/mcp --key key.json [--token T]
//!            [--nonce N] [--iat SECONDS] [--jti J]
//! dpop inspect <PROOF|-> [--method M --url U] [--token T] [--now SECONDS] [--algs ES256,EdDSA]
//!              [--max-age SECONDS] [--max-skew SECONDS]
//! dpop thumbprint <JWK|PATH|->
//! ```
//!
//! Exit codes: 0 success; 1 `inspect` found a failed check, or an operation failed (writing a
//! file, the crypto backend); 2 usage errors: bad arguments, unreadable files, malformed keys.
//!
//! Every verification rule comes from `dpop-core` ([`DpopVerifier::inspect`]); this crate only
//! reads arguments and files and prints.
//!
//! [`DpopVerifier::inspect`]: dpop_core::DpopVerifier::inspect

#![forbid(unsafe_code)]

mod input;
mod inspect;
mod keygen;
mod output;
mod proof;
mod thumbprint;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generate DPoP keys, sign proofs, inspect proofs check by check, compute JWK thumbprints
/// (RFC 9449, RFC 7638).
#[derive(Debug, Parser)]
#[command(name = "dpop", version, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success; 1 a check failed (inspect) or an operation failed; \
                        2 usage error (bad arguments, unreadable file, malformed key).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate an ES256 (P-256) key: the private JWK (mode 0600) and the public JWK; prints the
    /// thumbprint (jkt)
    Keygen(keygen::Args),
    /// Sign a DPoP proof with a private JWK; prints only the compact proof, for
    /// `curl -H "DPoP: $(dpop proof ...)"`
    Proof(proof::Args),
    /// Decode a proof and run every check of RFC 9449 §4.3 on it, reporting each one
    Inspect(inspect::Args),
    /// Print the RFC 7638 thumbprint (jkt) of a JWK given as JSON text, a file, or - for stdin
    Thumbprint(thumbprint::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with 0; argument errors to stderr with 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(&args),
        Command::Proof(args) => proof::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Thumbprint(args) => thumbprint::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            output::error(failure.message());
            failure.exit_code()
        }
    }
}
