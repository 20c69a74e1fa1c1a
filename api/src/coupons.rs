//! Validate, redeem and release on the wire.

use crate::discount::Discount;
use crate::time::utc;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `code` of a validate or redeem body, borrowed from it where it has
/// no escapes: what a router and the owner's guard read to find the slot,
/// on every routed request, without building a JSON tree. `None` for a
/// body that is not JSON or has no string `code`; the owning node then
/// answers it with the failing field named.
pub fn code_of(body: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(Deserialize)]
    struct CodeField<'a> {
        #[serde(borrow, default)]
        code: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<CodeField>(body).ok()?.code
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateBody {
    /// The code as the shopper typed it (case, spaces and dashes ignored).
    #[schema(pattern = r"^[A-Za-z0-9]{1,64}$")]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    #[schema(pattern = r"^[A-Za-z0-9]{1,64}$")]
    pub code: String,
    /// The storefront's order, 1–255 characters without control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub order_id: String,
}

/// What validate answers: the code is usable now by this user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub campaign_id: String,
    pub code: String,
    pub discount: Discount,
    #[serde(with = "utc")]
    #[schema(format = DateTime)]
    pub ends_at: DateTime<Utc>,
    /// Uses left in the campaign; null when unlimited.
    pub remaining: Option<i64>,
}

/// A redemption as responses show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Redemption {
    pub redemption_id: String,
    pub campaign_id: String,
    /// The code as the user typed it (normalized).
    pub code: String,
    /// Pool claim codes: the pool code handed out. Otherwise absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_code: Option<String>,
    pub user_id: String,
    pub order_id: String,
    /// Frozen snapshot of the discount at redeem time.
    pub discount: Discount,
    #[serde(with = "utc")]
    #[schema(format = DateTime)]
    pub redeemed_at: DateTime<Utc>,
    #[serde(with = "utc::option", skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub released_at: Option<DateTime<Utc>>,
    /// The request fingerprint the Idempotency-Key is bound to (node only;
    /// never on the wire).
    #[serde(skip)]
    #[schema(ignore)]
    pub request_hash: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// Why the use is given back, e.g. `refund`.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}
