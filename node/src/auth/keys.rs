//! The keys user and admin tokens are checked against: the dev issuer's PEM
//! (one key, no `kid`) and/or an identity provider's JWKS, read from a file
//! or a URL, refreshed in the background, and refreshed once more when a
//! token names a `kid` we do not know (the IdP rotated), at most once per
//! [`MIN_REFRESH_INTERVAL`] (configurable) so a flood of made-up kids cannot turn us into
//! a load generator against the IdP.
//!
//! Every key is bound to one algorithm (its JWK `alg`, else its type), and
//! only algorithms of the configured allow-list are kept, so a token cannot
//! pick how it is verified.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Keys kept from one JWKS; the rest are ignored (and logged).
pub const MAX_JWKS_KEYS: usize = 64;
/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// One JWKS fetch gives up after this long.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// An unknown `kid` refreshes the JWKS at most this often (default).
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// The algorithms this node can verify (RFC 7518 names).
pub const SUPPORTED: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("issuer public key {path} is not an Ed25519 PEM: {source}")]
    BadPem {
        path: String,
        source: jsonwebtoken::errors::Error,
    },
    #[error("reading {what}: {detail}")]
    Read { what: String, detail: String },
    #[error("JWKS from {what} is not a JSON key set: {detail}")]
    BadJwks { what: String, detail: String },
    #[error("token algorithm `{0}` is not supported (EdDSA, ES256, RS256)")]
    Algorithm(String),
    #[error("no issuer keys configured: give --issuer-public-key or --jwks")]
    NoKeys,
}

/// Where a JWKS comes from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

impl JwksSource {
    pub fn parse(s: &str) -> JwksSource {
        if s.starts_with("http://") || s.starts_with("https://") {
            JwksSource::Url(s.to_owned())
        } else {
            JwksSource::File(PathBuf::from(s.strip_prefix("file://").unwrap_or(s)))
        }
    }

    fn describe(&self) -> String {
        match self {
            JwksSource::File(p) => p.display().to_string(),
            JwksSource::Url(u) => u.clone(),
        }
    }
}

/// One verification key, bound to its algorithm.
pub struct Key {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// The raw Ed25519 key of an EdDSA key: its signatures are checked in
    /// batches ([`super::ed25519`]), not through `key`.
    pub ed: Option<ed25519_dalek::VerifyingKey>,
}

/// Parses `EdDSA,ES256,RS256` into an allow-list.
pub fn parse_algorithms(spec: &str) -> Result<Vec<Algorithm>, KeyError> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Algorithm>()
                .ok()
                .filter(|a| SUPPORTED.contains(a))
                .ok_or_else(|| KeyError::Algorithm(s.to_owned()))
        })
        .collect()
}

/// The algorithm a JWK is for: its `alg`, else what its key type implies.
fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
        (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(p))
            if p.curve == EllipticCurve::P256 =>
        {
            Some(Algorithm::ES256)
        }
        (Some(KeyAlgorithm::EdDSA), AlgorithmParameters::OctetKeyPair(p))
            if p.curve == EllipticCurve::Ed25519 =>
        {
            Some(Algorithm::EdDSA)
        }
        (Some(_), _) => None,
        (None, AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
        (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        (None, AlgorithmParameters::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

/// The signing keys of a JWKS document that we may use; keys we cannot or
/// must not use (encryption keys, other algorithms, malformed) are skipped,
/// so one odd key does not take the whole set down.
pub fn parse_jwks(text: &[u8], allowed: &[Algorithm], what: &str) -> Result<Vec<Key>, KeyError> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_slice(text).map_err(|e| KeyError::BadJwks {
        what: what.to_owned(),
        detail: e.to_string(),
    })?;
    let mut out = Vec::new();
    for raw in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
            tracing::warn!(jwks = %what, "skipping a JWK this node cannot parse");
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let Some(alg) = jwk_algorithm(&jwk).filter(|a| allowed.contains(a)) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            tracing::warn!(jwks = %what, kid = ?jwk.common.key_id, "skipping a malformed JWK");
            continue;
        };
        if out.len() == MAX_JWKS_KEYS {
            tracing::warn!(jwks = %what, "JWKS has more than {MAX_JWKS_KEYS} usable keys; ignoring the rest");
            break;
        }
        let ed = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) if alg == Algorithm::EdDSA => {
                match super::ed25519::key_from_jwk_x(&p.x) {
                    Some(k) => Some(k),
                    None => {
                        tracing::warn!(jwks = %what, kid = ?jwk.common.key_id, "skipping a malformed Ed25519 JWK");
                        continue;
                    }
                }
            }
            _ => None,
        };
        out.push(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
            ed,
        });
    }
    Ok(out)
}

/// The issuer's keys: fixed PEM keys plus the current JWKS.
pub struct IssuerKeys {
    fixed: Vec<Arc<Key>>,
    allowed: Vec<Algorithm>,
    source: Option<JwksSource>,
    jwks: RwLock<Arc<Vec<Arc<Key>>>>,
    /// When the JWKS was last fetched; the lock makes refreshes single-flight.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: Duration,
    http: reqwest::Client,
}

impl IssuerKeys {
    /// Loads the PEM key and the JWKS; a JWKS that cannot be read at start
    /// is an error (a misconfigured issuer should stop a deploy, not 401
    /// every shopper).
    pub async fn load(
        pem: Option<(PathBuf, String)>,
        source: Option<JwksSource>,
        allowed: Vec<Algorithm>,
        min_refresh: Duration,
    ) -> Result<IssuerKeys, KeyError> {
        let mut fixed = Vec::new();
        if let Some((path, text)) = pem {
            let key =
                DecodingKey::from_ed_pem(text.as_bytes()).map_err(|source| KeyError::BadPem {
                    path: path.display().to_string(),
                    source,
                })?;
            let ed = super::ed25519::key_from_pem(&text);
            if allowed.contains(&Algorithm::EdDSA) {
                fixed.push(Arc::new(Key {
                    kid: None,
                    alg: Algorithm::EdDSA,
                    key,
                    ed,
                }));
            }
        }
        if fixed.is_empty() && source.is_none() {
            return Err(KeyError::NoKeys);
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| KeyError::Read {
                what: "an HTTP client".into(),
                detail: e.to_string(),
            })?;
        let keys = IssuerKeys {
            fixed,
            allowed,
            source,
            jwks: RwLock::default(),
            last_refresh: tokio::sync::Mutex::new(None),
            min_refresh,
            http,
        };
        if keys.source.is_some() {
            keys.refresh().await?;
        }
        Ok(keys)
    }

    pub fn has_jwks(&self) -> bool {
        self.source.is_some()
    }

    /// Keys that may have signed a token with this header: same algorithm,
    /// and the same `kid` when both sides name one.
    pub fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Vec<Arc<Key>> {
        let jwks = self.jwks.read().expect("jwks lock").clone();
        self.fixed
            .iter()
            .chain(jwks.iter())
            .filter(|k| k.alg == alg)
            .filter(|k| match (kid, k.kid.as_deref()) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .cloned()
            .collect()
    }

    /// Whether the JWKS names `kid`.
    pub fn knows(&self, kid: &str) -> bool {
        self.jwks
            .read()
            .expect("jwks lock")
            .iter()
            .any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Re-reads the JWKS (the periodic refresh); keeps the old set on error.
    pub async fn refresh(&self) -> Result<usize, KeyError> {
        let mut last = self.last_refresh.lock().await;
        let n = self.fetch_and_swap().await?;
        *last = Some(Instant::now());
        Ok(n)
    }

    /// The refresh an unknown `kid` triggers: at most one per
    /// `min_refresh` ([`MIN_REFRESH_INTERVAL`] by default); concurrent
    /// callers wait for the one fetch.
    pub async fn refresh_for_unknown_kid(&self, kid: &str) {
        let mut last = self.last_refresh.lock().await;
        if self.knows(kid) {
            return; // another caller's refresh brought it in
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch_and_swap().await {
            tracing::warn!(error = %e, "JWKS refresh for an unknown kid failed; keeping the old keys");
        }
    }

    async fn fetch_and_swap(&self) -> Result<usize, KeyError> {
        let Some(source) = &self.source else {
            return Ok(0);
        };
        let what = source.describe();
        let bytes = self.fetch(source, &what).await?;
        let keys = parse_jwks(&bytes, &self.allowed, &what)?;
        let n = keys.len();
        *self.jwks.write().expect("jwks lock") = Arc::new(keys.into_iter().map(Arc::new).collect());
        tracing::info!(jwks = %what, keys = n, "loaded the issuer's JWKS");
        Ok(n)
    }

    async fn fetch(&self, source: &JwksSource, what: &str) -> Result<Vec<u8>, KeyError> {
        let read = |detail: String| KeyError::Read {
            what: what.to_owned(),
            detail,
        };
        let bytes = match source {
            JwksSource::File(p) => tokio::fs::read(p).await.map_err(|e| read(e.to_string()))?,
            JwksSource::Url(u) => {
                let mut resp = self
                    .http
                    .get(u)
                    .send()
                    .await
                    .map_err(|e| read(e.to_string()))?;
                if !resp.status().is_success() {
                    return Err(read(format!("answered {}", resp.status())));
                }
                // Read chunk by chunk: a huge or endless answer stops at the cap.
                let mut buf = Vec::new();
                while let Some(chunk) = resp.chunk().await.map_err(|e| read(e.to_string()))? {
                    buf.extend_from_slice(&chunk);
                    if buf.len() > MAX_JWKS_BYTES {
                        break;
                    }
                }
                buf
            }
        };
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(read(format!("larger than {MAX_JWKS_BYTES} bytes")));
        }
        Ok(bytes)
    }
}
