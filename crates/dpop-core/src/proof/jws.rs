//! Reading a `DPoP` header value: one compact JWS (RFC 7515 §7.1) with a strict JOSE header and
//! claims set (RFC 9449 §4.2). Only parsing happens here; the checks live in `verifier`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::MapAccess;

use crate::error::DpopError;
use crate::json::{self, JsonObject, Rejection};
use crate::proof::jwk::JwkMembers;

/// The three base64url segments of a compact JWS, still encoded.
pub(crate) struct CompactJws<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`: the bytes the signature covers (RFC 7515 §5.2 step 8).
    pub(crate) signing_input: &'a [u8],
}

impl<'a> CompactJws<'a> {
    /// Splits a header value into the three segments (RFC 9449 §4.3 check 2).
    pub(crate) fn split(value: &'a [u8]) -> Result<Self, DpopError> {
        let text = std::str::from_utf8(value).map_err(|_| DpopError::MalformedProof("encoding"))?;
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopError::MalformedProof("JWS compact serialization"));
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(DpopError::MalformedProof("JWS compact serialization"));
        }
        let signing_input = value
            .get(..header.len() + 1 + payload.len())
            .ok_or(DpopError::MalformedProof("JWS compact serialization"))?;
        Ok(Self { header, payload, signature, signing_input })
    }
}

/// Decodes one base64url segment (no padding, no whitespace, canonical trailing bits).
pub(crate) fn decode_segment(segment: &str, part: &'static str) -> Result<Vec<u8>, DpopError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| DpopError::MalformedProof(part))
}

/// The JOSE header of a proof (RFC 9449 §4.2).
#[derive(Default)]
pub(crate) struct ProofHeader<'a> {
    pub(crate) typ: Option<Cow<'a, str>>,
    pub(crate) alg: Option<Cow<'a, str>>,
    pub(crate) jwk: Option<JwkMembers<'a>>,
    pub(crate) has_crit: bool,
    pub(crate) has_external_key: bool,
}

impl<'de> JsonObject<'de> for ProofHeader<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A, rejection: &Rejection) -> Result<(), A::Error> {
        match name {
            "typ" => self.typ = Some(json::string(map, rejection, "typ")?),
            "alg" => self.alg = Some(json::string(map, rejection, "alg")?),
            "jwk" => self.jwk = Some(json::nested_object(map, rejection, "jwk")?),
            "crit" => {
                self.has_crit = true;
                json::skip(map, rejection)?;
            }
            "jku" | "x5u" | "x5c" => {
                self.has_external_key = true;
                json::skip(map, rejection)?;
            }
            _ => json::skip(map, rejection)?,
        }
        Ok(())
    }
}

/// The claims of a proof (RFC 9449 §4.2).
#[derive(Default)]
pub(crate) struct ProofClaims<'a> {
    pub(crate) jti: Option<Cow<'a, str>>,
    pub(crate) htm: Option<Cow<'a, str>>,
    pub(crate) htu: Option<Cow<'a, str>>,
    pub(crate) iat: Option<i64>,
    pub(crate) ath: Option<Cow<'a, str>>,
    pub(crate) nonce: Option<Cow<'a, str>>,
}

impl<'de> JsonObject<'de> for ProofClaims<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A, rejection: &Rejection) -> Result<(), A::Error> {
        match name {
            "jti" => self.jti = Some(json::string(map, rejection, "jti")?),
            "htm" => self.htm = Some(json::string(map, rejection, "htm")?),
            "htu" => self.htu = Some(json::string(map, rejection, "htu")?),
            "iat" => {
                let iat = json::numeric_date_member(map, rejection, "iat")?;
                // At most `json::MAX_NUMERIC_DATE` (2^53 - 1): always an i64. Were it not,
                // `iat` would stay unset and the proof be refused, never misread.
                self.iat = i64::try_from(iat).ok();
            }
            "ath" => self.ath = Some(json::string(map, rejection, "ath")?),
            "nonce" => self.nonce = Some(json::string(map, rejection, "nonce")?),
            _ => json::skip(map, rejection)?,
        }
        Ok(())
    }
}

/// Parses the decoded JOSE header.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<ProofHeader<'_>, DpopError> {
    json::parse_object(bytes, "header")
}

/// Parses the decoded claims.
pub(crate) fn parse_claims(bytes: &[u8]) -> Result<ProofClaims<'_>, DpopError> {
    json::parse_object(bytes, "claims")
}
