//! JSON bodies: parsed from bytes with the failing field named (RFC 9457
//! `field`), whatever Content-Type the client sent.

use crate::error::ApiError;
use serde::de::DeserializeOwned;

/// Parse `bytes` as `T`, naming the field that failed.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde reports a missing field at its parent's path, an unknown or
        // ill-typed one at its own.
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::InvalidRequest {
                field: None,
                detail: format!("body is not valid JSON: {msg}"),
            };
        }
        let field = missing_field(&msg)
            .map(|f| {
                if path == "." {
                    f
                } else {
                    format!("{path}.{f}")
                }
            })
            .or_else(|| (path != ".").then_some(path));
        let detail = msg;
        ApiError::InvalidRequest { field, detail }
    })?;
    // One document and nothing after it (whitespace aside): text after the
    // document is a client bug or a smuggling attempt, never ignored.
    de.end().map_err(|e| ApiError::InvalidRequest {
        field: None,
        detail: format!("body must be exactly one JSON document: {e}"),
    })?;
    Ok(value)
}

/// serde names a missing field only in the message text.
fn missing_field(msg: &str) -> Option<String> {
    msg.strip_prefix("missing field `")?
        .split('`')
        .next()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        code: String,
        n: u32,
    }

    fn field_of(json: &str) -> Option<String> {
        match parse::<Body>(json.as_bytes()) {
            Err(ApiError::InvalidRequest { field, .. }) => field,
            other => panic!("expected invalid_request, got {other:?}"),
        }
    }

    #[test]
    fn names_the_missing_the_ill_typed_and_the_unknown_field() {
        assert_eq!(field_of(r#"{"n": 1}"#).as_deref(), Some("code"));
        assert_eq!(field_of(r#"{"code": "A", "n": "x"}"#).as_deref(), Some("n"));
        assert_eq!(
            field_of(r#"{"code": "A", "n": 1, "x": 2}"#).as_deref(),
            Some("x")
        );
        assert_eq!(field_of(r#"{"code": "#), None);
        assert_eq!(field_of(r#"{"code": "A", "n": 1}}}]]x"#), None);
        assert!(parse::<Body>(b"{\"code\": \"A\", \"n\": 1}\n ").is_ok());
    }
}
