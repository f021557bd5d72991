//! Reading what the user points at: a file, stdin (`-`), or text given inline.

use std::fs;
use std::io::{self, Read as _};
use std::path::Path;

use crate::output::Failure;

/// The most read from a file or stdin: far more than any JWK or proof.
const MAX_INPUT: u64 = 1024 * 1024;

/// Reads a file, or stdin for `-`, as UTF-8 text.
pub(crate) fn read_text(source: &str) -> Result<String, Failure> {
    let bytes = read_bytes(source)?;
    String::from_utf8(bytes).map_err(|_| Failure::usage(format_args!("{} is not UTF-8 text", describe(source))))
}

/// Reads a file, or stdin for `-`.
pub(crate) fn read_bytes(source: &str) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    let result = if source == "-" {
        io::stdin().lock().take(MAX_INPUT + 1).read_to_end(&mut bytes)
    } else {
        fs::File::open(Path::new(source)).and_then(|file| file.take(MAX_INPUT + 1).read_to_end(&mut bytes))
    };
    result.map_err(|error| Failure::usage(format_args!("cannot read {}: {error}", describe(source))))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_INPUT {
        return Err(Failure::usage(format_args!("{} is larger than {MAX_INPUT} bytes", describe(source))));
    }
    Ok(bytes)
}

/// How to name a source in messages.
pub(crate) fn describe(source: &str) -> String {
    if source == "-" { "stdin".to_owned() } else { format!("`{source}`") }
}
