//! `dpop`: a command-line tool for people debugging DPoP (RFC 9449).
//!
//! ```text
//! dpop keygen --out key.json [--public-out key.pub.json] [--force]
//! dpop proof --method POST --url https://mcp.example.com/mcp --key key.json [--token T]
//!            [--nonce N] [--iat SECONDS] [--jti J]
//! dpop inspect <PROOF|-> [--method M --url U] [--token T] [--now SECONDS] [--algs ES256,EdDSA]
//!              [--max-age SECONDS] [--max-skew SECONDS]
//! dpop thumbprint <JWK|PATH|->
//! dpop token --issuer-key issuer.json --iss URL --aud URI (--key key.json | --jkt JKT)
//!            [--scope S] [--sub SUB] [--client-id ID] [--lifetime SECONDS]   # development only
//! dpop jwks --issuer-key issuer.json
//! dpop fetch URL [-X METHOD] [-H "Name: value"]... [-d BODY|@PATH] [--token T] [--key key.json]
//! ```
//!
//! Exit codes: 0 success (for `fetch`: any HTTP response); 1 `inspect` found a failed check, or
//! an operation failed (writing a file, the crypto backend, `fetch` got no response); 2 usage
//! errors: bad arguments, unreadable files, malformed keys.
//!
//! Every verification rule comes from `dpop-core` ([`DpopVerifier::inspect`]), and `fetch`'s
//! proofs and nonce retry from `dpop-client`; this crate only reads arguments and files and
//! prints.
//!
//! [`DpopVerifier::inspect`]: dpop_core::DpopVerifier::inspect

#![forbid(unsafe_code)]

mod fetch;
mod input;
mod inspect;
mod keygen;
mod output;
mod proof;
mod thumbprint;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generate DPoP keys, sign proofs, inspect proofs check by check, compute JWK thumbprints, send
/// DPoP-signed requests (RFC 9449, RFC 7638).
#[derive(Debug, Parser)]
#[command(name = "dpop", version, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success (fetch: any HTTP response); 1 a check failed (inspect) \
                        or an operation failed (fetch: no response); 2 usage error (bad arguments, \
                        unreadable file, malformed key).")]
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
    /// DEVELOPMENT ONLY: mint an RFC 9068 `at+jwt` access token bound to a client key (`cnf.jkt`),
    /// signed with an issuer key from `dpop keygen`; prints only the token. Never use these
    /// tokens or issuer keys in production
    #[command(long_about = "DEVELOPMENT ONLY. Mint an RFC 9068 `at+jwt` access token bound to a \
        client key (`cnf.jkt`) and print only the token, for `curl -H \"Authorization: DPoP $(dpop token ...)\"`.\n\n\
        This is not an authorization server: no client authentication, no consent, no revocation, \
        and the issuer key is a file on this disk. Never use these tokens or issuer keys in \
        production.\n\n\
        Create an issuer key once with `dpop keygen --out issuer.json`; give the resource server \
        its public keys with `dpop jwks --issuer-key issuer.json`. The token's `kid` is the \
        issuer key's thumbprint; `iat` is now, `exp` is now + --lifetime, `jti` is random.")]
    Token(token::TokenArgs),
    /// DEVELOPMENT ONLY: print the public JWK set (`{"keys":[...]}`) of `dpop token` issuer keys,
    /// for a resource server's JWT validator
    Jwks(token::JwksArgs),
    /// Send one request with a fresh DPoP proof, like curl; prints the status line, the response
    /// headers and the body
    #[command(after_help = "With --token the request carries `Authorization: DPoP <TOKEN>` and the proof its hash \
        (`ath`). When the server asks for a nonce (`use_dpop_nonce`: a 401 from a resource server, \
        a 400 JSON error from an authorization server, each with DPoP-Nonce), the request is sent \
        once more with a new proof carrying it, and stderr says so; whatever the second answer \
        is, it is printed. Redirects are printed, not followed.\n\n\
        Exit code 0 for any HTTP response, whatever its status; 1 when no response came \
        (connection, TLS); 2 for usage errors.")]
    Fetch(fetch::Args),
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
        Command::Token(args) => token::run_token(&args),
        Command::Jwks(args) => token::run_jwks(&args),
        Command::Fetch(args) => fetch::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            output::error(failure.message());
            failure.exit_code()
        }
    }
}
