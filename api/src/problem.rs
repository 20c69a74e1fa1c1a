//! RFC 9457 problem details, as every error answer carries them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every reason code of the contract.
pub const REASON_CODES: &[&str] = &[
    "invalid_request",
    "idempotency_key_missing",
    "unauthorized",
    "forbidden",
    "audience_mismatch",
    "unknown_code",
    "not_found",
    "already_redeemed",
    "idempotency_in_flight",
    "release_not_allowed",
    "exhausted",
    "expired",
    "not_started",
    "paused",
    "misdirected",
    "idempotency_key_reused",
    "payload_too_large",
    "rate_limited",
    "owner_unreachable",
    "unavailable",
    "method_not_allowed",
    "internal",
];

/// `application/problem+json` body of every error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    pub detail: String,
    /// The reason code (see the contract's table).
    pub code: String,
    /// 400 `invalid_request`: the field (or header, or query parameter) at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 421: the slot, and the owner and epoch this node knows (may be null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable)]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable)]
    pub epoch: Option<i64>,
    /// 503 `owner_unreachable` from a router: the region that did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}
