//! JWT authentication of users and admins.
//!
//! The user id always comes from the verified token's `sub`, never a body.
//! Keys come from the dev issuer's PEM and/or an identity provider's JWKS
//! ([`keys`]); tokens are checked by [`verifier`] and cached until their
//! `exp` ([`cache`]).

pub mod cache;
pub mod ed25519;
pub mod keys;
pub mod verifier;

pub use keys::KeyError;
pub use verifier::Verifier;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The claims we use; `iss`, `aud`, `nbf` are checked by the verifier, and
/// any other claim an identity provider adds is ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// `user` or `admin`; a token without one (most IdPs) is a user's.
    #[serde(default = "user_role")]
    pub role: String,
    pub exp: u64,
}

fn user_role() -> String {
    "user".to_owned()
}

/// Where user and admin tokens' keys come from, besides the dev issuer PEM.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenConfig {
    /// JWKS of the identity provider: a file path or an http(s) URL. Its
    /// signing keys join the issuer PEM's key; a token naming an unknown
    /// `kid` refreshes it once (at most every 10 s).
    #[arg(long, env = "COUPON_JWKS")]
    pub jwks: Option<String>,
    /// How often the JWKS is re-read, in seconds.
    #[arg(long, env = "COUPON_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwks_refresh_secs: u64,
    /// Least time between two refreshes caused by unknown `kid`s, in ms.
    #[arg(long, env = "COUPON_JWKS_MIN_REFRESH_MS", default_value_t = 10_000)]
    pub jwks_min_refresh_ms: u64,
    /// Token algorithms accepted (comma-separated; EdDSA, ES256, RS256).
    #[arg(
        long,
        env = "COUPON_TOKEN_ALGORITHMS",
        default_value = "EdDSA,ES256,RS256"
    )]
    pub token_algorithms: String,
    /// Verified tokens kept in memory (each until its own `exp`).
    #[arg(long, env = "COUPON_TOKEN_CACHE_CAPACITY", default_value_t = cache::DEFAULT_CAPACITY)]
    pub token_cache_capacity: usize,
}

/// Builds the verifier from the node's configuration and, with a JWKS,
/// starts its periodic refresh.
pub async fn build(
    pem_path: Option<&PathBuf>,
    iss: &str,
    aud: &str,
    cfg: &TokenConfig,
) -> Result<Verifier, KeyError> {
    let pem = match pem_path {
        None => None,
        Some(p) => Some((
            p.clone(),
            std::fs::read_to_string(p).map_err(|e| KeyError::Read {
                what: p.display().to_string(),
                detail: e.to_string(),
            })?,
        )),
    };
    let allowed = keys::parse_algorithms(&cfg.token_algorithms)?;
    let source = cfg.jwks.as_deref().map(keys::JwksSource::parse);
    let min_refresh = std::time::Duration::from_millis(cfg.jwks_min_refresh_ms);
    let keys = keys::IssuerKeys::load(pem, source, allowed, min_refresh).await?;
    let verifier = Verifier::new(keys, iss, aud, cfg.token_cache_capacity);
    if verifier.keys().has_jwks() && cfg.jwks_refresh_secs > 0 {
        let v = verifier.clone();
        let period = std::time::Duration::from_secs(cfg.jwks_refresh_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = v.keys().refresh().await {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the old keys");
                }
            }
        });
    }
    Ok(verifier)
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be a Bearer token".into()))
}

/// Any authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    pub admin: bool,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = state.verifier().verify(bearer(parts)?).await?;
        match claims.role.as_str() {
            "user" => Ok(Caller {
                id: claims.sub,
                admin: false,
            }),
            "admin" => Ok(Caller {
                id: claims.sub,
                admin: true,
            }),
            _ => Err(ApiError::Forbidden),
        }
    }
}

/// A shopper: role `user`.
#[derive(Debug, Clone)]
pub struct User(pub String);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.admin {
            return Err(ApiError::Forbidden);
        }
        Ok(User(caller.id))
    }
}

/// Marketing and operators: role `admin`.
#[derive(Debug, Clone)]
pub struct Admin(pub String);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.admin {
            return Err(ApiError::Forbidden);
        }
        Ok(Admin(caller.id))
    }
}
