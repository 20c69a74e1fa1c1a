//! Key material of a local cluster: one Ed25519 service key per region
//! (`<region>-1.pem`, public half `<region>-1.pub.pem`, in `service-keys/`)
//! and the raft group's secret and admin token (random, 0600 files).

use crate::{io, Issuer, KitError};
use std::path::{Path, PathBuf};

pub const SERVICE_KEYS_DIR: &str = "service-keys";

/// The kid of a region's current service key.
pub fn kid(region: &str) -> String {
    format!("{region}-1")
}

/// Makes a service key for every region that has none; returns the folder.
pub fn service_keys(root: &Path, regions: &[String]) -> Result<PathBuf, KitError> {
    let dir = root.join(SERVICE_KEYS_DIR);
    for r in regions {
        if !dir.join(format!("{}.pem", kid(r))).exists() {
            Issuer::generate(r, r).write(&dir, &kid(r))?;
        }
    }
    Ok(dir)
}

/// A key pair that is *not* the region's published one (credential drills).
pub fn wrong_key(root: &Path, region: &str) -> Result<PathBuf, KitError> {
    let dir = root.join("wrong-keys");
    Ok(Issuer::generate(region, region)
        .write(&dir, &kid(region))?
        .0)
}

/// A random secret kept in `root/<name>` (created once, 0600).
pub fn secret(root: &Path, name: &str) -> Result<String, KitError> {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join(name);
    if let Ok(s) = std::fs::read_to_string(&path) {
        if s.trim().len() >= 16 {
            return Ok(s.trim().to_owned());
        }
    }
    let v: String = (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rand_index(36)]))
        .collect();
    std::fs::create_dir_all(root).map_err(io("creating cluster root"))?;
    std::fs::write(&path, &v).map_err(io(format!("writing {}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(io("chmod secret"))?;
    Ok(v)
}

fn rand_index(n: usize) -> usize {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    (u64::from_le_bytes(b) % n as u64) as usize
}
