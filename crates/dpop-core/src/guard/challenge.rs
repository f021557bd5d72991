//! `WWW-Authenticate` challenges (RFC 9449 §7.1, RFC 6750 §3, RFC 9728 §5.1), rendered exactly
//! and with every parameter value quoted and escaped (RFC 9110 §11.2, §5.6.4).

use crate::error::{DpopError, ErrorCode};
use crate::proof::algorithm::AlgorithmSet;

/// Which scheme's challenge carries the error parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorScheme {
    /// The error concerns the DPoP scheme (a bad proof, a bad DPoP-bound token).
    Dpop,
    /// The error concerns a Bearer token (RFC 9449 Figure 18).
    Bearer,
    /// Both: the request mixed the schemes (RFC 9449 Figure 19).
    Both,
}

/// A `WWW-Authenticate` header value: a DPoP challenge, optionally preceded by a Bearer one.
#[derive(Clone, Debug)]
#[must_use]
pub struct Challenge<'a> {
    algs: AlgorithmSet,
    bearer: bool,
    error: Option<(ErrorCode, String, ErrorScheme)>,
    scope: Option<&'a str>,
    resource_metadata: Option<&'a str>,
}

impl<'a> Challenge<'a> {
    /// A DPoP challenge advertising `algs` (RFC 9449 §7.1), with no error: the answer to a
    /// request without credentials (Figure 15).
    pub fn new(algs: AlgorithmSet) -> Self {
        Self { algs, bearer: false, error: None, scope: None, resource_metadata: None }
    }

    /// Also challenge with `Bearer`, first (Figure 17): for resources that accept both.
    pub fn with_bearer(mut self, bearer: bool) -> Self {
        self.bearer = bearer;
        self
    }

    /// Adds the error of `rejection` to the DPoP challenge.
    pub fn error(self, rejection: &DpopError) -> Self {
        self.error_on(rejection, ErrorScheme::Dpop)
    }

    /// Adds the error of `rejection` to the given scheme's challenge.
    pub fn error_on(mut self, rejection: &DpopError, scheme: ErrorScheme) -> Self {
        self.error = Some((rejection.code(), rejection.description().into_owned(), scheme));
        self
    }

    /// Adds an error by code and description.
    pub fn error_code(mut self, code: ErrorCode, description: &str, scheme: ErrorScheme) -> Self {
        self.error = Some((code, description.to_owned(), scheme));
        self
    }

    /// Adds `scope="…"` (RFC 6750 §3) to the challenge that carries the error.
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Adds `resource_metadata="…"` (RFC 9728 §5.1) to every challenge.
    pub fn resource_metadata(mut self, url: &'a str) -> Self {
        self.resource_metadata = Some(url);
        self
    }

    /// The header value.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(160);
        if self.bearer {
            out.push_str("Bearer");
            self.write_params(&mut out, ErrorScheme::Bearer, None);
            out.push_str(", ");
        }
        out.push_str("DPoP");
        self.write_params(&mut out, ErrorScheme::Dpop, Some(self.algs));
        out
    }

    fn write_params(&self, out: &mut String, scheme: ErrorScheme, algs: Option<AlgorithmSet>) {
        let mut first = true;
        let mut param = |out: &mut String, name: &str, value: &str| {
            out.push_str(if first { " " } else { ", " });
            first = false;
            out.push_str(name);
            out.push('=');
            push_quoted(out, value);
        };
        if let Some((code, description, on)) = &self.error
            && (*on == scheme || *on == ErrorScheme::Both)
        {
            param(out, "error", code.as_str());
            param(out, "error_description", &error_description_text(description));
            if let Some(scope) = self.scope {
                param(out, "scope", scope);
            }
        }
        if let Some(algs) = algs {
            param(out, "algs", &algs.to_space_separated());
        }
        if let Some(url) = self.resource_metadata {
            param(out, "resource_metadata", url);
        }
    }
}

/// RFC 6749 §5.2 / RFC 6750 §3: `error_description` uses only %x20-21 / %x23-5B / %x5D-7E.
fn error_description_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

/// Appends `value` as an RFC 9110 §5.6.4 quoted-string: `"` and `\` escaped, controls and
/// non-ASCII replaced by `?` (a header value carries no safe encoding for them).
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' | ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
}

/// The `WWW-Authenticate` value for `rejection` on a DPoP-only resource (Figure 16 form):
/// `DPoP error="…", error_description="…", algs="…"`.
#[must_use]
pub fn www_authenticate(rejection: &DpopError, algs: AlgorithmSet) -> String {
    Challenge::new(algs).error(rejection).render()
}

/// Quotes a value the way challenges do; exposed for callers that build other header values.
#[must_use]
pub fn quoted_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    push_quoted(&mut out, value);
    out
}
