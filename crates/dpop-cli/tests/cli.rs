#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
//! Runs the real `dpop` binary: stdout, stderr and exit codes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 9449 §7.1 Figure 13: resource request proof with `ath`, iat 1562262618.
const RFC_FIGURE_13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const RFC_FIGURE_13_URL: &str = "https://resource.example.org/protectedresource";
/// The opaque access token of RFC 9449 Figures 6 and 13.
const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
/// RFC 9449 Figures 4 and 14: the example public key, and its thumbprint (§6.1).
const RFC_JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

const URL: &str = "https://mcp.example.com/mcp";
const TOKEN: &str = "an-access-token";

/// Every check `DpopVerifier::inspect` reports, by name.
const PASSING_CHECKS: [&str; 15] = [
    "size",
    "one compact JWS",
    "header is a strict JSON object",
    "typ is dpop+jwt",
    "alg is allowed",
    "no crit",
    "jwk is public and fits alg",
    "claims are a strict JSON object",
    "jti, htm, htu, iat present",
    "jti length",
    "htm is the method",
    "htu is the target URI",
    "iat within the window",
    "ath is the token hash",
    "signature",
];

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("dpop-cli-test-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The result of one run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        let run = Self {
            code: output.status.code().expect("dpop was killed by a signal"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        assert!(!run.stderr.contains("panicked"), "dpop panicked: {}", run.stderr);
        run
    }
}

fn dpop(args: &[&str]) -> Run {
    dpop_with_stdin(args, "")
}

fn dpop_with_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dpop"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that exits without reading (a usage error) closes the pipe: not a test failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap().into()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Generates a key in `dir`; returns the private key path and the printed thumbprint.
fn keygen(dir: &TempDir) -> (PathBuf, String) {
    let key = dir.path("key.json");
    let run = dpop(&["keygen", "--out", path_str(&key)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    (key, run.stdout.trim().to_owned())
}

/// The check lines (`✓ name`, `✗ name`, `– name`) of an inspect report.
fn check_lines(report: &str) -> Vec<&str> {
    report.lines().map(str::trim_start).filter(|line| line.starts_with(['✓', '✗', '–'])).collect()
}

fn failed_checks(report: &str) -> Vec<&str> {
    check_lines(report).into_iter().filter(|line| line.starts_with('✗')).collect()
}

fn assert_every_check_passed(report: &str) {
    for check in PASSING_CHECKS {
        let passed = format!("✓ {check} ");
        assert!(check_lines(report).iter().any(|line| line.starts_with(&passed)), "{check} did not pass:\n{report}");
    }
    let not_passed: Vec<&str> = check_lines(report).into_iter().filter(|line| !line.starts_with('✓')).collect();
    assert_eq!(not_passed.len(), 2, "{report}");
    assert!(not_passed[0].starts_with("– server nonce") && not_passed[0].contains("not applicable"), "{report}");
    assert!(not_passed[1].starts_with("– not replayed") && not_passed[1].contains("not applicable"), "{report}");
    assert!(report.contains("result: passed"), "{report}");
}

// --- keygen ---

#[test]
fn keygen_writes_both_files_and_prints_the_thumbprint() {
    let dir = TempDir::new();
    let (key, printed) = keygen(&dir);
    assert_eq!(printed.len(), 43, "{printed}");

    let public = dir.path("key.pub.json");
    let public_jwk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&public).unwrap()).unwrap();
    assert_eq!(public_jwk["kty"], "EC");
    assert_eq!(public_jwk["crv"], "P-256");
    assert!(public_jwk.get("d").is_none());
    let private_jwk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert!(private_jwk["d"].is_string());
    assert_eq!(private_jwk["x"], public_jwk["x"]);

    let run = dpop(&["thumbprint", path_str(&public)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), printed);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = TempDir::new();
    let (key, first) = keygen(&dir);
    let before = std::fs::read_to_string(&key).unwrap();

    let run = dpop(&["keygen", "--out", path_str(&key)]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("already exists") && run.stderr.contains("--force"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), before);

    // --force overwrites, and resets a loosened mode to 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let run = dpop(&["keygen", "--out", path_str(&key), "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_ne!(run.stdout.trim(), first);
    assert_ne!(std::fs::read_to_string(&key).unwrap(), before);
    assert_eq!(dpop(&["thumbprint", path_str(&dir.path("key.pub.json"))]).stdout, run.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn keygen_checks_the_public_file_before_writing_anything() {
    let dir = TempDir::new();
    let (private, public) = (dir.path("a.json"), dir.path("b.json"));
    std::fs::write(&public, "keep").unwrap();
    let run = dpop(&["keygen", "--out", path_str(&private), "--public-out", path_str(&public)]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("b.json") && run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(!private.exists());
    assert_eq!(std::fs::read_to_string(&public).unwrap(), "keep");

    let run = dpop(&["keygen", "--out", path_str(&private), "--public-out", path_str(&private)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn keygen_public_out_and_private_thumbprint() {
    let dir = TempDir::new();
    let (private, public) = (dir.path("client"), dir.path("elsewhere.jwk"));
    let run = dpop(&["keygen", "--out", path_str(&private), "--public-out", path_str(&public)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(public.exists());
    assert!(!dir.path("client.pub.json").exists());
    assert_eq!(dpop(&["thumbprint", path_str(&public)]).stdout, run.stdout);

    // A private JWK gives the thumbprint of its public part, and says so.
    let from_private = dpop(&["thumbprint", path_str(&private)]);
    assert_eq!(from_private.code, 0, "{}", from_private.stderr);
    assert_eq!(from_private.stdout, run.stdout);
    assert!(from_private.stderr.contains("private key"), "{}", from_private.stderr);
}

// --- proof and inspect ---

#[test]
fn proof_then_inspect_round_trip() {
    let dir = TempDir::new();
    let (key, jkt) = keygen(&dir);
    let run = dpop(&["proof", "--method", "POST", "--url", URL, "--key", path_str(&key), "--token", TOKEN]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // Only the compact JWS, on one line.
    assert_eq!(run.stdout.lines().count(), 1);
    let proof = run.stdout.trim();
    assert_eq!(proof.split('.').count(), 3, "{proof}");

    let ok = dpop(&["inspect", proof, "--method", "POST", "--url", URL, "--token", TOKEN]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert_every_check_passed(&ok.stdout);
    assert!(ok.stdout.contains(&format!("jkt: {jkt}")), "{}", ok.stdout);
    assert!(ok.stdout.contains("\"htm\": \"POST\""), "{}", ok.stdout);
    assert!(ok.stdout.contains("\"typ\": \"dpop+jwt\""), "{}", ok.stdout);

    let wrong_method = dpop(&["inspect", proof, "--method", "GET", "--url", URL, "--token", TOKEN]);
    assert_eq!(wrong_method.code, 1);
    let failed = failed_checks(&wrong_method.stdout);
    assert_eq!(failed.len(), 1, "{}", wrong_method.stdout);
    assert!(failed[0].starts_with("✗ htm is the method"), "{}", wrong_method.stdout);
    assert!(wrong_method.stdout.contains("invalid_dpop_proof: DPoP proof `htm` does not match the request method"));
    assert!(wrong_method.stdout.contains("result: FAILED"));

    let wrong_token = dpop(&["inspect", proof, "--method", "POST", "--url", URL, "--token", "another-token"]);
    assert_eq!(wrong_token.code, 1);
    let failed = failed_checks(&wrong_token.stdout);
    assert_eq!(failed.len(), 1, "{}", wrong_token.stdout);
    assert!(failed[0].starts_with("✗ ath is the token hash"), "{}", wrong_token.stdout);
    assert!(wrong_token.stdout.contains("DPoP proof `ath` does not match the access token"));
}

#[test]
fn proof_options_end_up_in_the_claims() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir);
    let run = dpop(&[
        "proof",
        "--method",
        "GET",
        "--url",
        "https://mcp.example.com/mcp?page=2#top",
        "--key",
        path_str(&key),
        "--nonce",
        "server-nonce",
        "--iat",
        "1700000000",
        "--jti",
        "my-jti",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // RFC 9449 §4.2: htu carries no query or fragment.
    assert!(run.stderr.contains("query and fragment"), "{}", run.stderr);
    let proof = run.stdout.trim();

    // Read from stdin, with the trailing newline a shell pipe adds.
    let report =
        dpop_with_stdin(&["inspect", "-", "--method", "GET", "--url", URL, "--now", "1700000000"], &run.stdout);
    assert_eq!(report.code, 0, "{}", report.stdout);
    for claim in [
        r#""nonce": "server-nonce""#,
        r#""iat": 1700000000"#,
        r#""jti": "my-jti""#,
        r#""htu": "https://mcp.example.com/mcp""#,
    ] {
        assert!(report.stdout.contains(claim), "{claim} missing:\n{}", report.stdout);
    }
    assert!(!report.stdout.contains("\"ath\""), "{}", report.stdout);

    // The same proof 301 s later is too old, and the report says where iat stands.
    let late = dpop(&["inspect", proof, "--now", "1700000301"]);
    assert_eq!(late.code, 1);
    assert!(late.stdout.contains("301 s before now"), "{}", late.stdout);
    assert!(failed_checks(&late.stdout)[0].starts_with("✗ iat within the window"));
    // ...unless the window is widened.
    assert_eq!(dpop(&["inspect", proof, "--now", "1700000301", "--max-age", "400"]).code, 0);
    assert_eq!(dpop(&["inspect", proof, "--now", "1699999000", "--max-skew", "1000"]).code, 0);
    assert_eq!(dpop(&["inspect", proof, "--now", "1699999000"]).code, 1);
}

#[test]
fn inspect_rfc_9449_figure_13() {
    let args = |now: &'static str| {
        [
            "inspect",
            RFC_FIGURE_13,
            "--method",
            "GET",
            "--url",
            RFC_FIGURE_13_URL,
            "--token",
            RFC_ACCESS_TOKEN,
            "--now",
            now,
        ]
    };
    let run = dpop(&args("1562262619"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_every_check_passed(&run.stdout);
    assert!(run.stdout.contains(&format!("jkt: {RFC_JKT}")), "{}", run.stdout);
    assert!(run.stdout.contains("iat: 1562262618 = 2019-07-04T17:50:18Z, 1 s before now"), "{}", run.stdout);

    // The last second of the default 300 s window...
    assert_eq!(dpop(&args("1562262918")).code, 0);
    // ...and past it.
    let run = dpop(&args("1562262920"));
    assert_eq!(run.code, 1);
    let failed = failed_checks(&run.stdout);
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert!(failed[0].starts_with("✗ iat within the window"), "{}", run.stdout);
    assert!(run.stdout.contains("DPoP proof `iat` is too old"), "{}", run.stdout);
}

#[test]
fn inspect_without_a_request_and_with_other_algorithms() {
    let run = dpop(&["inspect", RFC_FIGURE_13, "--now", "1562262619"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("– htm is the method"), "{}", run.stdout);
    assert!(run.stdout.contains("not applicable: no request given"), "{}", run.stdout);

    // ES256 outside the allow-list.
    let run = dpop(&["inspect", RFC_FIGURE_13, "--now", "1562262619", "--algs", "EdDSA"]);
    if dpop_core::Algorithm::EdDSA.is_supported() {
        assert_eq!(run.code, 1);
        assert!(failed_checks(&run.stdout)[0].starts_with("✗ alg is allowed"), "{}", run.stdout);
        assert!(run.stdout.contains("`alg` ES256 is not allowed"), "{}", run.stdout);
        let run = dpop(&["inspect", RFC_FIGURE_13, "--now", "1562262619", "--algs", "EdDSA,ES256"]);
        assert_eq!(run.code, 0, "{}", run.stdout);
    } else {
        // The rustcrypto backend: an allow-list it cannot honour is a usage error.
        assert_eq!(run.code, 2);
        assert!(run.stderr.contains("cannot verify EdDSA"), "{}", run.stderr);
    }
}

#[test]
fn inspect_garbage() {
    let run = dpop(&["inspect", "not-a-proof"]);
    assert_eq!(run.code, 1);
    let failed = failed_checks(&run.stdout);
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert!(failed[0].starts_with("✗ one compact JWS"), "{}", run.stdout);
    assert!(run.stdout.contains("– signature"), "{}", run.stdout);
    assert!(run.stdout.contains("header: (not decodable as JSON)"), "{}", run.stdout);

    // Three parts, but not base64url JSON.
    let run = dpop(&["inspect", "a.b.c"]);
    assert_eq!(run.code, 1);
    assert!(failed_checks(&run.stdout)[0].starts_with("✗ header is a strict JSON object"), "{}", run.stdout);

    let run = dpop_with_stdin(&["inspect", "-"], "");
    assert_eq!(run.code, 1);
}

#[test]
fn usage_errors_exit_2() {
    let cases: [&[&str]; 9] = [
        &[],
        &["inspect"],
        &["inspect", RFC_FIGURE_13, "--token", "t"],
        &["inspect", RFC_FIGURE_13, "--method", "GET"],
        &["inspect", RFC_FIGURE_13, "--now", "yesterday"],
        &["inspect", RFC_FIGURE_13, "--algs", "HS256"],
        &["proof", "--method", "GET", "--url", URL],
        &["keygen"],
        &["frobnicate"],
    ];
    for args in cases {
        let run = dpop(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty(), "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    let run = dpop(&["inspect", RFC_FIGURE_13, "--algs", "HS256"]);
    assert!(run.stderr.contains("unknown algorithm `HS256`"), "{}", run.stderr);
}

#[test]
fn proof_with_an_unusable_key_exits_2() {
    let dir = TempDir::new();
    let proof = |key: &Path| dpop(&["proof", "--method", "GET", "--url", URL, "--key", path_str(key)]);

    let run = proof(&dir.path("missing.json"));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot read") && run.stderr.contains("missing.json"), "{}", run.stderr);

    let public = dir.path("public.json");
    std::fs::write(&public, RFC_JWK).unwrap();
    let run = proof(&public);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("public JWK"), "{}", run.stderr);

    let garbage = dir.path("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    let run = proof(&garbage);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a JWK"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

// --- thumbprint ---

#[test]
fn thumbprint_of_the_rfc_9449_key() {
    let run = dpop(&["thumbprint", RFC_JWK]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{RFC_JKT}\n"));
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    let run = dpop_with_stdin(&["thumbprint", "-"], &format!("{RFC_JWK}\n"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{RFC_JKT}\n"));

    let dir = TempDir::new();
    let file = dir.path("rfc.jwk");
    std::fs::write(&file, RFC_JWK).unwrap();
    let run = dpop(&["thumbprint", path_str(&file)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{RFC_JKT}\n"));
}

#[test]
fn thumbprint_errors_exit_2() {
    let cases = [
        ("/nonexistent/dpop-cli/key.json", "cannot read"),
        (r#"{"kty":"EC","crv":"P-256"}"#, "is missing"),
        (r#"{"kty":"EC","x":"l8tF","y":"9VE4","crv":"P-256"}"#, "wrong coordinate size"),
        (r#"{"kty":"oct","k":"c2VjcmV0"}"#, "symmetric"),
        (r#"{"kty":"EC","kty":"EC"}"#, "twice"),
        ("{not json", "not a JSON object"),
    ];
    for (input, message) in cases {
        let run = dpop(&["thumbprint", input]);
        assert_eq!(run.code, 2, "{input}");
        assert!(run.stderr.contains(message), "{input}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{input}");
    }
    let run = dpop_with_stdin(&["thumbprint", "-"], "hello");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("stdin"), "{}", run.stderr);
}

// --- help ---

#[test]
fn help_documents_every_option() {
    let top = dpop(&["--help"]);
    assert_eq!(top.code, 0);
    for command in ["keygen", "proof", "inspect", "thumbprint", "token", "jwks", "fetch"] {
        assert!(top.stdout.contains(command), "{command}:\n{}", top.stdout);
    }
    let commands: [(&str, &[&str]); 5] = [
        ("keygen", &["--out", "--public-out", "--force"]),
        ("fetch", &["<URL>", "-X, --request", "-H, --header", "-d, --data", "--token", "--key"]),
        ("proof", &["--method", "--url", "--key", "--token", "--nonce", "--iat", "--jti"]),
        ("inspect", &["<PROOF|->", "--method", "--url", "--token", "--now", "--algs", "--max-age", "--max-skew"]),
        ("thumbprint", &["<JWK|PATH|->"]),
    ];
    for (command, options) in commands {
        let run = dpop(&[command, "--help"]);
        assert_eq!(run.code, 0, "{command}");
        for option in options {
            // Each option appears with a description on its line.
            let line = run.stdout.lines().find(|line| line.trim_start().starts_with(option));
            let line = line.unwrap_or_else(|| panic!("{command} --help lacks {option}:\n{}", run.stdout));
            assert!(line.len() > option.len() + 20, "{command} {option} undocumented: {line}");
        }
    }
}

// --- token and jwks ---

const ISSUER: &str = "https://as.example.com";

/// A development issuer key and a client key in `dir`: (issuer key path, client key path, jkt).
fn issuer_and_client(dir: &TempDir) -> (PathBuf, PathBuf, String) {
    let issuer = dir.path("issuer.json");
    assert_eq!(dpop(&["keygen", "--out", path_str(&issuer)]).code, 0);
    let (client, jkt) = keygen(dir);
    (issuer, client, jkt)
}

/// `dpop jwks` for one issuer key, parsed.
fn jwks(issuer: &Path) -> dpop_token::JwkSet {
    let run = dpop(&["jwks", "--issuer-key", path_str(issuer)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    dpop_token::JwkSet::from_json(&run.stdout).unwrap()
}

fn validator(issuer: &Path, iss: &str, aud: &str) -> dpop_token::JwtValidator {
    dpop_token::JwtValidator::builder(iss, aud).keys(jwks(issuer)).build().unwrap()
}

/// Runs `dpop token`; asserts success and that stdout is the token alone.
fn mint(args: &[&str]) -> String {
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    let run = dpop(&all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stderr.contains("development"), "{}", run.stderr);
    run.stdout.trim().to_owned()
}

fn decode_part(token: &str, index: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn token_validates_with_the_exported_jwks_and_carries_every_claim() {
    use dpop_core::{InvalidToken, TokenError, TokenValidator as _};

    let dir = TempDir::new();
    let (issuer, client, jkt) = issuer_and_client(&dir);
    let before = now();
    let token = mint(&[
        "--issuer-key",
        path_str(&issuer),
        "--iss",
        ISSUER,
        "--aud",
        URL,
        "--key",
        path_str(&client),
        "--scope",
        "mcp:tools mcp:resources",
        "--sub",
        "alice",
        "--client-id",
        "my-client",
        "--lifetime",
        "600",
    ]);
    let after = now();

    let claims = validator(&issuer, ISSUER, URL).validate(&token).await.unwrap();
    assert_eq!(claims.issuer.as_deref(), Some(ISSUER));
    assert_eq!(claims.audience, [URL]);
    assert_eq!(claims.subject.as_deref(), Some("alice"));
    assert_eq!(claims.client_id.as_deref(), Some("my-client"));
    assert_eq!(claims.scopes, ["mcp:tools", "mcp:resources"]);
    assert_eq!(claims.cnf_jkt.as_deref(), Some(jkt.as_str()));
    let iat = claims.raw["iat"].as_u64().unwrap();
    assert!((before..=after).contains(&iat), "{iat}");
    assert_eq!(claims.expires_at, Some(iat + 600));
    assert_eq!(claims.raw["jti"].as_str().unwrap().len(), 22, "128 random bits");

    let header = decode_part(&token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let issuer_jkt = dpop(&["thumbprint", path_str(&issuer)]).stdout;
    assert_eq!(header["kid"], issuer_jkt.trim());

    // Another issuer, another audience, another issuer key: refused.
    let refused = |result: Result<_, TokenError>| match result {
        Err(TokenError::Invalid(why)) => why,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(
        refused(validator(&issuer, "https://other-as.example.com", URL).validate(&token).await),
        InvalidToken::WrongIssuer
    );
    assert_eq!(
        refused(validator(&issuer, ISSUER, "https://other.example.com/mcp").validate(&token).await),
        InvalidToken::WrongAudience
    );
    let other_issuer = dir.path("other-issuer.json");
    assert_eq!(dpop(&["keygen", "--out", path_str(&other_issuer)]).code, 0);
    assert_eq!(refused(validator(&other_issuer, ISSUER, URL).validate(&token).await), InvalidToken::UnknownSigningKey);
}

#[tokio::test]
async fn token_defaults_jkt_and_several_audiences() {
    // A thumbprint may start with `-` (base64url): still the value of --jkt.
    let dashed = "-ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let dir = TempDir::new();
    let (issuer, _, _) = issuer_and_client(&dir);
    let token = mint(&["--issuer-key", path_str(&issuer), "--iss", ISSUER, "--aud", URL, "--jkt", dashed]);
    assert_eq!(decode_part(&token, 1)["cnf"]["jkt"], dashed);

    use dpop_core::TokenValidator as _;

    let dir = TempDir::new();
    let (issuer, client, jkt) = issuer_and_client(&dir);
    let other_aud = "https://tools.example.com/";
    let token =
        mint(&["--issuer-key", path_str(&issuer), "--iss", ISSUER, "--aud", other_aud, "--aud", URL, "--jkt", &jkt]);
    let claims = validator(&issuer, ISSUER, URL).validate(&token).await.unwrap();
    assert_eq!(claims.audience, [other_aud, URL]);
    assert_eq!(claims.cnf_jkt.as_deref(), Some(jkt.as_str()));
    assert_eq!(claims.subject.as_deref(), Some("dev-user"));
    assert_eq!(claims.client_id.as_deref(), Some("dpop-cli"));
    assert!(claims.scopes.is_empty() && !claims.raw.contains_key("scope"));
    assert_eq!(claims.expires_at, Some(claims.raw["iat"].as_u64().unwrap() + 3600));

    // The public key file binds to the same jkt as the private one.
    let from_public = mint(&[
        "--issuer-key",
        path_str(&issuer),
        "--iss",
        ISSUER,
        "--aud",
        URL,
        "--key",
        path_str(&dir.path("key.pub.json")),
    ]);
    assert_eq!(decode_part(&from_public, 1)["cnf"]["jkt"], jkt.as_str());
    let from_private =
        mint(&["--issuer-key", path_str(&issuer), "--iss", ISSUER, "--aud", URL, "--key", path_str(&client)]);
    assert_eq!(decode_part(&from_private, 1)["cnf"]["jkt"], jkt.as_str());
}

#[test]
fn token_and_jwks_usage_errors_exit_2() {
    let dir = TempDir::new();
    let (issuer, client, jkt) = issuer_and_client(&dir);
    let (issuer, client) = (path_str(&issuer), path_str(&client));
    let public = dir.path("key.pub.json");
    let public_issuer = path_str(&public);
    let cases: [(&[&str], &str); 10] = [
        (&["token", "--issuer-key", issuer, "--iss", ISSUER, "--aud", URL], "--key"),
        (&["token", "--issuer-key", issuer, "--iss", ISSUER, "--aud", URL, "--key", client, "--jkt", &jkt], "--jkt"),
        (&["token", "--issuer-key", issuer, "--iss", ISSUER, "--key", client], "--aud"),
        (&["token", "--issuer-key", issuer, "--aud", URL, "--key", client], "--iss"),
        (&["token", "--iss", ISSUER, "--aud", URL, "--key", client], "--issuer-key"),
        (
            &["token", "--issuer-key", issuer, "--iss", ISSUER, "--aud", URL, "--jkt", "abc"],
            "not a JWK SHA-256 thumbprint",
        ),
        (
            &["token", "--issuer-key", issuer, "--iss", ISSUER, "--aud", URL, "--key", client, "--lifetime", "0"],
            "--lifetime",
        ),
        (&["token", "--issuer-key", issuer, "--iss", "", "--aud", URL, "--key", client], "must not be empty"),
        (&["token", "--issuer-key", public_issuer, "--iss", ISSUER, "--aud", URL, "--key", client], "public JWK"),
        (&["jwks", "--issuer-key", public_issuer], "public JWK"),
    ];
    for (args, message) in cases {
        let run = dpop(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    let run = dpop(&["jwks"]);
    assert_eq!(run.code, 2);
}

#[test]
fn token_help_says_development_only() {
    for args in [["token", "--help"], ["token", "-h"], ["jwks", "--help"]] {
        let run = dpop(&args);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains("DEVELOPMENT ONLY"), "{args:?}:\n{}", run.stdout);
    }
    let run = dpop(&["token", "--help"]);
    assert!(run.stdout.contains("production"), "{}", run.stdout);
    for option in ["--issuer-key", "--iss", "--aud", "--key", "--jkt", "--scope", "--sub", "--client-id", "--lifetime"]
    {
        assert!(run.stdout.contains(&format!("{option} <")), "{option}:\n{}", run.stdout);
    }
    assert!(dpop(&["--help"]).stdout.contains("DEVELOPMENT ONLY"));
}

/// One HTTP/1.1 GET over a fresh connection: the status and the body.
async fn get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn proof_and_token_reach_a_dpop_protected_server() {
    use dpop_axum::{Authenticated, DpopGuard, DpopLayer};

    let dir = TempDir::new();
    let (issuer, client, jkt) = issuer_and_client(&dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/mcp");

    let guard = DpopGuard::builder()
        .token_validator(validator(&issuer, ISSUER, &url))
        .required_scopes(["mcp:tools"])
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::get(|auth: Authenticated| async move {
                format!("{} {}", auth.claims().subject.as_deref().unwrap_or("?"), auth.jkt().unwrap_or_default())
            }),
        )
        .layer(DpopLayer::with_guard(guard));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // What a user types: a token, a proof for it, and the two headers.
    let token_for = |scope: &str, bind: &[&str]| {
        let mut args =
            vec!["--issuer-key", path_str(&issuer), "--iss", ISSUER, "--aud", url.as_str(), "--scope", scope];
        args.extend_from_slice(bind);
        mint(&args)
    };
    let proof_for = |token: &str| {
        let run = dpop(&["proof", "--method", "GET", "--url", &url, "--key", path_str(&client), "--token", token]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.trim().to_owned()
    };
    let send = |token: String| async move {
        let proof = proof_for(&token);
        get(addr, "/mcp", &[("Authorization", &format!("DPoP {token}")), ("DPoP", &proof)]).await
    };

    let (status, body) = send(token_for("mcp:tools", &["--key", path_str(&client)])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("dev-user {jkt}"));

    // A token bound to another key is refused, as is one without the required scope.
    let other = dir.path("other.json");
    assert_eq!(dpop(&["keygen", "--out", path_str(&other)]).code, 0);
    let (status, _) = send(token_for("mcp:tools", &["--key", path_str(&other)])).await;
    assert_eq!(status, 401);
    let (status, _) = send(token_for("mcp:resources", &["--key", path_str(&client)])).await;
    assert_eq!(status, 403);

    server.abort();
}

// --- fetch ---

/// An axum server like a protected MCP server that always wants a nonce: `/mcp` behind the
/// DPoP layer (tokens from `dpop token` with `issuer`, audience `url`), and `/token`, an
/// authorization server's endpoint that answers `use_dpop_nonce` as RFC 9449 §8 has it (400
/// JSON). Counts the requests that reach it.
struct NonceServer {
    addr: std::net::SocketAddr,
    url: String,
    requests: std::sync::Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NonceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The nonce the `/token` endpoint of [`NonceServer`] wants.
const AS_NONCE: &str = "as-nonce-1";

async fn nonce_server(issuer: &Path) -> NonceServer {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse as _;
    use dpop_axum::{Authenticated, DpopGuard, DpopLayer};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/mcp");
    let verifier = dpop_core::DpopVerifier::builder()
        .nonces(dpop_core::nonce::NonceIssuer::process_wide().unwrap())
        .build()
        .unwrap();
    let guard = DpopGuard::builder()
        .token_validator(validator(issuer, ISSUER, &url))
        .verifier(verifier)
        .nonce_policy(dpop_core::NoncePolicy::Always)
        .build()
        .unwrap();
    let resource = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::get(|auth: Authenticated| async move {
                format!("{} {}", auth.claims().subject.as_deref().unwrap_or("?"), auth.jkt().unwrap_or_default())
            })
            .post(|auth: Authenticated, headers: HeaderMap, body: String| async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
                format!(
                    "{} posted {body:?} as {} with x-test {}",
                    auth.claims().subject.as_deref().unwrap_or("?"),
                    header("content-type"),
                    header("x-test")
                )
            }),
        )
        .layer(DpopLayer::with_guard(guard));
    let token_endpoint = axum::Router::new().route(
        "/token",
        axum::routing::post(|headers: HeaderMap, body: String| async move {
            let proof = headers.get("dpop").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if decode_part(proof, 1)["nonce"] == AS_NONCE {
                (StatusCode::OK, [("content-type", "application/json")], format!(r#"{{"got":{body:?}}}"#))
                    .into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "application/json"), ("dpop-nonce", AS_NONCE)],
                    r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#,
                )
                    .into_response()
            }
        }),
    );
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let app = resource.merge(token_endpoint).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        },
    ));
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    NonceServer { addr, url, requests, task }
}

/// The status line, the headers (lower-case names) and the body `dpop fetch` printed.
fn fetched(run: &Run) -> (&str, Vec<(&str, &str)>, &str) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (head, body) = run.stdout.split_once("\n\n").unwrap_or_else(|| panic!("no blank line:\n{}", run.stdout));
    let mut lines = head.lines();
    let status = lines.next().unwrap();
    let headers = lines.map(|line| line.split_once(": ").unwrap_or_else(|| panic!("header line {line:?}"))).collect();
    (status, headers, body)
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| *n == name).map(|(_, value)| *value)
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_follows_one_nonce_and_reaches_a_dpop_protected_server() {
    let dir = TempDir::new();
    let (issuer, client, jkt) = issuer_and_client(&dir);
    let server = nonce_server(&issuer).await;
    let token =
        mint(&["--issuer-key", path_str(&issuer), "--iss", ISSUER, "--aud", &server.url, "--key", path_str(&client)]);

    let run = dpop(&["fetch", &server.url, "--token", &token, "--key", path_str(&client)]);
    let (status, headers, body) = fetched(&run);
    assert_eq!(status, "HTTP/1.1 200 OK", "{}", run.stdout);
    assert_eq!(body, format!("dev-user {jkt}"));
    assert!(header(&headers, "content-type").is_some_and(|v| v.starts_with("text/plain")), "{}", run.stdout);
    // The first proof had no nonce: one 401 use_dpop_nonce, then one more request.
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    assert!(run.stderr.contains("401 Unauthorized with DPoP-Nonce"), "{}", run.stderr);
    assert!(run.stderr.contains("once more"), "{}", run.stderr);
    assert!(!run.stderr.contains("ephemeral"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_prints_a_refusal_with_its_challenge_and_exits_0() {
    let dir = TempDir::new();
    let (issuer, _client, _) = issuer_and_client(&dir);
    let server = nonce_server(&issuer).await;
    let other = dir.path("other.json");
    assert_eq!(dpop(&["keygen", "--out", path_str(&other)]).code, 0);
    let wrong =
        mint(&["--issuer-key", path_str(&issuer), "--iss", ISSUER, "--aud", &server.url, "--key", path_str(&other)]);

    // A token bound to another key than the proof's (here a fresh ephemeral one).
    let run = dpop(&["fetch", &server.url, "--token", &wrong]);
    let (status, headers, _) = fetched(&run);
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{}", run.stdout);
    let challenge = header(&headers, "www-authenticate").unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(!challenge.contains("use_dpop_nonce"), "the retry carried the nonce: {challenge}");
    assert!(run.stderr.contains("ephemeral"), "{}", run.stderr);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2, "one retry, no more");

    // No token at all: the bare challenge.
    let run = dpop(&["fetch", &server.url]);
    let (status, headers, _) = fetched(&run);
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{}", run.stdout);
    assert!(header(&headers, "www-authenticate").is_some_and(|v| v.contains("DPoP")), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_posts_data_and_headers() {
    let dir = TempDir::new();
    let (issuer, client, _) = issuer_and_client(&dir);
    let server = nonce_server(&issuer).await;
    let token =
        mint(&["--issuer-key", path_str(&issuer), "--iss", ISSUER, "--aud", &server.url, "--key", path_str(&client)]);
    let key = path_str(&client);

    // -d implies POST and a form body, as with curl.
    let run = dpop(&["fetch", &server.url, "-d", "a=1&b=2", "--token", &token, "--key", key, "-H", "X-Test: yes"]);
    let (status, _, body) = fetched(&run);
    assert_eq!(status, "HTTP/1.1 200 OK", "{}", run.stdout);
    assert_eq!(body, r#"dev-user posted "a=1&b=2" as application/x-www-form-urlencoded with x-test yes"#);

    // -X, a Content-Type header, and the body from a file, bytes as they are; sent twice
    // (nonce retry) and arriving whole.
    let file = dir.path("body.json");
    std::fs::write(&file, "{\"x\": 1}\n").unwrap();
    let data = format!("@{}", path_str(&file));
    let run = dpop(&[
        "fetch",
        "-X",
        "POST",
        &server.url,
        "--data",
        &data,
        "--header",
        "content-type: application/json",
        "--token",
        &token,
        "--key",
        key,
    ]);
    let (status, _, body) = fetched(&run);
    assert_eq!(status, "HTTP/1.1 200 OK", "{}", run.stdout);
    assert_eq!(body, r#"dev-user posted "{\"x\": 1}\n" as application/json with x-test -"#);

    // The body from stdin.
    let mut args = vec!["fetch", &server.url, "-d", "@-", "--token", &token, "--key", key];
    let run = dpop_with_stdin(&args, "from stdin");
    assert!(fetched(&run).2.contains(r#"posted "from stdin""#), "{}", run.stdout);
    // A method the route does not have: 405, still exit 0.
    args.truncate(2);
    args.extend(["-X", "DELETE", "--token", &token, "--key", key]);
    let run = dpop(&args);
    let (status, ..) = fetched(&run);
    assert!(status.starts_with("HTTP/1.1 405"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_follows_an_authorization_servers_400_nonce() {
    let dir = TempDir::new();
    let (issuer, client, _) = issuer_and_client(&dir);
    let server = nonce_server(&issuer).await;
    let url = format!("http://{}/token", server.addr);
    let run = dpop(&["fetch", &url, "-d", "grant_type=client_credentials", "--key", path_str(&client)]);
    let (status, headers, body) = fetched(&run);
    assert_eq!(status, "HTTP/1.1 200 OK", "{}\n{}", run.stdout, run.stderr);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(body, r#"{"got":"grant_type=client_credentials"}"#);
    assert!(run.stderr.contains(&format!("400 Bad Request with DPoP-Nonce `{AS_NONCE}`")), "{}", run.stderr);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn fetch_usage_errors_exit_2_and_transport_failures_1() {
    let dir = TempDir::new();
    let (key, _) = keygen(&dir);
    let key = path_str(&key);
    let url = "http://127.0.0.1:9/mcp";
    let missing = dir.path("missing.txt");
    let missing = format!("@{}", path_str(&missing));
    let cases: [(&[&str], &str); 11] = [
        (&["fetch"], "<URL>"),
        (&["fetch", "not a url"], "is not a URL"),
        (&["fetch", "ftp://example.com/x"], "not an http(s) URL"),
        (&["fetch", "http://user:pw@example.com/x"], "userinfo"),
        (&["fetch", url, "-X", "BAD METHOD"], "not an HTTP method"),
        (&["fetch", url, "-H", "no colon"], "not \"Name: value\""),
        (&["fetch", url, "-H", "DPoP: x"], "signs the proof itself"),
        (&["fetch", url, "-H", "Authorization: DPoP x", "--token", "y"], "not both"),
        (&["fetch", url, "-d", &missing], "cannot read"),
        (&["fetch", url, "--key", "/nonexistent/dpop-cli/key.json"], "cannot read"),
        (&["fetch", url, "--key", "-", "-d", "@-"], "stdin"),
    ];
    for (args, message) in cases {
        let run = dpop(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }

    // Nothing listens on a port just released: no response, exit 1, and why.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let run = dpop(&["fetch", &closed, "--key", key]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("dpop: error: GET") && run.stderr.contains(&closed), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
