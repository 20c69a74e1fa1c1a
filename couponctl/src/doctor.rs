//! `couponctl doctor`: checks every store and peer credential of a running
//! cluster before a deploy (docs/architecture.md §5) and says what is wrong.
//!
//! Per region: Postgres answers and owns the slots the raft map gives it,
//! Redis answers, node and router are ready (their own reasons if not; a
//! router's include every peer that rejects its credentials); the raft
//! members are ready; and, where the cluster file names the service keys
//! (local cluster), every region's key is accepted by every region's node.
//! What a deployment's file leaves out is reported as skipped.

use crate::clusterfile::{ClusterFile, FILE};
use anyhow::Context;
use clap::Args;
use coupon_core::service_token::Signer;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct DoctorArgs {
    /// The cluster file of the running cluster.
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    pub cluster_file: PathBuf,
}

struct Report {
    failures: usize,
}

impl Report {
    /// A check the cluster file gives no address for (a deployment file may
    /// leave out what is not reachable from here); not a failure.
    fn skip(&self, what: &str) {
        println!("skip  {what}: not in the cluster file");
    }

    /// Not a failure, but an operator must know (a degraded region).
    fn warn(&self, what: &str, note: &str) {
        println!("WARN  {what}: {note}");
    }

    fn check(&mut self, what: &str, result: Result<String, String>) {
        match result {
            Ok(note) => println!(
                "ok    {what}{}",
                if note.is_empty() {
                    String::new()
                } else {
                    format!(": {note}")
                }
            ),
            Err(why) => {
                self.failures += 1;
                println!("FAIL  {what}: {why}");
            }
        }
    }
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let file = ClusterFile::load(&args.cluster_file)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    let mut rep = Report { failures: 0 };
    let map = raft_map(&http, &file, &mut rep).await;
    for (name, r) in &file.regions {
        let owned = map.as_ref().map(|m| owned_by(m, name));
        match &r.postgres {
            Some(pg) => {
                rep.check(&format!("{name} postgres"), postgres(pg, owned).await);
                match replication(pg).await {
                    Ok((note, true)) => rep.warn(&format!("{name} replication"), &note),
                    other => rep.check(&format!("{name} replication"), other.map(|(n, _)| n)),
                }
            }
            None => rep.skip(&format!("{name} postgres")),
        }
        match &r.redis {
            Some(url) => rep.check(&format!("{name} redis"), redis_ping(url).await),
            None => rep.skip(&format!("{name} redis")),
        }
        match serving_node(map.as_ref(), name, r.node.as_deref()) {
            Some(node) => rep.check(&format!("{name} node"), ready(&http, &node).await),
            None => rep.skip(&format!("{name} node")),
        }
        // A router's /readyz also names every peer that rejects its
        // service credentials, so this covers the keys of a deployment.
        match &r.router {
            Some(router) => rep.check(&format!("{name} router"), ready(&http, router).await),
            None => rep.skip(&format!("{name} router")),
        }
    }
    if let Some(keys) = &file.service_keys {
        for (from, kid) in &keys.kids {
            let signer = Signer::load(&keys.dir.join(format!("{kid}.pem")), kid, from, "couponctl")
                .with_context(|| format!("loading {from}'s service key"));
            for (to, r) in &file.regions {
                let what = format!("{from} credentials at {to}'s node (kid {kid})");
                let node = serving_node(map.as_ref(), to, r.node.as_deref());
                let res = match (&signer, &node) {
                    (Ok(s), Some(node)) => ping(&http, node, &s.token(to)).await,
                    (Err(e), _) => Err(format!("{e:#}")),
                    (_, None) => Err("no node URL in the cluster file".into()),
                };
                rep.check(&what, res);
            }
        }
    }
    if rep.failures > 0 {
        anyhow::bail!("{} check(s) failed", rep.failures);
    }
    println!("all checks passed");
    Ok(())
}

async fn raft_map(http: &reqwest::Client, file: &ClusterFile, rep: &mut Report) -> Option<Value> {
    let mut map = None;
    for m in &file.raft {
        rep.check(&format!("raft member {}", m.url), ready(http, &m.url).await);
        if map.is_none() {
            if let Ok(r) = http
                .get(format!("{}/v1/cluster/map?stale=ok", m.url))
                .send()
                .await
            {
                map = r.json::<Value>().await.ok();
            }
        }
    }
    rep.check(
        "ownership map",
        match &map {
            Some(m) => Ok(format!("version {}", m["version"])),
            None => Err("no raft member served the map".into()),
        },
    );
    map
}

/// The node that serves `region` now: the file's, unless the map names
/// another one (after a takeover the region is served by its standby's
/// node, which the file lists under `standby`).
fn serving_node(map: Option<&Value>, region: &str, file_node: Option<&str>) -> Option<String> {
    let named = map
        .and_then(|m| m["regions"].as_array())
        .and_then(|rs| rs.iter().find(|r| r["id"] == region))
        .and_then(|r| r["node"].as_str())
        .map(|u| u.trim_end_matches('/').to_owned());
    match (named, file_node) {
        (Some(n), Some(f)) if n != f.trim_end_matches('/') => Some(n),
        (_, Some(f)) => Some(f.to_owned()),
        (_, None) => None,
    }
}

fn owned_by(map: &Value, region: &str) -> i64 {
    map["slots"].as_array().map_or(0, |s| {
        s.iter()
            .filter(|x| x["region"] == region && x["state"] == "active")
            .count() as i64
    })
}

async fn postgres(url: &str, map_owned: Option<i64>) -> Result<String, String> {
    let db = sqlx::PgPool::connect(url)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM slot_ownership WHERE state = 'active'")
            .fetch_one(&db)
            .await
            .map_err(|e| format!("cannot read slot_ownership: {e}"))?;
    match map_owned {
        Some(m) if m != active => Err(format!(
            "{active} active slots in Postgres, the raft map gives this region {m} (sync lagging or a move in flight)"
        )),
        _ => Ok(format!("{active} active slots")),
    }
}

/// The region's synchronous replication (docs/failover.md): Ok((note,
/// degraded)), or Err when the standby is lost and commits are blocked.
async fn replication(url: &str) -> Result<(String, bool), String> {
    use coupon_node::ownership::replication;
    let db = sqlx::PgPool::connect(url)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let read = |e: sqlx::Error| format!("cannot read replication state: {e}");
    if replication::in_recovery(&db).await.map_err(read)? {
        return Ok((
            "this database is a standby: the region's primary role is on its other copy".into(),
            false,
        ));
    }
    let st = replication::status(&db).await.map_err(read)?;
    let names: String = sqlx::query_scalar("SELECT current_setting('synchronous_standby_names')")
        .fetch_one(&db)
        .await
        .map_err(read)?;
    match st {
        st if st.degraded => Ok((
            "DEGRADED: commits do not wait for a standby (RPO > 0); `couponctl region strict` once one streams".into(),
            true,
        )),
        st if st.sync_standbys == 0 => Err(format!(
            "standby {names} lost: commits are blocked (strict); bring it back or `couponctl region degrade`"
        )),
        st => Ok((
            format!(
                "synchronous, standby {names} streaming (replay lag {} bytes)",
                st.lag_bytes.max(0)
            ),
            false,
        )),
    }
}

async fn redis_ping(url: &str) -> Result<String, String> {
    let client = redis::Client::open(url).map_err(|e| format!("bad URL: {e}"))?;
    let ping = async {
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(p)) if p == "PONG" => Ok(String::new()),
        Ok(Ok(p)) => Err(format!("answered {p}")),
        Ok(Err(e)) => Err(format!("cannot reach it: {e}")),
        Err(_) => Err("no answer within 2 s".into()),
    }
}

async fn ready(http: &reqwest::Client, base: &str) -> Result<String, String> {
    let r = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    let ok = r.status().is_success();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if ok {
        Ok(String::new())
    } else {
        let failing: BTreeMap<usize, String> =
            body["failing"].as_array().map_or_else(BTreeMap::new, |a| {
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (i, v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            });
        Err(format!(
            "not ready: {}",
            failing.into_values().collect::<Vec<_>>().join("; ")
        ))
    }
}

async fn ping(http: &reqwest::Client, node: &str, token: &str) -> Result<String, String> {
    let r = http
        .get(format!("{node}/v1/service/ping"))
        .header(coupon_core::service_token::SERVICE_TOKEN_HEADER, token)
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    match r.status().as_u16() {
        200 => Ok(String::new()),
        401 => Err(format!("REJECTED: {}", r.text().await.unwrap_or_default())),
        s => Err(format!("answered {s}")),
    }
}
