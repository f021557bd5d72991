//! A strict reader of `WWW-Authenticate` values as this library writes them, shared by the
//! property tests and the `challenge` fuzz target (which includes this file by path).
#![allow(dead_code)]

use dpop_core::{AlgorithmSet, ErrorCode, internals::ErrorScheme};

/// The inputs of a rendered challenge.
pub(crate) struct ChallengeInputs<'a> {
    pub(crate) error: Option<(ErrorCode, &'a str, ErrorScheme)>,
    pub(crate) scope: Option<&'a str>,
    pub(crate) metadata: Option<&'a str>,
    pub(crate) bearer: bool,
    pub(crate) algs: AlgorithmSet,
}

/// What `Challenge::render` must read back as for `inputs`: the error (with `scope`) on the
/// scheme it names, `algs` on DPoP, `resource_metadata` on every scheme; values sanitized.
pub(crate) fn expected_challenges(inputs: &ChallengeInputs<'_>) -> Vec<ParsedChallenge> {
    let params_for = |scheme: ErrorScheme, algs: Option<AlgorithmSet>| {
        let mut params = Vec::new();
        let error = inputs.error.filter(|&(_, _, on)| on == scheme || on == ErrorScheme::Both);
        if let Some((code, description, _)) = error {
            params.push(("error".to_owned(), code.as_str().to_owned()));
            params.push(("error_description".to_owned(), description_text(description)));
            if let Some(scope) = inputs.scope {
                params.push(("scope".to_owned(), sanitized(scope)));
            }
        }
        if let Some(algs) = algs {
            params.push(("algs".to_owned(), algs.to_space_separated()));
        }
        if let Some(metadata) = inputs.metadata {
            params.push(("resource_metadata".to_owned(), sanitized(metadata)));
        }
        params
    };
    let mut expected = Vec::new();
    if inputs.bearer {
        expected.push(("Bearer".to_owned(), params_for(ErrorScheme::Bearer, None)));
    }
    expected.push(("DPoP".to_owned(), params_for(ErrorScheme::Dpop, Some(inputs.algs))));
    expected
}

/// One challenge: scheme and its auth-params, values unescaped.
pub(crate) type ParsedChallenge = (String, Vec<(String, String)>);

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A strict reader of the `WWW-Authenticate` grammar (RFC 9110 §11.6.1) as this library writes
/// it: `#challenge`, each `auth-scheme [ 1*SP #auth-param ]`, every parameter value a
/// quoted-string.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.at += usize::from(found);
        found
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Result<String, String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(format!("expected a token at byte {start}"));
        }
        Ok(String::from_utf8(self.bytes[start..self.at].to_vec()).unwrap())
    }

    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`; obs-text is refused.
    pub(crate) fn quoted_string(&mut self) -> Result<String, String> {
        if !self.eat(b'"') {
            return Err(format!("expected '\"' at byte {}", self.at));
        }
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted-string".into()),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(value);
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b @ (b'\t' | b' '..=b'~')) => value.push(char::from(b)),
                        other => return Err(format!("bad quoted-pair {other:?} at byte {}", self.at)),
                    }
                }
                Some(b @ (b'\t' | b' ' | b'!' | b'#'..=b'[' | b']'..=b'~')) => value.push(char::from(b)),
                Some(other) => return Err(format!("byte {other:#04x} in a quoted-string at {}", self.at)),
            }
            self.at += 1;
        }
    }

    /// Whether an auth-param (`token "="`) starts here.
    fn at_param(&self) -> bool {
        let mut end = self.at;
        while self.bytes.get(end).copied().is_some_and(is_tchar) {
            end += 1;
        }
        end > self.at && self.bytes.get(end) == Some(&b'=')
    }

    fn challenges(mut self) -> Result<Vec<ParsedChallenge>, String> {
        let mut challenges = Vec::new();
        loop {
            let scheme = self.token()?;
            let mut params = Vec::new();
            if self.eat(b' ') {
                while self.eat(b' ') {}
                loop {
                    let name = self.token()?;
                    if !self.eat(b'=') {
                        return Err(format!("expected '=' at byte {}", self.at));
                    }
                    params.push((name, self.quoted_string()?));
                    let after = self.at;
                    self.ows();
                    if !self.eat(b',') {
                        self.at = after;
                        break;
                    }
                    self.ows();
                    if !self.at_param() {
                        // The next challenge.
                        self.at = after;
                        break;
                    }
                }
            }
            challenges.push((scheme, params));
            if self.at == self.bytes.len() {
                return Ok(challenges);
            }
            self.ows();
            if !self.eat(b',') {
                return Err(format!("expected ',' between challenges at byte {}", self.at));
            }
            self.ows();
        }
    }
}

pub(crate) fn parse_challenges(header: &str) -> Result<Vec<ParsedChallenge>, String> {
    Reader { bytes: header.as_bytes(), at: 0 }.challenges()
}

/// What a quoted value carries: HTAB and visible ASCII kept, everything else `?`.
pub(crate) fn sanitized(value: &str) -> String {
    value.chars().map(|c| if c == '\t' || (' '..='~').contains(&c) { c } else { '?' }).collect()
}

/// `error_description` (RFC 6749 §5.2): %x20-21 / %x23-5B / %x5D-7E only.
pub(crate) fn description_text(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}
