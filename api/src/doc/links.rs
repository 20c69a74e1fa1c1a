//! Where an answer leads: OpenAPI links from an operation's success to the
//! operations that take the id it returns (create → get, codes, pause,
//! resume; codes → job; redeem → get, release).

use serde_json::{json, Value};

/// (operation, success status, id field of its body, operations it leads to)
const LINKS: &[(&str, &str, &str, &[&str])] = &[
    (
        "create_campaign",
        "201",
        "campaign_id",
        &[
            "get_campaign",
            "pause_campaign",
            "resume_campaign",
            "generate_codes",
            "export_codes",
        ],
    ),
    ("generate_codes", "202", "job_id", &["get_job"]),
    (
        "redeem_coupon",
        "201",
        "redemption_id",
        &["get_redemption", "release_redemption"],
    ),
    (
        "redeem_coupon",
        "200",
        "redemption_id",
        &["get_redemption", "release_redemption"],
    ),
];

pub fn add(op: &mut Value, id: &str) {
    for (from, status, field, targets) in LINKS {
        if *from != id {
            continue;
        }
        let links: serde_json::Map<String, Value> = targets
            .iter()
            .map(|t| {
                (
                    (*t).to_owned(),
                    json!({"operationId": t,
                        "parameters": {*field: format!("$response.body#/{field}")}}),
                )
            })
            .collect();
        op["responses"][*status]["links"] = Value::Object(links);
    }
}
