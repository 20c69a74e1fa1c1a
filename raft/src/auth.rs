//! Member-to-member auth (short-lived HS256 JWTs from the shared cluster secret) and the
//! admin bearer token check.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::types::NodeId;

/// Lifetime of a member token. Tokens are minted per RPC, so this only bounds replay.
pub const MEMBER_TOKEN_TTL_SECS: u64 = 60;
/// Audience and issuer of member tokens.
const AUDIENCE: &str = "coupon-raft";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    /// The sending member's id.
    sub: String,
    iat: u64,
    exp: u64,
}

/// Why a member token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Signs and verifies member tokens with the shared cluster secret.
#[derive(Clone)]
pub struct MemberAuth {
    node_id: NodeId,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl MemberAuth {
    pub fn new(node_id: NodeId, secret: &Secret) -> Self {
        let raw = secret.expose().as_bytes();
        Self {
            node_id,
            encoding: EncodingKey::from_secret(raw),
            decoding: DecodingKey::from_secret(raw),
        }
    }

    /// A fresh token for one outbound RPC.
    pub fn mint(&self) -> String {
        let iat = now();
        let claims = Claims {
            iss: AUDIENCE.into(),
            aud: AUDIENCE.into(),
            sub: self.node_id.to_string(),
            iat,
            exp: iat + MEMBER_TOKEN_TTL_SECS,
        };
        // HS256 encoding of a plain struct cannot fail.
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies an `Authorization` header value; returns the sender's member id.
    pub fn verify(&self, header: Option<&str>) -> Result<String, AuthError> {
        let token = bearer(header).ok_or(AuthError::Missing)?;
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&[AUDIENCE]);
        v.leeway = 5;
        Ok(decode::<Claims>(token, &self.decoding, &v)?.claims.sub)
    }
}

/// The token of a `Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Constant-time check of the admin bearer token.
pub fn admin_ok(expected: &Secret, header: Option<&str>) -> bool {
    let Some(got) = bearer(header) else {
        return false;
    };
    let (a, b) = (expected.expose().as_bytes(), got.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_from_the_same_secret_verifies_and_another_secret_does_not() {
        let a = MemberAuth::new(1, &Secret::new("s".repeat(20)));
        let b = MemberAuth::new(2, &Secret::new("t".repeat(20)));
        let tok = format!("Bearer {}", a.mint());
        assert_eq!(a.verify(Some(&tok)).unwrap(), "1");
        assert!(b.verify(Some(&tok)).is_err());
        assert!(a.verify(None).is_err());
        assert!(a.verify(Some("Bearer junk")).is_err());
    }

    #[test]
    fn admin_token_must_match_exactly() {
        let s = Secret::new("admin-token-0123456789");
        assert!(admin_ok(&s, Some("Bearer admin-token-0123456789")));
        assert!(!admin_ok(&s, Some("Bearer admin-token-012345678")));
        assert!(!admin_ok(&s, None));
    }
}
