//! `couponctl drill region-loss R` (docs/failover.md §7), local cluster only:
//! a redeem load on a campaign homed in R through every router; every
//! process of R SIGKILLed (router, node, primary, Redis, raft member, the
//! standby R hosts for another region); wait for the takeover; keep the
//! load on through the surviving routers; then judge every invariant
//! against the surviving databases (R's promoted standby in place of its
//! primary) and report RTO (kill → first 201 for R's codes) and RPO
//! (acknowledged redemptions missing: must be 0), with a timeline and
//! errors by class.
//!
//! Killing R also kills the standby of the region whose standby R hosted:
//! that region's commits block (strict). Like an operator following the
//! runbook, the drill then degrades that region explicitly (`--no-degrade`
//! leaves it blocked) and says so in the timeline.

use super::report::{Check, Event, Verdict};
use crate::clusterfile::{ClusterFile, FILE};
use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The region to lose.
    pub region: String,
    /// Redeem attempts per second across every router.
    #[arg(long, default_value_t = 100)]
    pub load: u32,
    /// How long the load runs after the takeover completed.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Leave the region whose standby was lost blocked (strict) instead of
    /// degrading it.
    #[arg(long)]
    pub no_degrade: bool,
    /// Longest wait for the takeover.
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    pub cluster_file: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub drill: String,
    pub region: String,
    pub timeline: Vec<Event>,
    /// Kill → the takeover committed in raft, ms.
    pub takeover_ms: Option<u128>,
    /// Kill → first 201 for the lost region's codes via a surviving router, ms.
    pub rto_ms: Option<u128>,
    /// Acknowledged redemptions missing from the surviving databases.
    pub rpo: usize,
    pub attempts: usize,
    pub acknowledged: usize,
    pub errors: BTreeMap<String, u64>,
    pub invariants: Verdict,
}

struct Seen {
    /// When the attempt was sent (since the drill started).
    sent: Duration,
    status: u16,
    reason: String,
    via: String,
    redemption: Option<String>,
    at: Duration,
}

pub async fn run(a: Args) -> anyhow::Result<bool> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let lost = cluster.region(&a.region)?.clone();
    if lost.pids.is_empty() {
        bail!("region-loss kills local processes: it runs on the local cluster only (`couponctl dev up`)");
    }
    let sb = lost
        .standby
        .clone()
        .context("the region has no standby to take over (dev up starts them)")?;
    let sb_pg = sb["postgres"]
        .as_str()
        .context("standby postgres")?
        .to_owned();
    let issuer = cluster.issuer()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(10))
        .build()?;
    let t0 = Instant::now();
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let event = |what: String| {
        if !a.json {
            eprintln!("  +{:>6.2}s  {what}", t0.elapsed().as_secs_f64());
        }
        events.lock().expect("events").push(Event {
            at_s: t0.elapsed().as_secs_f64(),
            what,
        });
    };
    // A campaign homed in the lost region, big enough never to run out.
    let routers: Vec<(String, String)> = cluster
        .regions
        .iter()
        .filter_map(|(r, e)| Some((r.clone(), e.router.clone()?)))
        .collect();
    let home_router = lost.router.clone().context("router of the region")?;
    let map: Value = http
        .get(format!("{home_router}/v1/cluster/map"))
        .send()
        .await?
        .json()
        .await?;
    let code = crate::bench::regions::code_owned_by(&map, &a.region, "LOSS")?;
    let admin_token = issuer.admin();
    crate::bench::regions::unlimited_campaign(
        &http,
        &home_router,
        &admin_token,
        "drill region-loss",
        &code,
    )
    .await?;
    event(format!(
        "campaign {code} homed in {}; load {} attempts/s through every router",
        a.region, a.load
    ));
    // The load: one attempt every 1/load s, round-robin over the routers
    // (the lost region's router included until it dies).
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (seen, stop, http, routers, code) = (
            seen.clone(),
            stop.clone(),
            http.clone(),
            routers.clone(),
            code.clone(),
        );
        let tokens: Vec<(String, String)> = (0..200_000)
            .take(((a.seconds + a.wait_secs + 10) * u64::from(a.load.max(1))) as usize)
            .map(|i| {
                let user = format!("loss-{i}");
                let t = issuer.user(&user);
                (user, t)
            })
            .collect();
        let every = Duration::from_secs_f64(1.0 / f64::from(a.load.max(1)));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut set = tokio::task::JoinSet::new();
            for (i, (user, token)) in tokens.into_iter().enumerate() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let (via, url) = routers[i % routers.len()].clone();
                let (http, code, seen) = (http.clone(), code.clone(), seen.clone());
                set.spawn(async move {
                    let sent = t0.elapsed();
                    let key = format!("{user}-drill");
                    let r = http
                        .post(format!("{url}/v1/coupons/redeem"))
                        .bearer_auth(&token)
                        .header("Idempotency-Key", &key)
                        .json(&json!({"code": code, "order_id": format!("ord-{key}")}))
                        .send()
                        .await;
                    let (status, reason, redemption) = match r {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let b: Value = r.json().await.unwrap_or_default();
                            (
                                s,
                                b["code"].as_str().unwrap_or_default().to_owned(),
                                b["redemption_id"].as_str().map(str::to_owned),
                            )
                        }
                        Err(e) if e.is_timeout() => (0, "timeout".to_owned(), None),
                        Err(_) => (0, "connection".to_owned(), None),
                    };
                    seen.lock().expect("seen").push(Seen {
                        sent,
                        status,
                        reason,
                        via,
                        redemption,
                        at: t0.elapsed(),
                    });
                });
                while set.try_join_next().is_some() {}
            }
            while set.join_next().await.is_some() {}
        })
    };
    // A takeover of an earlier drill is not this one.
    let admin = cluster.raft_admin()?;
    let earlier = admin
        .map()
        .await?
        .failovers
        .into_iter()
        .find(|f| f.region.as_str() == a.region)
        .map(|f| f.id);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The loss.
    let kill_at = t0.elapsed();
    let mut killed = 0;
    for (name, pid) in &lost.pids {
        if coupon_testkit::procs::signal(*pid, libc::SIGKILL) {
            killed += 1;
        } else {
            event(format!("{name} (pid {pid}) was not running"));
        }
    }
    event(format!(
        "region {} lost: {killed} processes SIGKILLed",
        a.region
    ));
    let orphan = cluster.regions.iter().find(|(_, e)| {
        e.standby
            .as_ref()
            .and_then(|s| s["region"].as_str())
            .is_some_and(|h| h == a.region)
    });
    if let Some((o, _)) = orphan {
        if a.no_degrade {
            event(format!("region {o} lost its synchronous standby: its commits block (strict) until an operator degrades it"));
        } else {
            let out = tokio::process::Command::new(std::env::current_exe()?)
                .args(["region", "degrade", o, "--cluster-file"])
                .arg(&a.cluster_file)
                .output()
                .await?;
            event(format!(
                "region {o} lost its synchronous standby (hosted in {}): degraded to asynchronous, as the runbook says ({})",
                a.region,
                if out.status.success() { "ok" } else { "FAILED" }
            ));
        }
    }
    // The takeover (the controller on the raft leader starts it once the
    // lease lapsed; the standby node promotes and commits it).
    let mut began = None;
    let takeover = loop {
        if let Ok(m) = admin.map().await {
            let rec = m
                .failovers
                .iter()
                .find(|f| f.region.as_str() == a.region && Some(&f.id) != earlier.as_ref());
            if began.is_none() && rec.is_some() {
                began = Some(t0.elapsed());
                event(format!(
                    "raft leader: {}'s lease lapsed, takeover begun (slots failing_over)",
                    a.region
                ));
            }
            if rec.is_some_and(|f| f.state == coupon_raft::model::FailoverState::Completed) {
                let ms = (t0.elapsed() - kill_at).as_millis();
                event(format!(
                    "takeover committed in raft: {} served by its standby node at epoch+1",
                    a.region
                ));
                break Some(ms);
            }
        }
        if (t0.elapsed() - kill_at).as_secs() > a.wait_secs {
            event(format!("no takeover within {} s", a.wait_secs));
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await?;
    event("load stopped".into());
    // Judge against the surviving databases.
    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    // Sent after the kill: nothing the old primary could have answered.
    let rto_ms = seen
        .iter()
        .filter(|s| s.sent > kill_at && s.status == 201 && s.via != a.region)
        .map(|s| (s.at - kill_at).as_millis())
        .min();
    if let Some(ms) = rto_ms {
        let lease = began.map_or(0, |b| (b - kill_at).as_millis());
        let steps = takeover.map_or(0, |t| t.saturating_sub(lease));
        let follow = takeover.map_or(0, |t| ms.saturating_sub(t));
        event(format!(
            "first 201 for {}'s code via a surviving router: RTO {ms} ms = lease + margin {lease} ms, takeover steps {steps} ms, routers following {follow} ms",
            a.region
        ));
    }
    let acked: BTreeSet<String> = seen
        .iter()
        .filter(|s| matches!(s.status, 200 | 201))
        .filter_map(|s| s.redemption.clone())
        .collect();
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&sb_pg)
        .await
        .context("connecting to the promoted standby")?;
    let present: BTreeSet<String> = sqlx::query_scalar(
        "SELECT r.redemption_id FROM redemptions r JOIN campaigns c USING (campaign_id) WHERE c.code = $1",
    )
    .bind(&code)
    .fetch_all(&db)
    .await?
    .into_iter()
    .collect();
    let missing: Vec<&String> = acked.difference(&present).collect();
    let mut checks = vec![Check {
        name: "takeover completed".into(),
        ok: takeover.is_some(),
        detail: takeover.map_or("no takeover".into(), |ms| format!("{ms} ms after the kill")),
    }];
    checks.push(Check {
        name: "RPO 0: every acknowledged redemption in the promoted database".into(),
        ok: missing.is_empty(),
        detail: format!(
            "{} acknowledged, {} present, {} missing",
            acked.len(),
            present.len(),
            missing.len()
        ),
    });
    checks.push(Check {
        name: "the lost region's codes answered again via surviving routers".into(),
        ok: rto_ms.is_some(),
        detail: rto_ms.map_or("never".into(), |ms| format!("RTO {ms} ms")),
    });
    // Caps, single use, one active owner per slot: the surviving stores.
    let mut stores = coupon_node::ownership::mover::Stores::default();
    for (name, e) in &cluster.regions {
        let url = if name == &a.region {
            Some(sb_pg.clone())
        } else {
            e.postgres.clone()
        };
        if let Some(url) = url {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy(&url)?;
            stores.0.insert(name.clone(), pool);
        }
    }
    let map = admin.map().await?;
    let goal = checks.remove(0);
    let mut verdict = super::verdict::judge(&map, &stores, goal, &[]).await?;
    verdict.checks.extend(checks);
    let pass = verdict.checks.iter().all(|c| c.ok);
    verdict.verdict = if pass { "pass" } else { "fail" }.into();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for s in seen.iter().filter(|s| !matches!(s.status, 200 | 201)) {
        let class = if s.status == 0 {
            format!("no answer ({})", s.reason)
        } else {
            format!("{} {}", s.status, s.reason)
        };
        *errors.entry(class).or_default() += 1;
    }
    let report = Report {
        drill: "region-loss".into(),
        region: a.region.clone(),
        timeline: events.lock().expect("events").clone(),
        takeover_ms: takeover,
        rto_ms,
        rpo: missing.len(),
        attempts: seen.len(),
        acknowledged: acked.len(),
        errors,
        invariants: verdict,
    };
    print(&report, a.json);
    Ok(pass)
}

fn print(r: &Report, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(r).expect("report"));
        return;
    }
    println!("\n== drill region-loss ({}) ==", r.region);
    println!("timeline:");
    for e in &r.timeline {
        println!("  +{:>7.2}s  {}", e.at_s, e.what);
    }
    let ms = |v: Option<u128>| v.map_or("—".to_owned(), |m| format!("{m} ms"));
    println!("takeover (kill → committed in raft): {}", ms(r.takeover_ms));
    println!(
        "RTO (kill → first 201 for {}'s code via a surviving router): {}",
        r.region,
        ms(r.rto_ms)
    );
    println!("RPO (acknowledged redemptions missing): {}", r.rpo);
    println!("attempts: {}, acknowledged: {}", r.attempts, r.acknowledged);
    if r.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors by class:");
        for (class, n) in &r.errors {
            println!("  {class:<32} {n}");
        }
    }
    println!("invariants:");
    for c in &r.invariants.checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        println!("  {mark} {}: {}", c.name, c.detail);
    }
    println!("verdict: {}", r.invariants.verdict);
}
