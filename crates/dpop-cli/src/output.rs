//! Writing to stdout and stderr without panicking, and the failures a command ends with.

use std::fmt;
use std::io::{self, Write as _};
use std::process::ExitCode;

/// Why a command stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad arguments or unusable input (unreadable file, malformed key): exit code 2.
    Usage(String),
    /// The operation itself failed (writing a file, the crypto backend): exit code 1.
    Failed(String),
}

impl Failure {
    pub(crate) fn usage(message: impl fmt::Display) -> Self {
        Self::Usage(message.to_string())
    }

    pub(crate) fn failed(message: impl fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Usage(message) | Self::Failed(message) => message,
        }
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Failed(_) => ExitCode::FAILURE,
        }
    }
}

/// Writes `text` to stdout. A closed pipe (`dpop inspect … | head`) is not an error worth a
/// message, but it must not panic as `println!` would.
pub(crate) fn stdout(text: &str) -> Result<(), Failure> {
    stdout_bytes(text.as_bytes())
}

/// Writes `bytes` to stdout as they are (a response body need not be text), as [`stdout`].
pub(crate) fn stdout_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::failed(format_args!("cannot write to stdout: {error}"))),
    }
}

/// `dpop: error: …` on stderr.
pub(crate) fn error(message: &str) {
    let _ = writeln!(io::stderr(), "dpop: error: {message}");
}

/// `dpop: note: …` on stderr: something the user should know that does not stop the command.
pub(crate) fn note(message: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "dpop: note: {message}");
}
