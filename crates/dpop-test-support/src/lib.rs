//! Test helpers shared by dpop-guard's crates.
//!
//! Tests that need Redis use the one at [`REDIS_ADDR`] (loopback only). Without it they are
//! skipped with a reason on stderr — or fail, when [`REQUIRE_VAR`] is set, as CI sets it, so
//! a run can never pass without them.

#![forbid(unsafe_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where the shared Redis listens.
pub const REDIS_ADDR: &str = "127.0.0.1:6379";
/// The same, as a URL for the store.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Set (to anything but empty or `0`) to turn a missing prerequisite into a failure.
pub const REQUIRE_VAR: &str = "DPOP_GUARD_REQUIRE_REDIS";

/// Whether Redis answers at [`REDIS_ADDR`]; see [`skip_or_fail`] for what happens when not.
pub async fn redis_or_skip(test: &str) -> bool {
    match redis_answers().await {
        Ok(()) => true,
        Err(reason) => skip_or_fail(test, &format!("no Redis at {REDIS_ADDR} ({reason})")),
    }
}

/// Reports that `test` lacks a prerequisite (`missing`, a sentence): a failure when
/// [`REQUIRE_VAR`] is set, otherwise a skip with the reason on stderr. Returns `false`, so a
/// test writes `if !prerequisite && !skip_or_fail(..) { return; }` or uses [`redis_or_skip`].
///
/// # Panics
///
/// When [`REQUIRE_VAR`] is set: the prerequisite is mandatory there.
#[allow(clippy::panic)]
pub fn skip_or_fail(test: &str, missing: &str) -> bool {
    let required = std::env::var_os(REQUIRE_VAR).is_some_and(|value| !value.is_empty() && value != "0");
    if required {
        panic!("{test}: {missing}, and {REQUIRE_VAR} is set: provide it or unset {REQUIRE_VAR} to skip");
    }
    eprintln!("{test}: skipped: {missing} (set {REQUIRE_VAR}=1 to make this a failure)");
    false
}

/// One `PING` to [`REDIS_ADDR`], answered `+PONG` within two seconds.
async fn redis_answers() -> Result<(), String> {
    let probe = async {
        let mut stream = TcpStream::connect(REDIS_ADDR).await.map_err(|e| e.to_string())?;
        stream.write_all(b"PING\r\n").await.map_err(|e| e.to_string())?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.map_err(|e| e.to_string())?;
        if &reply == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(format!("unexpected PING reply {:?}", String::from_utf8_lossy(&reply)))
        }
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .unwrap_or_else(|_| Err("no PING reply within 2 s".to_owned()))
}
