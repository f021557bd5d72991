//! Any bytes as the `Authorization` value: `parse_authorization` never panics, and a DPoP or
//! Bearer credential it accepts is exactly `scheme 1*SP token68` (RFC 9110 §11.2, §11.6.2).
#![no_main]

use dpop_core::{headers::HeaderValues, internals::Credentials, internals::parse_authorization};
use libfuzzer_sys::fuzz_target;

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let one: HeaderValues<'_> = [data].into_iter().collect();
    let accepted = match parse_authorization(one) {
        Ok(Credentials::Dpop(token)) => Some(("dpop", token)),
        Ok(Credentials::Bearer(token)) => Some(("bearer", token)),
        Ok(Credentials::Absent) => panic!("a present field parsed as absent"),
        Ok(Credentials::OtherScheme) | Err(_) => None,
    };
    if let Some((scheme, token)) = accepted {
        assert!(is_token68(token), "accepted a token that is not a token68: {token:?}");
        let text = std::str::from_utf8(data).expect("accepted a value that is not UTF-8");
        let (prefix, rest) = text.split_at_checked(scheme.len()).expect("value shorter than its scheme");
        assert!(prefix.eq_ignore_ascii_case(scheme), "scheme {prefix:?} read as {scheme}");
        assert!(rest.starts_with(' '), "no SP after the scheme in {text:?}");
        assert_eq!(rest.trim_start_matches(' '), token, "token is not the rest of {text:?}");
    }
    // A second field is always rejected.
    let two: HeaderValues<'_> = [data, data].into_iter().collect();
    assert!(parse_authorization(two).is_err());
});
