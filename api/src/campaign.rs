//! Campaigns on the wire: the create request as the node parses it and the
//! campaign as responses show it.

use crate::discount::Discount;
use crate::time::utc;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Shared,
    Unique,
    Pool,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Shared => "shared",
            Kind::Unique => "unique",
            Kind::Pool => "pool",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "shared" => Some(Kind::Shared),
            "unique" => Some(Kind::Unique),
            "pool" => Some(Kind::Pool),
            _ => None,
        }
    }
}

/// Users allowed to use the campaign (absent: everyone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[schema(min_items = 1, max_items = 100_000)]
    pub users: Vec<String>,
}

/// `POST /v1/campaigns` body, as sent. Its document form, one shape per
/// kind, is [`crate::doc::schemas::CreateCampaignRequest`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    pub name: String,
    pub kind: Kind,
    /// Shared: the vanity code (required). Pool: optional claim code that
    /// hands out the next unused pool code. Unique: not allowed.
    #[serde(default)]
    pub code: Option<String>,
    pub discount: Discount,
    /// Shared only and required there (null = unlimited).
    #[serde(default, deserialize_with = "present")]
    pub total_limit: Option<Option<i32>>,
    #[serde(deserialize_with = "crate::int::i32")]
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub home_region: Option<String>,
    #[serde(default)]
    pub release_on_refund: Option<bool>,
    #[serde(default)]
    pub audience: Option<Audience>,
}

/// Distinguishes `"total_limit": null` (present) from a missing key.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    crate::int::option_i32(d).map(Some)
}

/// The campaign as responses show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub campaign_id: String,
    pub name: String,
    pub kind: Kind,
    pub code: Option<String>,
    pub discount: Discount,
    pub total_limit: Option<i32>,
    pub per_user_limit: i32,
    #[serde(with = "utc")]
    #[schema(format = DateTime)]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "utc")]
    #[schema(format = DateTime)]
    pub ends_at: DateTime<Utc>,
    pub home_region: String,
    pub release_on_refund: bool,
    pub audience: Option<Audience>,
    /// `active` | `paused`.
    #[schema(pattern = "^(active|paused)$")]
    pub status: String,
    /// Active (unreleased) redemptions.
    pub redeemed: i64,
    /// Uses left; null when unlimited.
    pub remaining: Option<i64>,
    /// Generated codes (pool and unique campaigns).
    pub codes: i64,
    pub slot: u16,
}
