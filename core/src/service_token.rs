//! Service tokens: short-lived EdDSA JWTs a region signs for calls to another
//! region's node (router → node). Audience = the target region; `kid` names
//! the signing key so keys rotate with overlap (docs/architecture.md §4 step 1).

use jsonwebtoken::{
    decode, decode_header, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Header that carries the token (the user's `Authorization` stays untouched).
pub const SERVICE_TOKEN_HEADER: &str = "coupon-service-token";
/// Set by a node on a 401 caused by the service token (not the user's token).
pub const SERVICE_AUTH_FAILED_HEADER: &str = "coupon-service-auth";
/// Lifetime of a minted token.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// A cached token is re-minted once it is older than this.
const REMINT_AFTER: Duration = Duration::from_secs(20);
/// Clock skew tolerated between regions.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Signing region.
    pub iss: String,
    /// Calling component (`router`, `node`, `couponctl`).
    pub sub: String,
    /// Target region.
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceTokenError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an Ed25519 PEM key: {source}")]
    BadKey {
        path: String,
        source: jsonwebtoken::errors::Error,
    },
    #[error("service token rejected: {0}")]
    Rejected(String),
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read(path: &Path) -> Result<String, ServiceTokenError> {
    std::fs::read_to_string(path).map_err(|source| ServiceTokenError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Mints tokens for one region with one key.
pub struct Signer {
    region: String,
    component: String,
    kid: String,
    key: EncodingKey,
    cache: Mutex<HashMap<String, (u64, String)>>,
}

impl Signer {
    /// `private_pem`: PKCS#8 PEM of the region's Ed25519 key, named `kid`.
    pub fn load(
        private_pem: &Path,
        kid: &str,
        region: &str,
        component: &str,
    ) -> Result<Signer, ServiceTokenError> {
        let pem = read(private_pem)?;
        let key = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|source| {
            ServiceTokenError::BadKey {
                path: private_pem.display().to_string(),
                source,
            }
        })?;
        Ok(Signer {
            region: region.to_owned(),
            component: component.to_owned(),
            kid: kid.to_owned(),
            key,
            cache: Mutex::default(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for calls into `audience` (reused for a few seconds).
    pub fn token(&self, audience: &str) -> String {
        let t = now();
        let mut cache = self.cache.lock().expect("signer cache");
        if let Some((iat, tok)) = cache.get(audience) {
            if t.saturating_sub(*iat) < REMINT_AFTER.as_secs() {
                return tok.clone();
            }
        }
        let claims = ServiceClaims {
            iss: self.region.clone(),
            sub: self.component.clone(),
            aud: audience.to_owned(),
            iat: t,
            exp: t + TOKEN_TTL.as_secs(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let tok = jsonwebtoken::encode(&header, &claims, &self.key).expect("sign service token");
        cache.insert(audience.to_owned(), (t, tok.clone()));
        tok
    }
}

/// The public keys of every region, by `kid`, and the audience we accept.
pub struct KeyRing {
    audience: String,
    keys: HashMap<String, DecodingKey>,
}

/// Region part of a kid such as `eu-1` (the peer label of metrics).
pub fn region_of_kid(kid: &str) -> &str {
    kid.rsplit_once('-').map_or(kid, |(r, _)| r)
}

impl KeyRing {
    /// Loads every `<kid>.pub.pem` in `dir`.
    pub fn load_dir(dir: &Path, audience: &str) -> Result<KeyRing, ServiceTokenError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ServiceTokenError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        let mut keys = HashMap::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(kid) = name.strip_suffix(".pub.pem") else {
                continue;
            };
            let pem = read(&e.path())?;
            let key = DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|source| {
                ServiceTokenError::BadKey {
                    path: e.path().display().to_string(),
                    source,
                }
            })?;
            keys.insert(kid.to_owned(), key);
        }
        Ok(KeyRing {
            audience: audience.to_owned(),
            keys,
        })
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The kid a token claims (unverified), for labelling a failure.
    pub fn claimed_kid(token: &str) -> Option<String> {
        decode_header(token).ok()?.kid
    }

    /// Verifies signature (by `kid`), expiry and audience; the issuer must
    /// be the region the kid belongs to.
    pub fn verify(&self, token: &str) -> Result<ServiceClaims, ServiceTokenError> {
        let rejected = |why: String| ServiceTokenError::Rejected(why);
        let header = decode_header(token).map_err(|e| rejected(format!("not a JWT: {e}")))?;
        let kid = header.kid.ok_or_else(|| rejected("no kid".into()))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| rejected(format!("unknown kid {kid}")))?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "aud", "iss"]);
        v.leeway = LEEWAY_SECS;
        let data = decode::<ServiceClaims>(token, key, &v).map_err(|e| rejected(e.to_string()))?;
        if data.claims.iss != region_of_kid(&kid) {
            return Err(rejected(format!(
                "issuer {} does not own kid {kid}",
                data.claims.iss
            )));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &Path, kid: &str) -> std::path::PathBuf {
        let i = coupon_testkit::Issuer::generate("x", "y");
        i.write(dir, kid).unwrap().0
    }

    #[test]
    fn a_token_verifies_only_for_its_audience_and_key() {
        let dir = coupon_testkit::scratch_root().join(format!("svc-{}", std::process::id()));
        let us = keys(&dir, "us-1");
        let _eu = keys(&dir, "eu-1");
        let signer = Signer::load(&us, "us-1", "us", "router").unwrap();
        let eu_ring = KeyRing::load_dir(&dir, "eu").unwrap();
        let ap_ring = KeyRing::load_dir(&dir, "ap").unwrap();
        let claims = eu_ring.verify(&signer.token("eu")).unwrap();
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("us", "eu"));
        assert!(
            ap_ring.verify(&signer.token("eu")).is_err(),
            "wrong audience"
        );
        // A key that is not the one published under `us-1`.
        let wrong_dir = dir.join("wrong");
        let wrong = keys(&wrong_dir, "us-1");
        let forged = Signer::load(&wrong, "us-1", "us", "router").unwrap();
        assert!(eu_ring.verify(&forged.token("eu")).is_err(), "wrong key");
        // The issuer must be the kid's region.
        let liar = Signer::load(&us, "us-1", "eu", "router").unwrap();
        assert!(
            eu_ring.verify(&liar.token("eu")).is_err(),
            "iss/kid mismatch"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
