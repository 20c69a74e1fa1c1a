//! The served documents state what the handlers enforce and answer.

use super::{node_document, router_document};
use serde_json::Value;

fn op<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let o = &doc["paths"][path][method];
    assert!(o.is_object(), "{method} {path} is documented");
    o
}

fn param<'a>(op: &'a Value, name: &str) -> Option<&'a Value> {
    op["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

#[test]
fn query_parameters_are_query_parameters_with_their_bounds() {
    let doc = node_document();
    let export = op(&doc, "/v1/campaigns/{campaign_id}/codes", "get");
    let limit = param(export, "limit").expect("limit");
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["required"], false);
    assert_eq!(limit["schema"]["maximum"], 10000);
    assert_eq!(param(export, "after").expect("after")["in"], "query");
    let feed = op(&doc, "/v1/events", "get");
    assert_eq!(param(feed, "limit").unwrap()["schema"]["maximum"], 1000);
    assert!(
        param(feed, "region").is_none(),
        "a node serves only its own feed"
    );
    let routed = router_document();
    let feed = op(&routed, "/v1/events", "get");
    assert_eq!(param(feed, "region").expect("router region")["in"], "query");
}

#[test]
fn every_api_operation_needs_a_bearer_token_and_lists_its_errors() {
    for doc in [node_document(), router_document()] {
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/v1/") || path == "/v1/cluster/map" {
                continue;
            }
            for (method, o) in item.as_object().unwrap() {
                assert_eq!(
                    o["security"][0]["bearer"],
                    serde_json::json!([]),
                    "{method} {path}"
                );
                for status in ["401", "403", "503"] {
                    let r = &o["responses"][status];
                    assert!(
                        r["content"]["application/problem+json"].is_object(),
                        "{method} {path} documents its {status} problem"
                    );
                }
            }
        }
    }
    let doc = node_document();
    let redeem = op(&doc, "/v1/coupons/redeem", "post");
    for (status, code) in [
        ("400", "idempotency_key_missing"),
        ("409", "idempotency_in_flight"),
        ("410", "exhausted"),
        ("422", "idempotency_key_reused"),
        ("429", "rate_limited"),
        ("421", "misdirected"),
    ] {
        let d = redeem["responses"][status]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(d.contains(code), "redeem {status} names {code}: {d}");
    }
    assert!(redeem["responses"]["429"]["headers"]["Retry-After"].is_object());
    let routed = router_document();
    let d = op(&routed, "/v1/coupons/redeem", "post")["responses"]["503"]["description"].clone();
    assert!(d.as_str().unwrap().contains("owner_unreachable"), "{d}");
}

#[test]
fn the_create_body_states_each_kinds_fields_and_bounds() {
    let doc = node_document();
    let s = &doc["components"]["schemas"]["CreateCampaignRequest"];
    let shapes = s["oneOf"].as_array().expect("one shape per kind");
    assert_eq!(shapes.len(), 3);
    let shared = &shapes[0];
    assert_eq!(shared["properties"]["kind"]["enum"][0], "shared");
    let required: Vec<&str> = shared["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"code") && required.contains(&"total_limit"),
        "{required:?}"
    );
    assert_eq!(shared["properties"]["name"]["maxLength"], 200);
    assert_eq!(shared["properties"]["per_user_limit"]["maximum"], 1000);
    assert_eq!(
        shapes[2]["properties"].get("code"),
        None,
        "unique campaigns have no code"
    );
    let discount = &doc["components"]["schemas"]["Discount"];
    for variant in discount["oneOf"]
        .as_array()
        .expect("one schema per variant")
    {
        assert_eq!(variant["additionalProperties"], false, "{variant}");
    }
    let text = discount.to_string();
    assert!(
        text.contains("\"maximum\":100") && text.contains("^[A-Z]{3}$"),
        "{text}"
    );
}

#[test]
fn answers_link_to_the_operations_that_take_their_ids() {
    let doc = node_document();
    let create = op(&doc, "/v1/campaigns", "post");
    for target in [
        "get_campaign",
        "pause_campaign",
        "generate_codes",
        "export_codes",
    ] {
        let l = &create["responses"]["201"]["links"][target];
        assert_eq!(l["operationId"], target);
        assert_eq!(
            l["parameters"]["campaign_id"],
            "$response.body#/campaign_id"
        );
    }
    let redeem = op(&doc, "/v1/coupons/redeem", "post");
    assert_eq!(
        redeem["responses"]["201"]["links"]["release_redemption"]["parameters"]["redemption_id"],
        "$response.body#/redemption_id"
    );
}

#[test]
fn served_documents_name_the_regions_that_exist() {
    let doc = super::node_document_for("eu");
    let shapes = doc["components"]["schemas"]["CreateCampaignRequest"]["oneOf"].clone();
    for s in shapes.as_array().unwrap() {
        assert_eq!(
            s["properties"]["home_region"]["enum"],
            serde_json::json!(["eu"])
        );
    }
    let regions = vec!["us".to_owned(), "eu".to_owned()];
    let routed = super::router_document_for(&regions);
    let feed = op(&routed, "/v1/events", "get");
    assert_eq!(
        param(feed, "region").unwrap()["schema"]["enum"],
        serde_json::json!(["us", "eu"])
    );
}
