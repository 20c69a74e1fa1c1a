//! JWT authentication: user and admin tokens signed by the issuer (EdDSA).
//!
//! The user id always comes from the verified token's `sub`, never a body.
//! Keys are looked up by `kid` so the issuer can rotate with overlap.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
}

/// Verifies tokens against the issuer's public keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("issuer public key is not an Ed25519 PEM: {0}")]
    BadPem(#[from] jsonwebtoken::errors::Error),
}

impl Verifier {
    /// `keys`: (kid, PEM of the Ed25519 public key) pairs.
    pub fn new(keys: &[(Option<String>, String)], iss: &str, aud: &str) -> Result<Self, KeyError> {
        let keys = keys
            .iter()
            .map(|(kid, pem)| Ok((kid.clone(), DecodingKey::from_ed_pem(pem.as_bytes())?)))
            .collect::<Result<Vec<_>, KeyError>>()?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[iss]);
        validation.set_audience(&[aud]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        // A token not valid yet is not valid: `nbf` is checked when present.
        validation.validate_nbf = true;
        Ok(Verifier { keys, validation })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header = decode_header(token)
            .map_err(|_| ApiError::Unauthorized("bearer token is not a JWT".into()))?;
        let candidates = self
            .keys
            .iter()
            .filter(|(kid, _)| header.kid.is_none() || kid.is_none() || *kid == header.kid);
        let mut last = None;
        for (_, key) in candidates {
            match decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = Some(e),
            }
        }
        // The reason is logged, not echoed: library error text tells a
        // prober which check it passed.
        let why = last.map_or("no key for this kid".to_owned(), |e| e.to_string());
        tracing::info!(%why, "bearer token rejected");
        Err(ApiError::Unauthorized(
            "bearer token is invalid, expired or not yet valid".into(),
        ))
    }
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
        let claims = state.verifier().verify(bearer(parts)?)?;
        // The subject becomes the stored user id: the same rules as any
        // user id a body names (1-255 characters, no control characters).
        if crate::domain::text::display("sub", &claims.sub, crate::domain::text::MAX_USER_ID)
            .is_err()
        {
            return Err(ApiError::Unauthorized(
                "token subject must be a user id of 1-255 visible characters".into(),
            ));
        }
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
