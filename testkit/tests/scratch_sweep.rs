//! The scratch folder is swept of dead test processes' folders, and of
//! nothing else.

use coupon_testkit::{scratch_root, sweep_dead, unique_tag};

#[test]
fn a_sweep_removes_the_folders_of_dead_processes_only() {
    let root = scratch_root().join(format!("sweep-test-{}", unique_tag()));
    // Pids above any pid_max: no such process runs.
    let dead = [
        "pg-999999999_0_ab12",
        "keys-t999999998_3_cd34",
        "sb-999999997_1_ef56-us",
    ];
    let own = std::process::id();
    let kept = [
        format!("pg-{own}_0_ab12"),
        format!("redis-{own}_4_cd34"),
        "keyfiles-999999999".to_owned(),
        "chaos-region9_down-999999999".to_owned(),
        "notes".to_owned(),
    ];
    for name in dead
        .iter()
        .map(|s| s.to_string())
        .chain(kept.iter().cloned())
    {
        std::fs::create_dir_all(root.join(&name).join("data")).unwrap();
        std::fs::write(root.join(&name).join("data/file"), b"x").unwrap();
    }
    sweep_dead(&root);
    for name in dead {
        assert!(!root.join(name).exists(), "{name} was left behind");
    }
    for name in &kept {
        assert!(root.join(name).exists(), "{name} was removed");
    }
    std::fs::remove_dir_all(&root).unwrap();
}
