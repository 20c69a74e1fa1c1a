//! The operations of the public API: path, parameters, request body and
//! success answer of each. Error answers, security and links are added by
//! [`super::errors`] and [`super::links`] from one table each.
//!
//! The functions are markers the OpenAPI derive hangs on; the node's
//! handlers of the same routes implement them.

#![allow(dead_code)]

use super::schemas::{CreateCampaignRequest, GenerateCodesRequest};
use crate::campaign::CampaignView;
use crate::codes::{ExportPage, ExportQuery, JobAccepted, JobView};
use crate::coupons::{RedeemBody, Redemption, ReleaseBody, ValidateBody, Validation};
use crate::events::{EventPage, FeedQuery};

/// Create a campaign. Its home slot is the vanity code's slot, or a slot
/// of `home_region` (default: the region that takes the request).
#[utoipa::path(post, path = "/v1/campaigns", operation_id = "create_campaign", tag = "campaigns",
    request_body = CreateCampaignRequest,
    responses((status = 201, description = "the campaign", body = CampaignView)))]
pub fn create_campaign() {}

#[utoipa::path(get, path = "/v1/campaigns/{campaign_id}", operation_id = "get_campaign", tag = "campaigns",
    params(("campaign_id" = String, Path, pattern = r"^cmp_[2-9A-HJ-NP-Z]{15}$")),
    responses((status = 200, description = "the campaign", body = CampaignView)))]
pub fn get_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/pause", operation_id = "pause_campaign", tag = "campaigns",
    params(("campaign_id" = String, Path, pattern = r"^cmp_[2-9A-HJ-NP-Z]{15}$")),
    responses((status = 200, description = "the campaign, paused", body = CampaignView)))]
pub fn pause_campaign() {}

#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/resume", operation_id = "resume_campaign", tag = "campaigns",
    params(("campaign_id" = String, Path, pattern = r"^cmp_[2-9A-HJ-NP-Z]{15}$")),
    responses((status = 200, description = "the campaign, active", body = CampaignView)))]
pub fn resume_campaign() {}

/// Compare the campaign's Redis state with Postgres now, give back leaked
/// claims older than the grace period, and rebuild on drift (operators).
#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/reconcile", operation_id = "reconcile_campaign", tag = "campaigns",
    params(("campaign_id" = String, Path, pattern = r"^cmp_[2-9A-HJ-NP-Z]{15}$")),
    responses((status = 200, description = "the reconcile report")))]
pub fn reconcile_campaign() {}

/// Start a code generation job: `count` codes for a pool campaign, one
/// code per intended user for a unique campaign.
#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/codes", operation_id = "generate_codes", tag = "codes",
    params(("campaign_id" = String, Path, pattern = r"^cmp_[2-9A-HJ-NP-Z]{15}$")),
    request_body = GenerateCodesRequest,
    responses((status = 202, description = "the job was started", body = JobAccepted)))]
pub fn generate_codes() {}

/// A page of the campaign's codes, in creation order.
#[utoipa::path(get, path = "/v1/campaigns/{campaign_id}/codes", operation_id = "export_codes", tag = "codes",
    params(("campaign_id" = String, Path, pattern = r"^cmp_[2-9A-HJ-NP-Z]{15}$"), ExportQuery),
    responses((status = 200, description = "one page of codes", body = ExportPage)))]
pub fn export_codes() {}

#[utoipa::path(get, path = "/v1/jobs/{job_id}", operation_id = "get_job", tag = "codes",
    params(("job_id" = String, Path, pattern = r"^job_[2-9A-HJ-NP-Z]{15}$")),
    responses((status = 200, description = "the job", body = JobView)))]
pub fn get_job() {}

/// Whether the code is usable by this user now. Consumes nothing.
#[utoipa::path(post, path = "/v1/coupons/validate", operation_id = "validate_coupon", tag = "coupons",
    request_body = ValidateBody,
    responses((status = 200, description = "the code is usable", body = Validation)))]
pub fn validate_coupon() {}

/// Redeem a code for an order, once per Idempotency-Key.
#[utoipa::path(post, path = "/v1/coupons/redeem", operation_id = "redeem_coupon", tag = "coupons",
    params(("Idempotency-Key" = String, Header, pattern = r"^[!-~]{1,255}$",
        description = "1–255 visible ASCII characters; a retry reuses it")),
    request_body = RedeemBody,
    responses(
        (status = 201, description = "redeemed", body = Redemption),
        (status = 200, description = "a replay of the original success (header Idempotent-Replayed: true)",
            body = Redemption,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
    ))]
pub fn redeem_coupon() {}

/// A redemption (its user or an admin).
#[utoipa::path(get, path = "/v1/redemptions/{redemption_id}", operation_id = "get_redemption", tag = "coupons",
    params(("redemption_id" = String, Path, pattern = r"^red_[2-9A-HJ-NP-Z]{15}$")),
    responses((status = 200, description = "the redemption", body = Redemption)))]
pub fn get_redemption() {}

/// Give the use back (refund), if the campaign allows it. Idempotent.
#[utoipa::path(post, path = "/v1/redemptions/{redemption_id}/release", operation_id = "release_redemption", tag = "coupons",
    params(("redemption_id" = String, Path, pattern = r"^red_[2-9A-HJ-NP-Z]{15}$")),
    request_body = ReleaseBody,
    responses((status = 200, description = "the redemption with `released_at`", body = Redemption)))]
pub fn release_redemption() {}

/// The outbox feed of one region (admin).
#[utoipa::path(get, path = "/v1/events", operation_id = "events_feed", tag = "events",
    params(FeedQuery),
    responses((status = 200, description = "events after the cursor", body = EventPage)))]
pub fn events_feed() {}

/// Ready when the map is loaded and every region's node accepts our
/// credentials; names what is not (routers).
#[utoipa::path(get, path = "/readyz", operation_id = "router_readyz", tag = "ops",
    responses((status = 200, description = "ready"),
        (status = 503, description = "names what is failing")))]
pub fn router_readyz() {}

/// The ownership map this router routes by (routers).
#[utoipa::path(get, path = "/v1/cluster/map", operation_id = "cluster_map", tag = "ops",
    responses((status = 200, description = "{version, regions, slots}"),
        (status = 503, description = "the map is not loaded yet")))]
pub fn cluster_map() {}
