//! Memory per live entry of the in-memory replay store: RSS before and after inserting
//! 1,000,000 entries from distinct keys (the store's real layout, not an estimate).
//!
//! `cargo run --release -p dpop-core --example replay_memory`

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use dpop_core::replay::ReplayKey;
use dpop_core::{Thumbprint, replay::InMemoryReplayStore, replay::ReplayStore};

const ENTRIES: usize = 1_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Twice the entries: each shard holds its share of the capacity, and a keyed hash fills some
    // shards a little faster than others.
    let store = InMemoryReplayStore::builder().capacity(2 * ENTRIES).build()?;
    let before = resident_bytes()?;
    for i in 0..ENTRIES {
        // 1,000 client keys with 1,000 proofs each: the per-key counters are part of the cost.
        let mut client = [0u8; 32];
        client[..8].copy_from_slice(&((i % 1000) as u64).to_le_bytes());
        let key = ReplayKey::new(&Thumbprint::from_bytes(client), &format!("jti-{i}")).with_validated_token();
        let mut insert = std::pin::pin!(store.insert_if_absent(key, Duration::from_secs(600)));
        match insert.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => {
                result?;
            }
            Poll::Pending => return Err("the in-memory store never waits".into()),
        }
    }
    let after = resident_bytes()?;
    let per_entry = (after.saturating_sub(before)) as f64 / ENTRIES as f64;
    println!("entries            {}", store.len());
    println!("RSS before         {:.1} MiB", before as f64 / 1048576.0);
    println!("RSS after          {:.1} MiB", after as f64 / 1048576.0);
    println!("bytes per entry    {per_entry:.1}");
    Ok(())
}

/// Resident set size from /proc/self/statm (Linux), in bytes.
fn resident_bytes() -> Result<u64, Box<dyn std::error::Error>> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("statm has no RSS field")?.parse()?;
    Ok(pages * 4096)
}
