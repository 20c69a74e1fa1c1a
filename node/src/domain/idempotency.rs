//! Idempotency keys and the request fingerprint they are bound to.

use crate::error::ApiError;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
pub const MAX_KEY_LEN: usize = 255;

/// 1–255 visible ASCII characters, as the client sent it (never rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn from_headers(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
        let raw = headers.get(HEADER).ok_or(ApiError::IdempotencyKeyMissing)?;
        let s = raw.to_str().map_err(|_| ApiError::IdempotencyKeyMissing)?;
        IdempotencyKey::parse(s)
    }

    pub fn parse(s: &str) -> Result<IdempotencyKey, ApiError> {
        if s.is_empty() {
            return Err(ApiError::IdempotencyKeyMissing);
        }
        if s.len() > MAX_KEY_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            ));
        }
        Ok(IdempotencyKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Advisory-lock key for "this caller's key is in flight" in a campaign
    /// (keys are scoped to the caller and the campaign).
    pub fn lock_key(&self, campaign_id: &str, user: &str) -> i64 {
        let d = Sha256::new()
            .chain_update(campaign_id.as_bytes())
            .chain_update([0u8])
            .chain_update(user.as_bytes())
            .chain_update([0u8])
            .chain_update(self.0.as_bytes())
            .finalize();
        i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
    }
}

/// Extractor form: runs before the body is read, so a missing key is named
/// first whatever else is wrong with the request.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        IdempotencyKey::from_headers(&parts.headers)
    }
}

/// Fingerprint of the parts of a redeem request that define it: the code as
/// normalized and the order id. Same key + other fingerprint → 422.
pub fn request_hash(normalized_code: &str, order_id: &str) -> String {
    let d = Sha256::new()
        .chain_update(normalized_code.as_bytes())
        .chain_update([0u8])
        .chain_update(order_id.as_bytes())
        .finalize();
    coupon_core::hex::encode(&d)
}
