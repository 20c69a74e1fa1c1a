//! Every error answer of every operation, with its reason codes: the table
//! the document's `responses` are written from. Each entry is what the
//! node's handler (or, for a router, the router itself) can answer.

use super::Server;
use serde_json::{json, Value};

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Nobody,
    Admin,
    User,
    Either,
}

/// (caller, has a body or query to check, names a slotted id)
fn shape(op: &str) -> (Caller, bool, bool) {
    match op {
        "create_campaign" => (Caller::Admin, true, false),
        "get_campaign" | "pause_campaign" | "resume_campaign" | "reconcile_campaign"
        | "get_job" => (Caller::Admin, false, true),
        "generate_codes" | "export_codes" => (Caller::Admin, true, true),
        "validate_coupon" | "redeem_coupon" => (Caller::User, true, false),
        "get_redemption" => (Caller::Either, false, true),
        "release_redemption" => (Caller::Either, true, true),
        "events_feed" => (Caller::Admin, true, false),
        _ => (Caller::Nobody, false, false),
    }
}

/// `(status, reason codes)` an operation can answer besides success.
pub fn table(op: &str, server: Server) -> Vec<(u16, Vec<&'static str>)> {
    let (caller, checked, slotted) = shape(op);
    if caller == Caller::Nobody {
        return vec![];
    }
    let mut out: Vec<(u16, Vec<&'static str>)> = Vec::new();
    let mut add =
        |status: u16, codes: &[&'static str]| match out.iter_mut().find(|(s, _)| *s == status) {
            Some((_, c)) => c.extend(codes),
            None => out.push((status, codes.to_vec())),
        };
    if checked {
        add(400, &["invalid_request"]);
    }
    add(401, &["unauthorized"]);
    add(403, &["forbidden"]);
    if slotted {
        add(404, &["not_found"]);
    }
    match op {
        "create_campaign" | "generate_codes" | "release_redemption" => {
            add(413, &["payload_too_large"])
        }
        "validate_coupon" | "redeem_coupon" => {
            add(403, &["audience_mismatch"]);
            add(404, &["unknown_code"]);
            add(409, &["already_redeemed"]);
            add(410, &["exhausted", "expired", "not_started", "paused"]);
            add(413, &["payload_too_large"]);
            add(429, &["rate_limited"]);
        }
        _ => {}
    }
    if op == "redeem_coupon" {
        add(400, &["idempotency_key_missing"]);
        add(409, &["idempotency_in_flight"]);
        add(422, &["idempotency_key_reused"]);
    }
    if op == "release_redemption" {
        add(409, &["release_not_allowed"]);
    }
    match server {
        // A node that does not own the slot (or, on create, the vanity
        // code's slot) says who does; routers act on it.
        Server::Node if slotted || op == "create_campaign" || op.ends_with("_coupon") => {
            add(421, &["misdirected"])
        }
        // Routers answer malformed codes and ids themselves, and 503 when
        // the owning region does not answer.
        Server::Router => {
            if op.ends_with("_coupon") {
                add(400, &["invalid_request"]);
                add(404, &["unknown_code"]);
                add(413, &["payload_too_large"]);
            }
            add(503, &["owner_unreachable"]);
        }
        _ => {}
    }
    add(503, &["unavailable"]);
    out.sort_by_key(|(s, _)| *s);
    for (_, codes) in &mut out {
        codes.dedup();
    }
    out
}

/// Writes the table into the operation's `responses`.
pub fn add(op: &mut Value, id: &str, server: Server) {
    for (status, codes) in table(id, server) {
        let mut resp = json!({
            "description": format!("problem+json; code: {}", codes.join(", ")),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        });
        if status == 429 || status == 503 {
            resp["headers"] = json!({"Retry-After": {"required": true,
                "description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}}});
        }
        op["responses"][status.to_string()] = resp;
    }
}
