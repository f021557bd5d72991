//! Tests that need Redis use the one at 127.0.0.1:6379 (loopback only): skipped with a reason
//! when none answers, a failure when `DPOP_GUARD_REQUIRE_REDIS` is set (as in CI).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where the shared Redis listens.
pub(crate) const REDIS_ADDR: &str = "127.0.0.1:6379";
/// The same, as a URL for the store.
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Set (to anything but empty or `0`) to turn "no Redis" into a failure instead of a skip.
pub(crate) const REQUIRE_VAR: &str = "DPOP_GUARD_REQUIRE_REDIS";

/// Whether Redis answers at [`REDIS_ADDR`]. Without it the test is skipped (returns `false`
/// after saying why on stderr), or fails if [`REQUIRE_VAR`] is set.
pub(crate) async fn redis_or_skip(test: &str) -> bool {
    let Err(reason) = redis_answers().await else {
        return true;
    };
    let required = std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{test}: no Redis at {REDIS_ADDR} ({reason}), and {REQUIRE_VAR} is set: \
         start Redis on {REDIS_ADDR} or unset {REQUIRE_VAR} to skip"
    );
    eprintln!("{test}: skipped: no Redis at {REDIS_ADDR} ({reason}) (set {REQUIRE_VAR}=1 to make this a failure)");
    false
}

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
