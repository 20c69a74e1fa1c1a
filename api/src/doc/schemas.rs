//! Request schemas whose rules depend on another field (the campaign's
//! `kind`), written out as JSON Schema so that every body the document
//! calls valid is one the node accepts: one shape per kind, each with its
//! own required and forbidden fields.
//!
//! One rule JSON Schema cannot state: `starts_at` must be before `ends_at`
//! (said in the description; the node answers 400 naming `ends_at`).

use crate::limits::*;
use serde_json::{json, Value};
use std::borrow::Cow;
use utoipa::openapi::{ObjectBuilder, RefOr, Schema};

/// Placeholder the derive registers; [`super`] puts the JSON below in its place.
fn placeholder() -> RefOr<Schema> {
    ObjectBuilder::new().into()
}

/// A user id: 1–255 characters, no control or invisible characters.
pub fn user_id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_USER_ID_LEN, "pattern": DISPLAY_PATTERN})
}

fn campaign_shape(kind: &str, code: Option<Value>, total_limit: Value) -> Value {
    let mut props = json!({
        "kind": {"type": "string", "enum": [kind]},
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN, "pattern": NAME_PATTERN},
        "discount": {"$ref": "#/components/schemas/Discount"},
        "per_user_limit": {"type": "integer", "format": "int32", "minimum": 1, "maximum": MAX_PER_USER_LIMIT},
        "starts_at": {"type": "string", "format": "date-time",
            "description": "RFC 3339; before `ends_at`"},
        "ends_at": {"type": "string", "format": "date-time",
            "description": "RFC 3339; after `starts_at`"},
        "home_region": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$",
            "description": "region that should own the campaign (default: the one taking the request)"},
        "release_on_refund": {"type": "boolean", "default": false},
        "audience": {"type": "object", "additionalProperties": false, "required": ["users"],
            "properties": {"users": {"type": "array", "minItems": 1, "maxItems": MAX_AUDIENCE_USERS,
                "uniqueItems": true, "items": user_id()}}},
        "total_limit": total_limit,
    });
    let mut required = vec![
        "kind",
        "name",
        "discount",
        "per_user_limit",
        "starts_at",
        "ends_at",
    ];
    if let Some(code) = code {
        props["code"] = code;
    }
    if kind == "shared" {
        required.extend(["code", "total_limit"]);
    }
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": props,
        "title": format!("{kind} campaign")})
}

/// `POST /v1/campaigns`: a shared, unique or pool campaign.
pub struct CreateCampaignRequest;

impl utoipa::PartialSchema for CreateCampaignRequest {
    fn schema() -> RefOr<Schema> {
        placeholder()
    }
}

impl CreateCampaignRequest {
    pub fn json() -> Value {
        let vanity = json!({"type": "string", "pattern": VANITY_PATTERN,
            "description": "the vanity code: letters and digits, not 13 symbols long"});
        let none = json!({"type": "null"});
        json!({
            "description": "A campaign: `shared` (one vanity code, `total_limit` uses or null for unlimited), \
                `pool` (generated single-use codes, optionally handed out by a claim code) or \
                `unique` (one generated code per intended user). `starts_at` < `ends_at`.",
            "oneOf": [
                campaign_shape("shared", Some(vanity.clone()), json!({"type": ["integer", "null"],
                    "format": "int32", "minimum": 1, "maximum": MAX_TOTAL_LIMIT})),
                campaign_shape("pool", Some(vanity), none.clone()),
                campaign_shape("unique", None, none),
            ],
            "discriminator": {"propertyName": "kind"},
        })
    }
}

impl utoipa::ToSchema for CreateCampaignRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CreateCampaignRequest")
    }
}

/// `POST /v1/campaigns/{id}/codes`: a count (pool) or intended users (unique).
pub struct GenerateCodesRequest;

impl utoipa::PartialSchema for GenerateCodesRequest {
    fn schema() -> RefOr<Schema> {
        placeholder()
    }
}

impl GenerateCodesRequest {
    pub fn json() -> Value {
        json!({
            "description": "`count` for a pool campaign, `intended_users` for a unique one",
            "oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["count"], "title": "pool codes",
                 "properties": {"count": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_POOL_COUNT}}},
                {"type": "object", "additionalProperties": false, "required": ["intended_users"], "title": "unique codes",
                 "properties": {"intended_users": {"type": "array", "minItems": 1, "maxItems": MAX_INTENDED_USERS,
                    "uniqueItems": true, "items": user_id()}}},
            ],
        })
    }
}

impl utoipa::ToSchema for GenerateCodesRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("GenerateCodesRequest")
    }
}
