//! From a typed code to its campaign and what redeeming it consumes.
//! The shape check runs first and costs no I/O (docs/architecture.md §4 step 3).

use super::Target;
use crate::domain::campaign::{Campaign, Kind};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::codes;
use coupon_core::Code;
use std::sync::Arc;

pub struct Resolved {
    pub campaign: Arc<Campaign>,
    pub target: Target,
    /// Generated codes only: already used.
    pub used: bool,
}

/// Shape check: a malformed code or a bad check character is unknown.
pub fn shape(raw: &str) -> ApiResult<Code> {
    Code::parse(raw).map_err(|_| ApiError::UnknownCode)
}

pub async fn resolve(state: &AppState, code: &Code) -> ApiResult<Resolved> {
    match code {
        Code::Vanity(v) => {
            let campaign = state
                .campaigns()
                .by_code(state.db(), v)
                .await?
                .ok_or(ApiError::UnknownCode)?;
            let target = match campaign.kind {
                Kind::Shared => Target::Shared,
                Kind::Pool => Target::PoolClaim,
                Kind::Unique => return Err(ApiError::UnknownCode),
            };
            Ok(Resolved {
                campaign,
                target,
                used: false,
            })
        }
        Code::Generated(g) => {
            if state.codes().rejects(g.as_str())
                && state.codes().still_current(&state.redis()).await
            {
                state.metrics().inc("coupon_bloom_rejects_total", &[]);
                return Err(ApiError::UnknownCode);
            }
            let row = codes::lookup(state.db(), g.as_str())
                .await?
                .ok_or(ApiError::UnknownCode)?;
            let campaign = state
                .campaigns()
                .by_id(state.db(), &row.campaign_id)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(format!("code of missing campaign {}", row.campaign_id))
                })?;
            let target = Target::Code {
                code: g.as_str().to_owned(),
                intended_user: row.intended_user,
            };
            Ok(Resolved {
                campaign,
                target,
                used: row.used,
            })
        }
    }
}

/// Campaign gate plus the unique-code owner check (docs/architecture.md §4 step 4).
pub fn gate(r: &Resolved, user: &str) -> ApiResult<()> {
    r.campaign.check_open(chrono::Utc::now(), user)?;
    if let Target::Code {
        intended_user: Some(owner),
        ..
    } = &r.target
    {
        if owner != user {
            return Err(ApiError::AudienceMismatch);
        }
    }
    Ok(())
}
