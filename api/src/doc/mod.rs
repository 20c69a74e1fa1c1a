//! The OpenAPI document nodes and routers serve at `GET /openapi.json`.
//!
//! The operations and bodies come from the derive ([`paths`]); the rest is
//! added to the JSON from tables kept next to each other here, so that one
//! place says, for every operation, every status and reason code it can
//! answer ([`errors`]), who may call it, and where its answer leads
//! ([`links`]).

mod errors;
mod links;
pub mod paths;
pub mod schemas;

use crate::campaign::{Audience, Kind};
use crate::discount::Discount;
use crate::problem::Problem;
use schemas::{CreateCampaignRequest, GenerateCodesRequest};
use serde_json::{json, Value};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Coupon node",
        description = "Regional coupon node: campaigns, codes, validate, redeem, release, events."
    ),
    paths(
        paths::create_campaign,
        paths::get_campaign,
        paths::pause_campaign,
        paths::resume_campaign,
        paths::reconcile_campaign,
        paths::generate_codes,
        paths::export_codes,
        paths::get_job,
        paths::validate_coupon,
        paths::redeem_coupon,
        paths::get_redemption,
        paths::release_redemption,
        paths::events_feed,
    ),
    components(schemas(
        CreateCampaignRequest,
        GenerateCodesRequest,
        Problem,
        Discount,
        Kind,
        Audience
    ))
)]
struct NodeApi;

#[derive(OpenApi)]
#[openapi(paths(paths::router_readyz, paths::cluster_map))]
struct RouterOps;

/// Which server the document describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Node,
    Router,
}

/// The node's document.
pub fn node_document() -> Value {
    finish(NodeApi::openapi(), Server::Node)
}

/// The node's document as served by the node of `region`: `home_region`
/// can only be its own (other regions' campaigns are created through a
/// router).
pub fn node_document_for(region: &str) -> Value {
    let mut v = node_document();
    set_regions(&mut v, &[region.to_owned()], false);
    v
}

/// The router's document as served by a router that knows `regions`.
pub fn router_document_for(regions: &[String]) -> Value {
    let mut v = router_document();
    if !regions.is_empty() {
        set_regions(&mut v, regions, true);
    }
    v
}

/// Narrows every region field and parameter to the regions that exist.
fn set_regions(v: &mut Value, regions: &[String], feed: bool) {
    let schemas = &mut v["components"]["schemas"]["CreateCampaignRequest"]["oneOf"];
    for shape in schemas.as_array_mut().into_iter().flatten() {
        shape["properties"]["home_region"]["enum"] = json!(regions);
    }
    if feed {
        for p in v["paths"]["/v1/events"]["get"]["parameters"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if p["name"] == "region" {
                p["schema"]["enum"] = json!(regions);
            }
        }
    }
}

/// The router's document: the node's API as routed, plus the router's own
/// operations and the `region` parameter of the events feed.
pub fn router_document() -> Value {
    let mut doc = NodeApi::openapi();
    doc.merge(RouterOps::openapi());
    doc.info.title = "Coupon router".into();
    doc.info.description = Some(
        "Routes each request to the node of the region that owns its slot; answers 503 \
         owner_unreachable when that region cannot be reached."
            .into(),
    );
    let mut v = finish(doc, Server::Router);
    v["paths"]["/v1/events"]["get"]["parameters"]
        .as_array_mut()
        .expect("events has parameters")
        .push(json!({"name": "region", "in": "query", "required": false,
            "description": "the region whose feed to read (default: this router's region)",
            "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"}}));
    v
}

fn finish(doc: utoipa::openapi::OpenApi, server: Server) -> Value {
    let mut v = serde_json::to_value(doc).expect("document serializes");
    let schemas = &mut v["components"]["schemas"];
    schemas["CreateCampaignRequest"] = CreateCampaignRequest::json();
    schemas["GenerateCodesRequest"] = GenerateCodesRequest::json();
    // A discount is exactly one of its variants: no field of another
    // variant, nothing unknown (`{"type": "free_shipping", "percent": 5}`).
    for variant in schemas["Discount"]["oneOf"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        variant["additionalProperties"] = json!(false);
    }
    v["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "User tokens (`sub` = user id, role `user`) and admin tokens (role `admin`)"}
    });
    let paths = v["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for op in item.as_object_mut().expect("path item").values_mut() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            if path.starts_with("/v1/") && path != "/v1/cluster/map" {
                op["security"] = json!([{"bearer": []}]);
            }
            errors::add(op, &id, server);
            links::add(op, &id);
        }
    }
    v
}

#[cfg(test)]
mod tests;
