//! `dpop keygen`: a fresh ES256 key, written as a private and a public JWK.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dpop_core::DpopKey;
use serde_json::Value;

use crate::output::{self, Failure};

/// Arguments of `dpop keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to write the private JWK (created with mode 0600 on Unix)
    #[arg(long, value_name = "PATH")]
    out: PathBuf,

    /// Where to write the public JWK (default: the --out path with its extension replaced by
    /// `.pub.json`, e.g. key.json -> key.pub.json)
    #[arg(long, value_name = "PATH")]
    public_out: Option<PathBuf>,

    /// Overwrite existing files (the private one is reset to mode 0600)
    #[arg(long)]
    force: bool,
}

/// Generates the key, writes both files, prints the thumbprint.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let public_out = match &args.public_out {
        Some(path) => path.clone(),
        None => default_public_path(&args.out)?,
    };
    if public_out == args.out {
        return Err(Failure::usage("--out and --public-out name the same file"));
    }
    if !args.force {
        // Checked up front so that an existing public file does not leave a new private key
        // behind; `create_new` below still refuses to overwrite one created in between.
        for path in [&args.out, &public_out] {
            if path.symlink_metadata().is_ok() {
                return Err(exists(path));
            }
        }
    }

    let key = DpopKey::generate().map_err(|error| Failure::failed(format_args!("cannot generate a key: {error}")))?;
    let private = key.private_jwk().map_err(|error| Failure::failed(format_args!("cannot export the key: {error}")))?;
    write_jwk(&args.out, &private, args.force, true)?;
    write_jwk(&public_out, &key.public_jwk(), args.force, false)?;

    let mode = if cfg!(unix) { " (mode 0600)" } else { "" };
    output::note(format_args!(
        "wrote the private JWK to {}{mode} and the public JWK to {}",
        args.out.display(),
        public_out.display()
    ));
    output::stdout(&format!("{}\n", key.thumbprint()))?;
    Ok(ExitCode::SUCCESS)
}

/// `dir/key.json` -> `dir/key.pub.json`; `key` -> `key.pub.json`.
fn default_public_path(out: &Path) -> Result<PathBuf, Failure> {
    let stem = out
        .file_stem()
        .ok_or_else(|| Failure::usage(format_args!("--out `{}` does not name a file", out.display())))?;
    let mut name = OsString::from(stem);
    name.push(".pub.json");
    Ok(out.with_file_name(name))
}

fn exists(path: &Path) -> Failure {
    Failure::usage(format_args!("`{}` already exists; pass --force to overwrite it", path.display()))
}

/// Writes a JWK as pretty JSON. `private` files are created (or, with `force`, reset) to mode
/// 0600 before the key material is written.
fn write_jwk(path: &Path, jwk: &Value, force: bool, private: bool) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(jwk).map_err(Failure::failed)? + "\n";
    let mut file = create(path, force, private).map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => exists(path),
        _ => Failure::failed(format_args!("cannot create `{}`: {error}", path.display())),
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| Failure::failed(format_args!("cannot write `{}`: {error}", path.display())))
}

fn create(path: &Path, force: bool, private: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options.open(path)?;
        // `mode` applies only when the file is created: an overwritten file keeps its old one.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        return Ok(file);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)
}
