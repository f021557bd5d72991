//! `dpop inspect`: decodes a proof and reports every check of [`DpopVerifier::inspect`].

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use dpop_core::clock::{Clock, SystemClock};
use dpop_core::inspect::{CheckOutcome, CheckReport, Inspection};
use dpop_core::{Algorithm, DEFAULT_IAT_WINDOW, DpopVerifier, ProofRequest, Thumbprint, clock::ManualClock};
use serde_json::Value;

use crate::input;
use crate::output::{self, Failure};

/// Arguments of `dpop inspect`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 every applicable check passed; 1 a check failed; \
                        2 usage error (bad arguments, unreadable stdin).\n\
                        Replay is never checked: inspection records nothing. A nonce is never \
                        required: checking one needs the server's nonce secret.")]
pub(crate) struct Args {
    /// The proof (the DPoP header value), or - to read it from stdin
    #[arg(value_name = "PROOF|-")]
    proof: String,

    /// The request method to check `htm` against (needs --url; without both, the htm, htu and
    /// ath checks are not applicable)
    #[arg(long, value_name = "METHOD", requires = "url")]
    method: Option<String>,

    /// The request's absolute target URI to check `htu` against (needs --method)
    #[arg(long, value_name = "URL", requires = "method")]
    url: Option<String>,

    /// The access token sent with the request: `ath` must be its hash (needs --method and --url)
    #[arg(long, value_name = "TOKEN", requires = "method")]
    token: Option<String>,

    /// Pin the verifier's clock to this time, in seconds since the Unix epoch, to inspect old
    /// proofs such as the RFC 9449 examples (default: the system clock)
    #[arg(long, value_name = "SECONDS")]
    now: Option<u64>,

    /// The allowed `alg` values, comma-separated, among ES256, ES384, ES512, EdDSA, RS256 and
    /// PS256 as the crypto backend supports them (default: ES256)
    #[arg(long, value_name = "ALG,...", value_delimiter = ',')]
    algs: Vec<String>,

    /// How old `iat` may be, in seconds (default: 300)
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,

    /// How far in the future `iat` may be, in seconds (default: 300)
    #[arg(long, value_name = "SECONDS")]
    max_skew: Option<u64>,
}

/// Inspects the proof and prints the report: exit 0 when it passed, 1 when a check failed.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let bytes = if args.proof == "-" { input::read_bytes("-")? } else { args.proof.clone().into_bytes() };
    let value = bytes.trim_ascii();

    let mut builder = DpopVerifier::builder();
    if let Some(now) = args.now {
        builder = builder.clock(ManualClock::at(now));
    }
    if !args.algs.is_empty() {
        builder = builder.algorithms(algorithms(&args.algs)?);
    }
    if let Some(age) = args.max_age {
        builder = builder.max_age(Duration::from_secs(age));
    }
    if let Some(skew) = args.max_skew {
        builder = builder.max_clock_skew(Duration::from_secs(skew));
    }
    let verifier = builder.build().map_err(Failure::usage)?;

    let request = match (&args.method, &args.url) {
        (Some(method), Some(url)) => {
            let request = ProofRequest::new(method, url);
            Some(match &args.token {
                Some(token) => request.access_token(token),
                None => request,
            })
        }
        _ => None,
    };

    let inspection = verifier.inspect(value, request.as_ref());
    output::stdout(&report(&inspection, args, request.as_ref()))?;
    Ok(if inspection.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn algorithms(names: &[String]) -> Result<Vec<Algorithm>, Failure> {
    names
        .iter()
        .map(|name| {
            Algorithm::from_name(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = Algorithm::ALL.iter().map(|alg| alg.name()).collect();
                Failure::usage(format_args!(
                    "--algs: unknown algorithm `{}` (known, case-sensitive: {})",
                    name.trim(),
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// The whole report, as printed on stdout.
fn report(inspection: &Inspection, args: &Args, request: Option<&ProofRequest<'_>>) -> String {
    let mut out = String::new();
    json_section(&mut out, "header", inspection.header.as_ref());
    json_section(&mut out, "claims", inspection.claims.as_ref());

    let jwk = inspection.header.as_ref().and_then(|header| header.get("jwk"));
    if let Some(Ok(thumbprint)) = jwk.map(|jwk| Thumbprint::of_jwk_json(&jwk.to_string())) {
        let _ = writeln!(out, "jkt: {thumbprint}");
    }
    let _ = writeln!(out, "{}", time_line(inspection, args));
    let _ = writeln!(out, "{}", request_line(request));

    let _ = writeln!(out, "checks:");
    let width = inspection.checks.iter().map(|c| c.check.chars().count()).max().unwrap_or(0);
    for report in &inspection.checks {
        check_line(&mut out, report, width);
    }

    let failed = inspection.checks.iter().filter(|c| matches!(c.outcome, CheckOutcome::Failed(_))).count();
    if inspection.passed() {
        let _ = writeln!(out, "result: passed (every applicable check)");
    } else {
        let plural = if failed == 1 { "" } else { "s" };
        let _ = writeln!(out, "result: FAILED ({failed} check{plural} failed)");
    }
    out
}

fn json_section(out: &mut String, name: &str, value: Option<&Value>) {
    match value.map(serde_json::to_string_pretty) {
        Some(Ok(json)) => {
            let _ = writeln!(out, "{name}:\n{json}");
        }
        _ => {
            let _ = writeln!(out, "{name}: (not decodable as JSON)");
        }
    }
}

/// `now`, and where `iat` stands in the acceptance window: most "works here, fails there"
/// reports are clocks.
fn time_line(inspection: &Inspection, args: &Args) -> String {
    let (now, source) = match args.now {
        Some(now) => (now, "--now"),
        None => (SystemClock.now(), "system clock"),
    };
    let mut line = format!("now: {now} = {} ({source})", utc(i64::try_from(now).unwrap_or(i64::MAX)));
    let iat = inspection.claims.as_ref().and_then(|claims| claims.get("iat")).and_then(Value::as_i64);
    if let Some(iat) = iat {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let offset = match now.saturating_sub(iat) {
            0 => "same second as now".to_owned(),
            d if d > 0 => format!("{d} s before now"),
            d => format!("{} s after now", d.unsigned_abs()),
        };
        let age = args.max_age.unwrap_or(DEFAULT_IAT_WINDOW.as_secs());
        let skew = args.max_skew.unwrap_or(DEFAULT_IAT_WINDOW.as_secs());
        let _ = write!(line, "\niat: {iat} = {}, {offset} (accepted: up to {age} s before, {skew} s after)", utc(iat));
    }
    line
}

fn request_line(request: Option<&ProofRequest<'_>>) -> String {
    match request {
        Some(request) => {
            let token = if request.token().is_some() { ", with an access token" } else { ", no access token" };
            format!("request: {} {}{token}", request.method(), request.target_uri())
        }
        None => "request: none given (pass --method and --url to check htm, htu and ath)".to_owned(),
    }
}

fn check_line(out: &mut String, report: &CheckReport, width: usize) {
    let (symbol, note) = match &report.outcome {
        CheckOutcome::Passed => ("✓", String::new()),
        CheckOutcome::Failed(_) => ("✗", String::new()),
        CheckOutcome::Skipped => ("–", " (skipped: an earlier check failed)".to_owned()),
        CheckOutcome::NotApplicable(why) => ("–", format!(" (not applicable: {why})")),
        // `CheckOutcome` is non-exhaustive: an outcome added to dpop-core later.
        _ => ("?", format!(" ({:?})", report.outcome)),
    };
    let _ = writeln!(out, "  {symbol} {:<width$}  {}{note}", report.check, report.section);
    if let CheckOutcome::Failed(error) = &report.outcome {
        let _ = writeln!(out, "      {}: {}", error.code(), error.description());
    }
}

/// `seconds` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar).
fn utc(seconds: i64) -> String {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe.saturating_add(era.saturating_mul(400)).saturating_add(i64::from(month <= 2));
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_562_262_618), "2019-07-04T17:50:18Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
        // Extreme values format without overflow panics.
        assert!(!utc(i64::MAX).is_empty());
        assert!(!utc(i64::MIN).is_empty());
    }
}
