//! The cluster file: how couponctl finds a cluster. `couponctl dev up`
//! writes `.coupon/dev-cluster.json` (docs/api.md's shape); an operator writes
//! the same shape by hand for a deployment (`deploy/couponctl.example.json`)
//! and points `--cluster-file` or `COUPONCTL_CONFIG` at it.
//!
//! A deployment file differs from the dev file in three ways, all optional
//! here: no `pids`; stores and nodes an operator cannot reach from where
//! couponctl runs may be left out (checks that need them say so); and
//! secrets stay out of the file — any `${NAME}` in it is replaced by the
//! environment variable `NAME` when loaded (an unset one is an error), and
//! admin credentials may come from the environment alone
//! ([`ADMIN_TOKEN_ENV`], [`RAFT_ADMIN_TOKEN_ENV`]).

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DIR: &str = ".coupon";
pub const FILE: &str = ".coupon/dev-cluster.json";
/// Environment variable naming the cluster file (default [`FILE`]); every
/// `--cluster-file` flag reads it.
pub const CONFIG_ENV: &str = "COUPONCTL_CONFIG";
/// An admin JWT for the API; wins over the file's issuer key.
pub const ADMIN_TOKEN_ENV: &str = "COUPONCTL_ADMIN_TOKEN";
/// The raft group's admin bearer token (the members' own variable name);
/// wins over `raft_admin_token_file`.
pub const RAFT_ADMIN_TOKEN_ENV: &str = "COUPON_RAFT_ADMIN_TOKEN";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub regions: BTreeMap<String, RegionEntry>,
    pub raft: Vec<RaftEntry>,
    /// The token issuer's private key, to mint admin (and, on the dev
    /// cluster, user) tokens. A deployment usually gives an admin token
    /// through [`ADMIN_TOKEN_ENV`] instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<IssuerEntry>,
    /// Where the regions' service keys live (extension of docs/api.md's shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_keys: Option<ServiceKeysEntry>,
    /// File holding the raft group's admin token (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_admin_token_file: Option<PathBuf>,
    /// File holding the token nodes renew region leases with (extension;
    /// the local cluster's drills read it, operators never need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_lease_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceKeysEntry {
    pub dir: PathBuf,
    /// Region → kid of its current key.
    pub kids: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionEntry {
    /// The region's public router URL.
    pub router: Option<String>,
    /// The region's node Service (private in a deployment).
    #[serde(default)]
    pub node: Option<String>,
    /// The region's Postgres DSN (`slot move` and `doctor` use it).
    #[serde(default)]
    pub postgres: Option<String>,
    /// The region's Redis URL (`doctor`).
    #[serde(default)]
    pub redis: Option<String>,
    /// Local cluster only: the processes running in the region.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pids: BTreeMap<String, u32>,
    /// Where the region's standby lives (docs/api.md; written once standbys exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftEntry {
    pub url: String,
    /// Local cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerEntry {
    pub alg: String,
    pub private_key_pem: String,
    pub iss: String,
    pub aud: String,
}

/// Replaces every `${NAME}` with the environment variable `NAME`, escaped
/// for a JSON string; an unset variable is an error naming it.
pub fn expand_env(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').context("`${` without a closing `}`")?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("`${{{name}}}` is not an environment variable name");
        }
        let value = env(name).with_context(|| format!("environment variable {name} is not set"))?;
        let quoted = serde_json::to_string(&value)?;
        out.push_str(&quoted[1..quoted.len() - 1]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ClusterFile {
    pub fn load(path: &Path) -> anyhow::Result<ClusterFile> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (is `couponctl dev up` running? for a deployment, \
                 point --cluster-file or {CONFIG_ENV} at its file)",
                path.display()
            )
        })?;
        let text = expand_env(&text, |n| std::env::var(n).ok())
            .with_context(|| format!("expanding {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .context("writing cluster file")?;
        std::fs::rename(&tmp, path).context("publishing cluster file")
    }

    /// The issuer whose key mints tokens (dev cluster, or a deployment that
    /// hands couponctl the issuer key).
    pub fn issuer(&self) -> anyhow::Result<coupon_testkit::Issuer> {
        let i = self
            .issuer
            .as_ref()
            .context("the cluster file has no issuer key to mint tokens with")?;
        Ok(coupon_testkit::Issuer::load(
            &PathBuf::from(&i.private_key_pem),
            &i.iss,
            &i.aud,
        )?)
    }

    /// An admin token for the API: `COUPONCTL_ADMIN_TOKEN`, else minted
    /// with the file's issuer key (10 minutes).
    pub fn admin_token(&self) -> anyhow::Result<String> {
        if let Ok(t) = std::env::var(ADMIN_TOKEN_ENV) {
            if !t.trim().is_empty() {
                return Ok(t.trim().to_owned());
            }
        }
        self.issuer()
            .map(|i| i.token("admin", "admin", 600))
            .with_context(|| format!("no admin credentials: set {ADMIN_TOKEN_ENV}"))
    }

    /// A raft admin client over every member (a dead leader is survived).
    pub fn raft_admin(&self) -> anyhow::Result<coupon_raft::client::AdminClient> {
        let token = self.raft_admin_token()?;
        let urls: Vec<String> = self.raft.iter().map(|m| m.url.clone()).collect();
        Ok(coupon_raft::client::AdminClient::with_members(
            &urls,
            token.trim(),
        )?)
    }

    /// The raft group's admin token: `COUPON_RAFT_ADMIN_TOKEN`, else the
    /// file named by `raft_admin_token_file`.
    pub fn raft_admin_token(&self) -> anyhow::Result<String> {
        if let Ok(t) = std::env::var(RAFT_ADMIN_TOKEN_ENV) {
            if !t.trim().is_empty() {
                return Ok(t.trim().to_owned());
            }
        }
        let file = self.raft_admin_token_file.as_ref().with_context(|| {
            format!("no raft admin token: set {RAFT_ADMIN_TOKEN_ENV} or raft_admin_token_file")
        })?;
        Ok(std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .trim()
            .to_owned())
    }

    pub fn region(&self, region: &str) -> anyhow::Result<&RegionEntry> {
        self.regions
            .get(region)
            .with_context(|| format!("no region `{region}` in the cluster file"))
    }

    /// The URL to send API calls for `region` to: its router, else its node.
    pub fn entry_url(&self, region: &str) -> anyhow::Result<String> {
        let r = self.region(region)?;
        r.router
            .clone()
            .or_else(|| r.node.clone())
            .with_context(|| format!("region `{region}` names neither a router nor a node"))
    }
}

impl RegionEntry {
    pub fn node(&self) -> anyhow::Result<&str> {
        self.node
            .as_deref()
            .context("the cluster file names no node URL for this region")
    }

    pub fn postgres(&self) -> anyhow::Result<&str> {
        self.postgres
            .as_deref()
            .context("the cluster file names no Postgres DSN for this region")
    }
}

#[cfg(test)]
mod tests {
    use super::expand_env;

    fn env(n: &str) -> Option<String> {
        match n {
            "US_DSN" => Some("postgres://u:p\"w@db/coupon".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_escaped_for_json() {
        let out = expand_env(r#"{"postgres": "${US_DSN}", "x": "$HOME"}"#, env).unwrap();
        assert_eq!(
            out,
            r#"{"postgres": "postgres://u:p\"w@db/coupon", "x": "$HOME"}"#
        );
    }

    #[test]
    fn the_documented_deployment_file_parses() {
        let text = include_str!("../../deploy/couponctl.example.json");
        let expanded = expand_env(text, |n| Some(format!("postgres://{n}"))).unwrap();
        let f: super::ClusterFile = serde_json::from_str(&expanded).unwrap();
        assert_eq!(f.regions.len(), 3);
        assert_eq!(
            f.region("eu").unwrap().postgres().unwrap(),
            "postgres://EU_DATABASE_URL"
        );
        assert!(f.issuer.is_none() && f.raft.len() == 3);
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_it() {
        let e = expand_env(r#"{"postgres": "${EU_DSN}"}"#, env).unwrap_err();
        assert!(format!("{e:#}").contains("EU_DSN"), "{e:#}");
    }
}
