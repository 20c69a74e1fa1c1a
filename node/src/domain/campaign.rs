//! Campaigns: the create request, its validation, the stored row and the view.

use super::discount::{Discount, DiscountRules};
use super::text;
use crate::error::ApiError;
use chrono::{DateTime, SubsecRound, Utc};
use coupon_core::Code;

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_PER_USER_LIMIT: i32 = 1000;
pub const MAX_AUDIENCE_USERS: usize = 100_000;
/// Longest region id accepted in `home_region`.
pub const MAX_REGION_ID: usize = 64;
/// Largest `total_limit` of a shared campaign (docs/decisions.md): far above
/// any real promotion, well inside the seat column's range. Nothing the
/// node keeps grows with the cap, but a bound keeps counts and seat numbers
/// plainly in range and a typo (an extra zero or three) visible.
pub const MAX_TOTAL_LIMIT: i32 = 100_000_000;

pub use coupon_api::campaign::{Audience, CampaignView, CreateCampaign, Kind};

/// A create request that passed every check.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub kind: Kind,
    pub code: Option<Code>,
    pub discount: Discount,
    pub total_limit: Option<i32>,
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub home_region: Option<String>,
    pub release_on_refund: bool,
    pub audience: Option<Audience>,
}

/// The rules of a create request that serde cannot express.
pub trait ValidateCampaign {
    fn validate(self) -> Result<NewCampaign, ApiError>;
}

impl ValidateCampaign for CreateCampaign {
    fn validate(self) -> Result<NewCampaign, ApiError> {
        let name = self.name.trim().to_owned();
        text::display("name", &name, MAX_NAME_LEN)?;
        let code = match (self.kind, self.code) {
            (Kind::Shared, None) => {
                return Err(ApiError::invalid(
                    "code",
                    "a shared campaign needs its vanity code",
                ))
            }
            (Kind::Unique, Some(_)) => {
                return Err(ApiError::invalid(
                    "code",
                    "unique campaigns have no shared code",
                ))
            }
            (_, Some(raw)) => Some(
                Code::parse_vanity(&raw).map_err(|e| ApiError::invalid("code", e.to_string()))?,
            ),
            (_, None) => None,
        };
        self.discount.validate()?;
        let total_limit =
            match (self.kind, self.total_limit) {
                (Kind::Shared, None) => {
                    return Err(ApiError::invalid(
                        "total_limit",
                        "shared campaigns must state total_limit (null means unlimited)",
                    ))
                }
                (Kind::Shared, Some(limit)) => limit,
                (_, None | Some(None)) => None,
                (_, Some(Some(_))) => return Err(ApiError::invalid(
                    "total_limit",
                    "pool and unique campaigns are capped by their codes; total_limit must be null",
                )),
            };
        if matches!(total_limit, Some(n) if !(1..=MAX_TOTAL_LIMIT).contains(&n)) {
            return Err(ApiError::invalid(
                "total_limit",
                format!("total_limit must be 1 to {MAX_TOTAL_LIMIT}, or null for unlimited"),
            ));
        }
        if !(1..=MAX_PER_USER_LIMIT).contains(&self.per_user_limit) {
            return Err(ApiError::invalid(
                "per_user_limit",
                "per_user_limit must be 1 to 1000",
            ));
        }
        // Postgres keeps microseconds (and the driver truncates to them):
        // compare what will be stored, or two instants a nanosecond apart
        // pass here and break `campaigns_window_ordered` there.
        let starts_at = self.starts_at.trunc_subsecs(6);
        let ends_at = self.ends_at.trunc_subsecs(6);
        if starts_at >= ends_at {
            return Err(ApiError::invalid(
                "ends_at",
                "ends_at must be after starts_at",
            ));
        }
        if let Some(a) = &self.audience {
            if a.users.is_empty() || a.users.len() > MAX_AUDIENCE_USERS {
                return Err(ApiError::invalid("audience.users", "1 to 100000 user ids"));
            }
            text::user_ids("audience.users", &a.users)?;
        }
        if let Some(home) = &self.home_region {
            text::plain("home_region", home, MAX_REGION_ID)?;
        }
        Ok(NewCampaign {
            name,
            kind: self.kind,
            code,
            discount: self.discount,
            total_limit,
            per_user_limit: self.per_user_limit,
            starts_at,
            ends_at,
            home_region: self.home_region,
            release_on_refund: self.release_on_refund.unwrap_or(false),
            audience: self.audience,
        })
    }
}

/// A stored campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub campaign_id: String,
    pub slot: u16,
    pub name: String,
    pub kind: Kind,
    pub code: Option<String>,
    pub discount: Discount,
    pub total_limit: Option<i32>,
    pub per_user_limit: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub paused: bool,
    pub release_on_refund: bool,
    pub audience: Option<Audience>,
}

impl Campaign {
    /// Campaign-level gate of the redeem and validate paths (docs/architecture.md §4.4).
    pub fn check_open(&self, now: DateTime<Utc>, user: &str) -> Result<(), ApiError> {
        if self.paused {
            return Err(ApiError::Paused);
        }
        if now < self.starts_at {
            return Err(ApiError::NotStarted);
        }
        if now >= self.ends_at {
            return Err(ApiError::Expired);
        }
        if let Some(a) = &self.audience {
            if !a.users.iter().any(|u| u == user) {
                return Err(ApiError::AudienceMismatch);
            }
        }
        Ok(())
    }
}

/// The view of a stored campaign, with its counts.
pub fn campaign_view(c: Campaign, region: &str, redeemed: i64, codes: i64) -> CampaignView {
    let remaining = match c.kind {
        Kind::Shared => c.total_limit.map(|t| (t as i64 - redeemed).max(0)),
        Kind::Pool | Kind::Unique => Some((codes - redeemed).max(0)),
    };
    CampaignView {
        campaign_id: c.campaign_id,
        name: c.name,
        kind: c.kind,
        code: c.code,
        discount: c.discount,
        total_limit: c.total_limit,
        per_user_limit: c.per_user_limit,
        starts_at: c.starts_at,
        ends_at: c.ends_at,
        home_region: region.to_owned(),
        release_on_refund: c.release_on_refund,
        audience: c.audience,
        status: if c.paused { "paused" } else { "active" }.to_owned(),
        redeemed,
        remaining,
        codes,
        slot: c.slot,
    }
}
