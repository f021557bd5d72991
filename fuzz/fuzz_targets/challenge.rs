//! Any description, scope and metadata URL (two flag bytes, then the three texts separated by
//! 0xFF): the rendered `WWW-Authenticate` value is visible ASCII, SP and HTAB only, and reads back
//! (RFC 9110 §11.6.1 grammar, every parameter a quoted-string) into exactly the parameters given.
#![no_main]

use dpop_core::{Algorithm, AlgorithmSet, Challenge, ErrorCode, ErrorScheme, quoted_string};
use libfuzzer_sys::fuzz_target;

const CODES: [ErrorCode; 6] = [
    ErrorCode::InvalidDpopProof,
    ErrorCode::InvalidToken,
    ErrorCode::UseDpopNonce,
    ErrorCode::InvalidRequest,
    ErrorCode::InsufficientScope,
    ErrorCode::TemporarilyUnavailable,
];

type Params = Vec<(String, String)>;

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_visible(text: &str) -> bool {
    text.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// A strict reader of `#challenge`, each `auth-scheme [ 1*SP #auth-param ]`, every value a
/// quoted-string.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
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
        Ok(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    fn quoted_string(&mut self) -> Result<String, String> {
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

    fn at_param(&self) -> bool {
        let mut end = self.at;
        while self.bytes.get(end).copied().is_some_and(is_tchar) {
            end += 1;
        }
        end > self.at && self.bytes.get(end) == Some(&b'=')
    }

    fn challenges(mut self) -> Result<Vec<(String, Params)>, String> {
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

fn sanitized(value: &str) -> String {
    value.chars().map(|c| if c == '\t' || (' '..='~').contains(&c) { c } else { '?' }).collect()
}

fn description_text(value: &str) -> String {
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

fuzz_target!(|data: &[u8]| {
    let (flags, algs_bits, rest) = match data {
        [flags, algs, rest @ ..] => (*flags, *algs, rest),
        _ => return,
    };
    let mut texts = rest.split(|&b| b == 0xFF).map(String::from_utf8_lossy);
    let description = texts.next().unwrap_or_default();
    let scope = texts.next().filter(|_| flags & 0x40 != 0);
    let metadata = texts.next().filter(|_| flags & 0x80 != 0);

    let bearer = flags & 1 != 0;
    let on = match (flags >> 1) & 3 {
        0 => None,
        1 => Some(ErrorScheme::Dpop),
        2 => Some(ErrorScheme::Bearer),
        _ => Some(ErrorScheme::Both),
    };
    let code = CODES[usize::from((flags >> 3) & 7) % CODES.len()];
    let algs: AlgorithmSet =
        Algorithm::ALL.into_iter().enumerate().filter(|(i, _)| algs_bits & (1 << i) != 0).map(|(_, a)| a).collect();

    let mut challenge = Challenge::new(algs).with_bearer(bearer);
    if let Some(on) = on {
        challenge = challenge.error_code(code, &description, on);
    }
    if let Some(scope) = &scope {
        challenge = challenge.scope(scope);
    }
    if let Some(metadata) = &metadata {
        challenge = challenge.resource_metadata(metadata);
    }
    let rendered = challenge.render();
    assert!(is_visible(&rendered), "not a visible-ASCII header value: {rendered:?}");
    let parsed = Reader { bytes: rendered.as_bytes(), at: 0 }
        .challenges()
        .unwrap_or_else(|error| panic!("{error} in {rendered:?}"));

    let params_for = |scheme: ErrorScheme, algs: Option<AlgorithmSet>| {
        let mut params = Params::new();
        if on.is_some_and(|on| on == scheme || on == ErrorScheme::Both) {
            params.push(("error".into(), code.as_str().into()));
            params.push(("error_description".into(), description_text(&description)));
            if let Some(scope) = &scope {
                params.push(("scope".into(), sanitized(scope)));
            }
        }
        if let Some(algs) = algs {
            params.push(("algs".into(), algs.to_space_separated()));
        }
        if let Some(metadata) = &metadata {
            params.push(("resource_metadata".into(), sanitized(metadata)));
        }
        params
    };
    let mut expected = Vec::new();
    if bearer {
        expected.push(("Bearer".to_owned(), params_for(ErrorScheme::Bearer, None)));
    }
    expected.push(("DPoP".to_owned(), params_for(ErrorScheme::Dpop, Some(algs))));
    assert_eq!(parsed, expected, "rendered: {rendered:?}");

    // `quoted_string` alone: one quoted-string that reads back as the sanitized text.
    let quoted = quoted_string(&description);
    assert!(is_visible(&quoted), "{quoted:?}");
    let mut reader = Reader { bytes: quoted.as_bytes(), at: 0 };
    assert_eq!(reader.quoted_string().as_deref(), Ok(sanitized(&description).as_str()), "{quoted:?}");
    assert_eq!(reader.at, quoted.len(), "trailing bytes in {quoted:?}");
});
