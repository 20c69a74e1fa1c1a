//! The Kubernetes bootstrap of the raft group and its map
//! (`deploy/k8s/bootstrap/bootstrap.sh`, run by the `us` overlay's Job)
//! against three real, uninitialized `coupon-raft` members: it forms the
//! group and initializes the map, and running it again changes nothing.

use coupon_testkit::cluster::proc::Proc;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const ADMIN: &str = "bootstrap-test-admin-token-0123";

fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_owned()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s/bootstrap/bootstrap.sh")
}

/// Runs the Job's script as the Job would, bounded in time.
fn bootstrap(dir: &Path, urls: &[String]) -> (bool, String) {
    let out = Command::new("timeout")
        .arg("60")
        .arg("sh")
        .arg(script())
        .env("RAFT_URL", &urls[0])
        .env("COUPON_RAFT_URLS", urls.join(","))
        .env("COUPON_RAFT_ADMIN_TOKEN", ADMIN)
        .env("BOOTSTRAP_DIR", dir)
        .env("TMPDIR", dir)
        .output()
        .expect("run bootstrap.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn get(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_job_forms_the_group_and_map_once_and_reruns_harmlessly() {
    let dir = coupon_testkit::scratch_root().join(format!("raft-bootstrap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ports: Vec<u16> = (0..3).map(|_| coupon_testkit::ports::free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut members = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let id = i + 1;
        let data = dir.join(format!("m{id}"));
        std::fs::create_dir_all(&data).unwrap();
        let mut p = Proc::new(
            &format!("raft-{id}"),
            *port,
            bin_dir().join("coupon-raft"),
            vec![
                "serve".into(),
                format!("--node-id={id}"),
                format!("--listen=127.0.0.1:{port}"),
                format!("--data-dir={}", data.display()),
                "--heartbeat-ms=150".into(),
                "--election-min-ms=750".into(),
                "--election-max-ms=1500".into(),
            ],
            vec![
                (
                    "COUPON_RAFT_SECRET".into(),
                    "bootstrap-test-secret-0123".into(),
                ),
                ("COUPON_RAFT_ADMIN_TOKEN".into(), ADMIN.into()),
            ],
            data.join("raft.log"),
        );
        p.spawn()
            .expect("start coupon-raft (cargo build --workspace --bins)");
        members.push(p);
    }
    let regions = ["us", "eu", "ap"];
    std::fs::write(
        dir.join("members.json"),
        json!({"members": urls.iter().enumerate()
            .map(|(i, u)| json!({"node_id": i + 1, "addr": u})).collect::<Vec<_>>()})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("regions.json"),
        json!({"request_id": "bootstrap-map-1", "slot_count": 1024,
            "regions": regions.map(|r| json!({"id": r, "router": format!("http://{r}.router.test"),
                "node": format!("http://{r}.node.test:8080"), "key_ids": [format!("{r}-1")]}))})
        .to_string(),
    )
    .unwrap();

    let (ok, out) = bootstrap(&dir, &urls);
    assert!(ok, "bootstrap failed:\n{out}");
    assert!(out.contains("bootstrap done"), "{out}");
    let map = get(&format!("{}/v1/cluster/map", urls[2])).await;
    let version = map["version"].as_u64().expect("map version");
    assert_eq!(map["slots"].as_array().map(Vec::len), Some(1024), "{map}");
    let ids: Vec<_> = map["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, regions.map(Value::from).to_vec());
    let view = get(&format!("{}/v1/cluster/members", urls[1])).await;
    assert_eq!(view["voters"].as_array().map(Vec::len), Some(3), "{view}");

    // The Job again (retried, or re-applied): already initialized, no change.
    let (ok, out) = bootstrap(&dir, &urls);
    assert!(ok, "second run failed:\n{out}");
    assert!(out.contains("already initialized"), "{out}");
    let again = get(&format!("{}/v1/cluster/map", urls[0])).await;
    assert_eq!(
        again["version"].as_u64(),
        Some(version),
        "the rerun changed the map"
    );
    drop(members);
    let _ = std::fs::remove_dir_all(&dir);
}
