//! A token issuer for development and tests: an Ed25519 key pair and
//! EdDSA-signed JWTs carrying `sub`, `role`, `iss`, `aud`, `exp`.
//!
//! Key files are in the standard encodings every toolkit reads: the private
//! key as PKCS#8 v1 (RFC 8410 `OneAsymmetricKey` version 0, seed only) and
//! the public key as SPKI. ring generates PKCS#8 v2 (seed plus public key),
//! which OpenSSL 3, Python's `cryptography` and Node refuse ("extra data"),
//! so we re-encode before anything is written.

use crate::{io, KitError};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub const DEV_ISS: &str = "coupon-dev-issuer";
pub const DEV_AUD: &str = "coupon-api";
/// SPKI prefix of an Ed25519 public key (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §10.3): SEQUENCE,
/// version 0, algorithm id-Ed25519, OCTET STRING { OCTET STRING seed }.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Re-encodes an Ed25519 PKCS#8 document (v1 or v2) as v1: the 32-byte seed
/// sits at the same offset in both, after the same algorithm identifier.
fn pkcs8_v1(doc: &[u8]) -> Result<Vec<u8>, KitError> {
    let same_shape = doc.len() >= 48
        && doc[0] == 0x30
        && doc[2..4] == ED25519_PKCS8_V1_PREFIX[2..4]
        && doc[5..16] == ED25519_PKCS8_V1_PREFIX[5..16];
    if !same_shape {
        return Err(KitError::Failed("not an Ed25519 PKCS#8 key".into()));
    }
    let mut v1 = ED25519_PKCS8_V1_PREFIX.to_vec();
    v1.extend_from_slice(&doc[16..48]);
    Ok(v1)
}

#[derive(Clone)]
pub struct Issuer {
    pkcs8: Vec<u8>,
    public_pem: String,
    pub iss: String,
    pub aud: String,
}

fn pem(tag: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
        body.join("\n")
    )
}

fn unpem(text: &str) -> Result<Vec<u8>, KitError> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| KitError::Failed(format!("bad PEM: {e}")))
}

impl Issuer {
    pub fn generate(iss: &str, aud: &str) -> Issuer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("ed25519 keygen")
            .as_ref()
            .to_vec();
        Issuer::from_pkcs8(pkcs8, iss, aud).expect("fresh key parses")
    }

    fn from_pkcs8(pkcs8: Vec<u8>, iss: &str, aud: &str) -> Result<Issuer, KitError> {
        // Checked with ring as given (v2 carries the public key to compare),
        // then kept as v1 for every file we write.
        let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|e| KitError::Failed(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(kp.public_key().as_ref());
        Ok(Issuer {
            pkcs8: pkcs8_v1(&pkcs8)?,
            public_pem: pem("PUBLIC KEY", &spki),
            iss: iss.into(),
            aud: aud.into(),
        })
    }

    /// Load a private key PEM (PKCS#8 v1 or v2; [`write`](Self::write) writes v1).
    pub fn load(private_pem: &Path, iss: &str, aud: &str) -> Result<Issuer, KitError> {
        let text = std::fs::read_to_string(private_pem)
            .map_err(io(format!("reading {}", private_pem.display())))?;
        Issuer::from_pkcs8(unpem(&text)?, iss, aud)
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    pub fn private_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// Write `<stem>.pem` (private, 0600) and `<stem>.pub.pem`.
    pub fn write(
        &self,
        dir: &Path,
        stem: &str,
    ) -> Result<(std::path::PathBuf, std::path::PathBuf), KitError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(io("creating key dir"))?;
        let private = dir.join(format!("{stem}.pem"));
        let public = dir.join(format!("{stem}.pub.pem"));
        std::fs::write(&private, self.private_pem()).map_err(io("writing private key"))?;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod key"))?;
        std::fs::write(&public, &self.public_pem).map_err(io("writing public key"))?;
        Ok((private, public))
    }

    /// A signed token for `sub` with `role` (`user` or `admin`).
    pub fn token(&self, sub: &str, role: &str, ttl_secs: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        self.token_expiring_at(sub, role, now + ttl_secs)
    }

    /// A signed token whose `exp` is `exp` (Unix seconds), past or future.
    pub fn token_expiring_at(&self, sub: &str, role: &str, exp: u64) -> String {
        self.sign(&serde_json::json!({
            "sub": sub, "role": role, "iss": self.iss, "aud": self.aud, "exp": exp,
        }))
    }

    /// Signs arbitrary claims (tests of hostile tokens: `nbf`, odd `sub`, …).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_ed_der(&self.pkcs8);
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).expect("sign token")
    }

    /// A signed token with the claims of [`user`](Self::user) for `sub`,
    /// overridden by `extra` (e.g. `{"nbf": ...}`), for hostile-token tests.
    pub fn token_with(&self, sub: &str, extra: serde_json::Value) -> String {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 3600;
        let mut claims = serde_json::json!({
            "sub": sub, "role": "user", "iss": self.iss, "aud": self.aud, "exp": exp,
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        let key = EncodingKey::from_ed_der(&self.pkcs8);
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("sign token")
    }

    pub fn user(&self, sub: &str) -> String {
        self.token(sub, "user", 3600)
    }

    pub fn admin(&self) -> String {
        self.token("admin", "admin", 3600)
    }
}
