//! Header field values handed over by an HTTP framework, without allocating.

/// The values of one header field in a request: the first two are kept, which is all any check
/// needs ("exactly one"), and the rest are counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderValues<'a> {
    first: Option<&'a [u8]>,
    second: Option<&'a [u8]>,
    count: usize,
}

impl<'a> HeaderValues<'a> {
    /// No value: the field is absent.
    pub const NONE: Self = Self { first: None, second: None, count: 0 };

    /// How many times the field occurs.
    #[must_use]
    pub const fn count(&self) -> usize {
        self.count
    }

    /// The value if the field occurs exactly once.
    #[must_use]
    pub const fn single(&self) -> Option<&'a [u8]> {
        if self.count == 1 { self.first } else { None }
    }

    /// The first two values, for checks that must see a repetition.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.first.into_iter().chain(self.second)
    }
}

impl<'a> FromIterator<&'a [u8]> for HeaderValues<'a> {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut values = Self::NONE;
        for value in iter {
            match values.count {
                0 => values.first = Some(value),
                1 => values.second = Some(value),
                _ => {}
            }
            values.count = values.count.saturating_add(1);
        }
        values
    }
}

/// Header names, lowercase, as the guard asks for them.
pub mod names {
    /// `Authorization` (RFC 9110 §11.6.2).
    pub const AUTHORIZATION: &str = "authorization";
    /// `DPoP` (RFC 9449 §4.1).
    pub const DPOP: &str = "dpop";
    /// `DPoP-Nonce` (RFC 9449 §8.1).
    pub const DPOP_NONCE: &str = "dpop-nonce";
    /// `Host` (RFC 9110 §7.2).
    pub const HOST: &str = "host";
    /// `Forwarded` (RFC 7239).
    pub const FORWARDED: &str = "forwarded";
    /// `X-Forwarded-Proto` (de facto).
    pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
    /// `X-Forwarded-Host` (de facto).
    pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
    /// `WWW-Authenticate` (RFC 9110 §11.6.1).
    pub const WWW_AUTHENTICATE: &str = "www-authenticate";
    /// `Cache-Control` (RFC 9111 §5.2).
    pub const CACHE_CONTROL: &str = "cache-control";
    /// `Content-Type` (RFC 9110 §8.3).
    pub const CONTENT_TYPE: &str = "content-type";
    /// `Retry-After` (RFC 9110 §10.2.3).
    pub const RETRY_AFTER: &str = "retry-after";
}
