//! `.coupon/dev-cluster.json`: how tools find a running local cluster (API.md).

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DIR: &str = ".coupon";
pub const FILE: &str = ".coupon/dev-cluster.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    pub regions: BTreeMap<String, RegionEntry>,
    pub raft: Vec<RaftEntry>,
    pub issuer: IssuerEntry,
    /// Where the regions' service keys live (extension of API.md's shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_keys: Option<ServiceKeysEntry>,
    /// File holding the raft group's admin token (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_admin_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceKeysEntry {
    pub dir: PathBuf,
    /// Region → kid of its current key.
    pub kids: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionEntry {
    pub router: Option<String>,
    pub node: String,
    pub postgres: String,
    pub redis: String,
    pub pids: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RaftEntry {
    pub url: String,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerEntry {
    pub alg: String,
    pub private_key_pem: String,
    pub iss: String,
    pub aud: String,
}

impl ClusterFile {
    pub fn load(path: &Path) -> anyhow::Result<ClusterFile> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (is `couponctl dev up` running?)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .context("writing cluster file")?;
        std::fs::rename(&tmp, path).context("publishing cluster file")
    }

    pub fn issuer(&self) -> anyhow::Result<coupon_testkit::Issuer> {
        Ok(coupon_testkit::Issuer::load(
            &PathBuf::from(&self.issuer.private_key_pem),
            &self.issuer.iss,
            &self.issuer.aud,
        )?)
    }

    /// The URL to send API calls for `region` to: its router, else its node.
    pub fn entry_url(&self, region: &str) -> anyhow::Result<String> {
        let r = self
            .regions
            .get(region)
            .with_context(|| format!("no region `{region}` in the cluster file"))?;
        Ok(r.router.clone().unwrap_or_else(|| r.node.clone()))
    }
}
