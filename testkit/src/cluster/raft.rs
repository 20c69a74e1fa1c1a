//! The raft group of a local cluster: three `coupon-raft serve` members, one
//! per region (round robin), bootstrapped once; the map is initialized with
//! the cluster's regions (slot i → region i mod n, epoch 1).

use super::links::{raft_source_ip, Links};
use super::proc::Proc;
use crate::KitError;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Members of the group.
pub const MEMBERS: u64 = 3;

pub struct RaftOpts<'a> {
    pub root: &'a Path,
    pub bin: &'a Path,
    pub regions: &'a [String],
    pub secret: &'a str,
    pub admin: &'a str,
    /// The token nodes renew region leases with.
    pub lease_token: &'a str,
    /// Test timing (150 ms heartbeat, 0.75–1.5 s election) instead of cross-region.
    pub fast: bool,
    /// Listen ports, one per member (kept from an earlier run: membership
    /// stores addresses).
    pub ports: Vec<u16>,
}

/// Region of member `id` (1-based).
pub fn member_region(regions: &[String], id: u64) -> String {
    regions[(id as usize - 1) % regions.len()].clone()
}

/// Starts the members; returns them and the address each advertises.
pub async fn start(o: &RaftOpts<'_>, links: &Links) -> Result<Vec<Proc>, KitError> {
    let ports = &o.ports;
    let member_regions: Vec<String> = (1..=MEMBERS).map(|i| member_region(o.regions, i)).collect();
    let mut advertised = Vec::new();
    for id in 1..=MEMBERS {
        let port = ports[id as usize - 1];
        let addr = if links.raft_proxied() {
            let region = member_region(o.regions, id);
            let a = links
                .raft_member(id, &region, member_regions.clone(), port)
                .await;
            format!("http://{a}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        advertised.push(addr);
    }
    let mut members = Vec::new();
    for id in 1..=MEMBERS {
        let port = ports[id as usize - 1];
        let dir = o.root.join(format!("raft-{id}"));
        std::fs::create_dir_all(&dir).map_err(crate::io("creating raft dir"))?;
        let mut args = vec![
            "serve".to_owned(),
            format!("--node-id={id}"),
            format!("--listen=127.0.0.1:{port}"),
            format!("--advertise={}", advertised[id as usize - 1]),
            format!("--data-dir={}", dir.display()),
        ];
        if links.raft_proxied() {
            args.push(format!("--source-ip={}", raft_source_ip(id)));
        }
        if o.fast {
            args.extend(
                [
                    "--heartbeat-ms=150",
                    "--election-min-ms=750",
                    "--election-max-ms=1500",
                ]
                .map(String::from),
            );
        }
        let env = vec![
            ("COUPON_RAFT_SECRET".to_owned(), o.secret.to_owned()),
            ("COUPON_RAFT_ADMIN_TOKEN".to_owned(), o.admin.to_owned()),
            (
                "COUPON_RAFT_LEASE_TOKEN".to_owned(),
                o.lease_token.to_owned(),
            ),
            ("RUST_LOG".to_owned(), "info,openraft=warn".to_owned()),
        ];
        let mut p = Proc::new(
            &format!("raft-{id}"),
            port,
            o.bin.to_owned(),
            args,
            env,
            dir.join("raft.log"),
        );
        p.spawn().map_err(crate::io("spawning coupon-raft"))?;
        members.push(p);
    }
    let http = reqwest::Client::new();
    for m in &members {
        wait_ok(
            &http,
            &format!("{}/livez", m.url()),
            Duration::from_secs(30),
        )
        .await?;
    }
    let init = json!({"members": (1..=MEMBERS).map(|i| json!({"node_id": i, "addr": advertised[i as usize - 1]})).collect::<Vec<_>>()});
    let r = post(
        &http,
        &members[0].url(),
        "/v1/raft/initialize",
        o.admin,
        &init,
    )
    .await?;
    if !(r.0 < 300 || r.1["code"] == "already_initialized") {
        return Err(KitError::Failed(format!("raft initialize: {}", r.1)));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m: Value = match http
            .get(format!("{}/v1/cluster/members", members[0].url()))
            .send()
            .await
        {
            Ok(resp) => resp.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        if !m["leader"].is_null() {
            break;
        }
        if Instant::now() > deadline {
            return Err(KitError::Failed(
                "raft group elected no leader in 30 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(members)
}

/// Initializes the map once (a second call is a no-op).
pub async fn init_map(url: &str, admin: &str, regions: &[Value]) -> Result<(), KitError> {
    let http = reqwest::Client::new();
    let body = json!({"request_id": "local-cluster-init", "regions": regions});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = post(&http, url, "/v1/cluster/init", admin, &body).await?;
        if status < 300 || v["code"] == "already_initialized" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(KitError::Failed(format!("map init: {v}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    admin: &str,
    body: &Value,
) -> Result<(u16, Value), KitError> {
    let r = http
        .post(format!("{base}{path}"))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .map_err(|e| KitError::Failed(format!("POST {path}: {e}")))?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// Polls `url` until it answers 2xx.
pub async fn wait_ok(http: &reqwest::Client, url: &str, limit: Duration) -> Result<(), KitError> {
    let deadline = Instant::now() + limit;
    loop {
        let last = match http.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(KitError::Failed(format!(
                "{url} not ready after {limit:?}: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
