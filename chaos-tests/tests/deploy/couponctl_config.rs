//! `couponctl` against a deployment: a hand-written cluster file in the
//! shape `deploy/couponctl.example.json` documents (no pids, no key files,
//! secrets as `${VAR}` and admin tokens from the environment), found through
//! `COUPONCTL_CONFIG`, drives `doctor`, `reconcile` and `slot move`.

use coupon_chaos_tests::workload::shared_campaign;
use coupon_chaos_tests::Harness;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn couponctl() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .join("couponctl")
}

/// A deployment file for the harness's cluster: DSNs as `${…}`, no secrets.
fn deployment_file(h: &Harness) -> Value {
    let regions: serde_json::Map<String, Value> = h
        .cluster
        .regions
        .iter()
        .map(|(name, r)| {
            let up = name.to_uppercase();
            let v = json!({"router": r.router.url(), "node": r.node_url(),
                "postgres": format!("${{{up}_DATABASE_URL}}"), "redis": format!("${{{up}_REDIS_URL}}")});
            (name.clone(), v)
        })
        .collect();
    let raft: Vec<Value> = h
        .cluster
        .raft
        .iter()
        .map(|m| json!({"url": m.url()}))
        .collect();
    json!({"regions": regions, "raft": raft})
}

/// Runs couponctl with the deployment's environment (and `extra`).
fn run(h: &Harness, file: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(couponctl());
    cmd.args(args)
        .env_remove("COUPONCTL_ADMIN_TOKEN")
        .env_remove("COUPON_RAFT_ADMIN_TOKEN")
        .env("COUPONCTL_CONFIG", file)
        .env("COUPON_RAFT_ADMIN_TOKEN", &h.cluster.admin_token);
    for (name, r) in &h.cluster.regions {
        let up = name.to_uppercase();
        cmd.env(format!("{up}_DATABASE_URL"), r.db_url())
            .env(format!("{up}_REDIS_URL"), r.redis.url());
    }
    cmd.envs(extra.iter().copied());
    cmd.output().expect("run couponctl")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn couponctl_doctor_reconcile_and_slot_move_work_from_a_deployment_file() {
    let h = Harness::start("couponctl-config").await;
    let dir = coupon_testkit::scratch_root().join(format!("ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("deployment.json");
    std::fs::write(&file, deployment_file(&h).to_string()).unwrap();

    let out = run(&h, &file, &["doctor"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "doctor failed:\n{t}");
    for want in [
        "ok    eu postgres",
        "ok    ap redis",
        "ok    us router",
        "all checks passed",
    ] {
        assert!(t.contains(want), "doctor output lacks `{want}`:\n{t}");
    }

    let c = shared_campaign(&h, "eu", "BLACKFRI100", 5).await;
    let cid = c["campaign_id"].as_str().unwrap();
    let admin = h.issuer.admin();
    let out = run(
        &h,
        &file,
        &["reconcile", cid],
        &[("COUPONCTL_ADMIN_TOKEN", &admin)],
    );
    assert!(out.status.success(), "reconcile failed:\n{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("reconcile prints JSON");
    assert!(report.get("drift").is_some(), "{report}");
    // Without admin credentials it says which variable to set.
    let out = run(&h, &file, &["reconcile", cid], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("COUPONCTL_ADMIN_TOKEN"),
        "{}",
        text(&out)
    );

    let out = run(
        &h,
        &file,
        &["slot", "move", "--code", "BLACKFRI100", "--to", "ap"],
        &[],
    );
    assert!(out.status.success(), "slot move failed:\n{}", text(&out));
    let map: Value = h
        .http
        .get(format!("{}/v1/cluster/map", h.cluster.raft[0].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(map["slots"][586]["region"], "ap", "slot 586 moved");

    // A secret the environment lacks is named, not silently empty.
    let out = Command::new(couponctl())
        .args(["doctor", "--cluster-file"])
        .arg(&file)
        .env_remove("EU_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("_DATABASE_URL is not set"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
