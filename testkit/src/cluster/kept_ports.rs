//! Ports of a kept local cluster, reused when it starts again. Raft's
//! membership stores its members' addresses, and the raft map (kept with
//! the cluster's data) names every region's node, router and standby node
//! by URL; a restart that picked new ports would leave the map
//! pointing at processes that no longer exist, and no region could reach
//! another.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The file, in the cluster's data folder.
pub const FILE: &str = "ports.json";

/// Ports by role (`raft/1`, `us/router`, `us/node/0`, …); new roles get free ports.
pub struct KeptPorts {
    file: Option<PathBuf>,
    ports: BTreeMap<String, u16>,
}

impl KeptPorts {
    /// Loaded from `file` when the cluster is kept, empty otherwise.
    pub fn load(file: PathBuf, persistent: bool) -> KeptPorts {
        let ports = persistent
            .then(|| std::fs::read_to_string(&file).ok())
            .flatten()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        KeptPorts {
            file: persistent.then_some(file),
            ports,
        }
    }

    /// The port `role` had last time, or a free one.
    pub fn port(&mut self, role: &str) -> u16 {
        if let Some(&p) = self.ports.get(role) {
            crate::ports::claim(p);
            return p;
        }
        let p = crate::ports::free_port();
        self.ports.insert(role.to_owned(), p);
        p
    }

    /// Written for the next start (nothing when the cluster is not kept).
    pub fn save(&self) {
        if let Some(f) = &self.file {
            let _ = std::fs::write(f, serde_json::to_string(&self.ports).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_cluster_gets_its_ports_back_and_a_scratch_one_does_not() {
        let dir = crate::scratch_root().join(format!("kept-ports-{}", crate::unique_tag()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ports.json");
        let mut first = KeptPorts::load(file.clone(), true);
        let (router, node) = (first.port("us/router"), first.port("us/node/0"));
        assert_ne!(router, node);
        first.save();
        let mut again = KeptPorts::load(file.clone(), true);
        assert_eq!(again.port("us/router"), router);
        assert_eq!(again.port("us/node/0"), node);
        let mut scratch = KeptPorts::load(file, false);
        let other = scratch.port("us/router");
        assert_ne!(other, router, "a scratch cluster never reads the file");
        let _ = std::fs::remove_dir_all(dir);
    }
}
