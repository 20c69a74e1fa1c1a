//! Every metric nodes and routers export: name, type and help text. Alert
//! rules and dashboards are written against these names; keep them stable.

/// How a metric is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Milliseconds, fixed buckets ([`super::BUCKETS_MS`]).
    Histogram,
}

/// `(name, kind, help)` of every exported metric.
pub const METRICS: &[(&str, Kind, &str)] = &[
    // Node.
    (
        "coupon_http_requests_total",
        Kind::Counter,
        "Requests answered by the node, by route, status and reason code.",
    ),
    (
        "coupon_http_request_ms",
        Kind::Histogram,
        "Time the node took to answer a request, in milliseconds, by route.",
    ),
    (
        "coupon_not_owner_refusals_total",
        Kind::Counter,
        "Requests refused (421, or 503 while warming) because this node does not own the slot now.",
    ),
    (
        "coupon_lease_refusals_total",
        Kind::Counter,
        "Requests refused (503) because this node does not hold its region's lease (cut off from raft, paused, or taken over).",
    ),
    (
        "coupon_region_lease_remaining_ms",
        Kind::Gauge,
        "Milliseconds of region lease this node has left (negative: lapsed, the node serves nothing).",
    ),
    (
        "coupon_redeem_outcome_unknown_total",
        Kind::Counter,
        "Redeems answered 503 because their commit outlived the commit wait (synchronous standby not answering).",
    ),
    (
        "coupon_sync_replication_degraded",
        Kind::Gauge,
        "1 while the region's primary runs without a synchronous standby (commits not replicated before the answer).",
    ),
    (
        "coupon_sync_standbys",
        Kind::Gauge,
        "Synchronous standbys streaming from the region's primary now.",
    ),
    (
        "coupon_standby_lag_bytes",
        Kind::Gauge,
        "Bytes of WAL the region's standby has not replayed yet (-1: no standby connected).",
    ),
    (
        "coupon_bloom_rejects_total",
        Kind::Counter,
        "Codes refused as never issued by the in-process Bloom filter, without any I/O.",
    ),
    (
        "coupon_attempt_log_dropped_total",
        Kind::Counter,
        "Redeem attempts not written to the attempt log because its queue was full.",
    ),
    (
        "coupon_claims_total",
        Kind::Counter,
        "Redis claims on the burst path, by result (claimed, given_back).",
    ),
    (
        "coupon_group_commit_total",
        Kind::Counter,
        "Winners of shared campaigns by how they were committed: grouped (several to a transaction) or alone.",
    ),
    (
        "coupon_group_commit_clashes_total",
        Kind::Counter,
        "Groups of winners whose plain insert met a unique index and that ran once more skipping the clashes.",
    ),
    (
        "coupon_claim_fallback_total",
        Kind::Counter,
        "Redeems that fell back to the Postgres-only path, by reason.",
    ),
    (
        "coupon_seat_counts_total",
        Kind::Counter,
        "Exact counts of a campaign's seats in use by the Postgres-only path's seat pick (each reads every seat taken, shared by the picks asking at once).",
    ),
    (
        "coupon_batched_refusals_total",
        Kind::Counter,
        "Redeems of a shared campaign the node counted full, answered on the Postgres path by a batch: refused there, or sent alone to the single transaction (key in flight or used, a seat free, a failed batch).",
    ),
    (
        "coupon_seed_failures_total",
        Kind::Counter,
        "Failed attempts to seed a campaign's Redis burst state.",
    ),
    (
        "coupon_rate_limited_total",
        Kind::Counter,
        "Calls refused with 429 by the rate limit, by scope (user, ip).",
    ),
    (
        "coupon_rate_limit_unchecked_total",
        Kind::Counter,
        "Calls let through unchecked because the rate limit could not be read, by scope.",
    ),
    (
        "coupon_redis_drift",
        Kind::Gauge,
        "Difference between a campaign's Redis burst state and Postgres at the last reconcile.",
    ),
    (
        "coupon_reconcile_runs_total",
        Kind::Counter,
        "Reconciler passes over a campaign.",
    ),
    (
        "coupon_reconcile_failures_total",
        Kind::Counter,
        "Periodic reconcile passes that failed (Redis or Postgres unreachable).",
    ),
    (
        "coupon_reconcile_leaks_returned_total",
        Kind::Counter,
        "Leaked Redis claims (no Postgres row after the grace period) given back.",
    ),
    (
        "coupon_service_auth_failures_total",
        Kind::Counter,
        "Service tokens this node refused, by the peer region the token claims.",
    ),
    // Router.
    (
        "coupon_router_requests_total",
        Kind::Counter,
        "Requests answered by the router, by route and status.",
    ),
    (
        "coupon_router_request_ms",
        Kind::Histogram,
        "Time the router took to answer a request, in milliseconds, by route.",
    ),
    (
        "coupon_router_forward_ms",
        Kind::Histogram,
        "Time one forward to a node took, in milliseconds, by target region.",
    ),
    (
        "coupon_router_forwarded_total",
        Kind::Counter,
        "Answers relayed from a node, by region and status.",
    ),
    (
        "coupon_router_errors_total",
        Kind::Counter,
        "Requests the router answered itself with an error, by reason code.",
    ),
    (
        "coupon_router_misdirected_total",
        Kind::Counter,
        "421 answers from a node (stale map), by the region that sent it.",
    ),
    (
        "coupon_router_owner_unreachable_total",
        Kind::Counter,
        "Forwards that failed to reach the owning region, by region and why.",
    ),
    (
        "coupon_router_peer_auth_rejected_total",
        Kind::Counter,
        "Times a region's node refused this router's service credentials, by peer.",
    ),
    (
        "coupon_router_peer_ok",
        Kind::Gauge,
        "1 when the peer region's node accepted our credentials at the last check, else 0.",
    ),
    (
        "coupon_router_map_version",
        Kind::Gauge,
        "Version of the ownership map this router routes by.",
    ),
];

/// The catalogue entry of `name`.
pub fn find(name: &str) -> Option<(Kind, &'static str)> {
    METRICS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, h)| (*k, *h))
}
