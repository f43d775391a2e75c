//! Who may call: requests that came through a proxy are refused, and every action request
//! must carry the token in the Data API's own headers, `apiKey` or `Authorization: Bearer`.

use axum::http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::Auth;
use crate::metrics::ErrorClass;

/// A request forwarded by a proxy did not come from the function's own code.
pub fn reject_proxied(headers: &HeaderMap) -> Result<(), ApiError> {
    for name in ["x-forwarded-for", "forwarded"] {
        if headers.contains_key(name) {
            return Err(ApiError::invalid(format!(
                "the request carries a {name} header: it came through a proxy, and the sidecar only serves the function's own code"
            )));
        }
    }
    Ok(())
}

pub fn check_token(auth: &Auth, headers: &HeaderMap) -> Result<(), ApiError> {
    let Auth::Token(expected) = auth else {
        return Ok(());
    };
    let presented = headers
        .get("apikey")
        .or_else(|| headers.get("api-key"))
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
        })
        .map(str::trim);
    match presented {
        None | Some("") => Err(
            ApiError::invalid("no authentication methods were specified").classed(ErrorClass::Auth),
        ),
        // Constant time, so the comparison leaks nothing about how much of a guess was right.
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidSession",
            "invalid session: error finding user for endpoint",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn the_token_may_come_as_api_key_or_bearer() {
        let auth = Auth::Token("secret-token".into());
        assert!(check_token(&auth, &headers(&[("apikey", "secret-token")])).is_ok());
        assert!(check_token(&auth, &headers(&[("authorization", "Bearer secret-token")])).is_ok());
    }

    #[test]
    fn a_missing_token_is_400_and_a_wrong_one_401() {
        let auth = Auth::Token("secret-token".into());
        let missing = check_token(&auth, &headers(&[])).expect_err("missing");
        assert_eq!(
            (missing.status.as_u16(), missing.error_code),
            (400, "InvalidParameter")
        );
        let wrong = check_token(&auth, &headers(&[("apikey", "guess")])).expect_err("wrong");
        assert_eq!(
            (wrong.status.as_u16(), wrong.error_code),
            (401, "InvalidSession")
        );
        let prefix =
            check_token(&auth, &headers(&[("apikey", "secret-toke")])).expect_err("prefix");
        assert_eq!(prefix.status.as_u16(), 401);
    }

    #[test]
    fn disabled_auth_lets_everything_through() {
        assert!(check_token(&Auth::Disabled { explicit: true }, &headers(&[])).is_ok());
    }

    #[test]
    fn proxied_requests_are_refused() {
        assert!(reject_proxied(&headers(&[("x-forwarded-for", "10.0.0.1")])).is_err());
        assert!(reject_proxied(&headers(&[("forwarded", "for=10.0.0.1")])).is_err());
        assert!(reject_proxied(&headers(&[])).is_ok());
    }
}
