//! The attacks DPoP stops, played against a verifier: a client signs proofs, an attacker
//! replays, retargets and forges them, and each outcome is checked. Exit code 1 if any outcome
//! is not the secure one.

use std::process::ExitCode;

use dpop_guard::{DpopError, DpopKey, DpopVerifier, ProofRequest};

const URL: &str = "https://mcp.example.com/mcp";
const TOKEN: &str = "demo-access-token";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let verifier = DpopVerifier::new();
    let client = DpopKey::generate()?;
    let attacker = DpopKey::generate()?;
    let request = ProofRequest::new("POST", URL).access_token(TOKEN);

    let honest = client.proof("POST", URL).access_token(TOKEN).sign()?;
    let mut outcomes: Vec<(&str, Result<(), DpopError>, Option<DpopError>)> = Vec::new();
    let mut step = async |name, proof: &str, request: &ProofRequest<'_>, expected| {
        let result = verifier
            .verify([proof.as_bytes()], request)
            .await
            .map(|_| ());
        outcomes.push((name, result, expected));
    };

    step("client sends a fresh proof", &honest, &request, None).await;
    step(
        "attacker replays that proof",
        &honest,
        &request,
        Some(DpopError::Replayed),
    )
    .await;
    let other_url = client
        .proof("POST", "https://mcp.example.com/admin")
        .access_token(TOKEN)
        .sign()?;
    step(
        "proof made for another URL",
        &other_url,
        &request,
        Some(DpopError::UriMismatch),
    )
    .await;
    let other_method = client.proof("GET", URL).access_token(TOKEN).sign()?;
    step(
        "proof made for another method",
        &other_method,
        &request,
        Some(DpopError::MethodMismatch),
    )
    .await;
    let stolen_token = attacker
        .proof("POST", URL)
        .access_token("another-token")
        .sign()?;
    step(
        "proof for another access token",
        &stolen_token,
        &request,
        Some(DpopError::AccessTokenHashMismatch),
    )
    .await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let stale = client
        .proof("POST", URL)
        .access_token(TOKEN)
        .issued_at(now - 3600)
        .sign()?;
    step(
        "proof from an hour ago",
        &stale,
        &request,
        Some(DpopError::IssuedTooLongAgo),
    )
    .await;
    let (header, _) = honest.split_once('.').ok_or("proof has no header")?;
    let forged = format!(
        "{header}.{}",
        attacker
            .proof("POST", URL)
            .access_token(TOKEN)
            .sign()?
            .split_once('.')
            .ok_or("bad proof")?
            .1
    );
    step(
        "attacker's claims under the client's key",
        &forged,
        &request,
        Some(DpopError::InvalidSignature),
    )
    .await;

    println!("{:<42} {:<40} secure?", "step", "outcome");
    let mut all_secure = true;
    for (name, result, expected) in &outcomes {
        let secure = result.as_ref().err() == expected.as_ref();
        all_secure &= secure;
        let outcome = match result {
            Ok(()) => "accepted".to_owned(),
            Err(error) => format!("rejected: {}", error.code()),
        };
        println!(
            "{name:<42} {outcome:<40} {}",
            if secure { "yes" } else { "NO" }
        );
    }
    Ok(if all_secure {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
