//! Verifying a user or admin token: the header's algorithm must be on the
//! allow-list and match the key's, the signature must verify with a key of
//! the issuer, and `exp`, `nbf`, `iss`, `aud` and `sub` must hold. Tokens
//! that pass are cached until their `exp` ([`super::cache`]). EdDSA
//! signatures are checked in batches ([`super::ed25519`]), the others by
//! the JWT library; the claims always by the JWT library's rules, built
//! once.
//!
//! A 401 says *what* was wrong in our own words; the library's error text
//! (which names its internals) only goes to the log.

use super::cache::{now_secs, TokenCache};
use super::ed25519::BatchVerifier;
use super::keys::{IssuerKeys, Key};
use super::Claims;
use crate::error::ApiError;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use std::sync::Arc;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;
/// Longest user id (`sub`) accepted, the same bound as every user id field.
pub const MAX_SUB_LEN: usize = 255;

/// Verifies tokens against the issuer's keys. Cheap to clone.
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

struct Inner {
    keys: IssuerKeys,
    /// `exp`, `nbf`, `iss`, `aud`, `sub`: checked after the signature held.
    claims_rules: Validation,
    signatures: BatchVerifier,
    cache: TokenCache<Claims>,
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::Unauthorized(format!("token rejected: {why}"))
}

/// Our words for a library error (never its own text).
fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidSignature => "the signature does not verify with the issuer's keys",
        ErrorKind::InvalidIssuer => "the token comes from another issuer (iss)",
        ErrorKind::InvalidAudience => "the token is meant for another audience (aud)",
        ErrorKind::MissingRequiredClaim(_) => "a required claim (sub, iss, aud, exp) is missing",
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match the key",
        _ => "the token's claims are malformed",
    }
}

impl Verifier {
    pub fn new(keys: IssuerKeys, iss: &str, aud: &str, cache_capacity: usize) -> Verifier {
        Verifier::with_leeway(keys, iss, aud, cache_capacity, LEEWAY_SECS)
    }

    pub fn with_leeway(
        keys: IssuerKeys,
        iss: &str,
        aud: &str,
        cache_capacity: usize,
        leeway: u64,
    ) -> Verifier {
        let mut rules = Validation::new(Algorithm::EdDSA);
        // The signature is checked before these rules run (`signed_by`),
        // by the key the header's algorithm and kid selected.
        rules.insecure_disable_signature_validation();
        rules.set_issuer(&[iss]);
        rules.set_audience(&[aud]);
        rules.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        rules.validate_nbf = true;
        rules.leeway = leeway;
        Verifier(Arc::new(Inner {
            keys,
            claims_rules: rules,
            signatures: BatchVerifier::spawn(),
            cache: TokenCache::new(cache_capacity),
        }))
    }

    pub fn keys(&self) -> &IssuerKeys {
        &self.0.keys
    }

    /// Verified tokens currently cached.
    pub fn cached(&self) -> usize {
        self.0.cache.len()
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        if let Some(claims) = self.0.cache.get(token, now_secs()) {
            return Ok(claims);
        }
        let claims = self.verify_uncached(token).await?;
        self.0
            .cache
            .put(token, claims.exp, claims.clone(), now_secs());
        Ok(claims)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Claims, ApiError> {
        let header =
            decode_header(token).map_err(|_| unauthorized("the bearer token is not a JWT"))?;
        let keys = &self.0.keys;
        let mut candidates = keys.candidates(header.alg, header.kid.as_deref());
        if let Some(kid) = header.kid.as_deref() {
            if keys.has_jwks() && !keys.knows(kid) {
                // The IdP may have rotated: one (rate-limited) refresh.
                keys.refresh_for_unknown_kid(kid).await;
                candidates = keys.candidates(header.alg, Some(kid));
            }
        }
        if candidates.is_empty() {
            return Err(unauthorized(
                "no key of the issuer matches the token's algorithm and kid",
            ));
        }
        let Some((message, signature)) = token.rsplit_once('.') else {
            return Err(unauthorized("the bearer token is not a JWT"));
        };
        for key in &candidates {
            if !self.signed_by(key, message.as_bytes(), signature).await {
                continue;
            }
            // Signed by the issuer: now the claims alone decide.
            return match decode::<Claims>(token, &key.key, &self.0.claims_rules) {
                Ok(data) => check_claims(data.claims),
                Err(e) => {
                    tracing::info!(error = %e, "token rejected");
                    Err(unauthorized(reason(e.kind())))
                }
            };
        }
        tracing::info!("token rejected: no candidate key verifies its signature");
        Err(unauthorized(reason(&ErrorKind::InvalidSignature)))
    }

    async fn signed_by(&self, key: &Key, message: &[u8], signature: &str) -> bool {
        match key.ed {
            Some(ed) => self.0.signatures.verify(ed, message, signature).await,
            None => {
                jsonwebtoken::crypto::verify(signature, message, &key.key, key.alg).unwrap_or(false)
            }
        }
    }
}

/// What the signature cannot tell: a usable user id.
fn check_claims(c: Claims) -> Result<Claims, ApiError> {
    if c.sub.is_empty() {
        return Err(unauthorized("the token's sub is empty"));
    }
    if c.sub.chars().count() > MAX_SUB_LEN {
        return Err(unauthorized(
            "the token's sub is longer than 255 characters",
        ));
    }
    if c.sub.chars().any(char::is_control) {
        return Err(unauthorized("the token's sub contains control characters"));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{IssuerKeys, MIN_REFRESH_INTERVAL};
    use coupon_testkit::Issuer;
    use jsonwebtoken::Algorithm;

    async fn verifier(issuer: &Issuer, leeway: u64, capacity: usize) -> Verifier {
        let pem = Some(("dev.pub.pem".into(), issuer.public_pem().to_owned()));
        let keys = IssuerKeys::load(pem, None, vec![Algorithm::EdDSA], MIN_REFRESH_INTERVAL)
            .await
            .unwrap();
        Verifier::with_leeway(keys, &issuer.iss, &issuer.aud, capacity, leeway)
    }

    #[tokio::test]
    async fn a_cached_token_is_refused_once_it_expires() {
        let issuer = Issuer::generate("iss", "aud");
        let v = verifier(&issuer, 0, 10).await;
        let token = issuer.token("u1", "user", 1);
        assert_eq!(v.verify(&token).await.unwrap().sub, "u1");
        assert_eq!(v.cached(), 1);
        tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
        assert!(
            matches!(v.verify(&token).await, Err(ApiError::Unauthorized(_))),
            "an expired token is refused even though it was cached"
        );
    }

    #[tokio::test]
    async fn failures_are_never_cached_and_the_bound_holds() {
        let issuer = Issuer::generate("iss", "aud");
        let v = verifier(&issuer, 5, 50).await;
        let stranger = Issuer::generate("iss", "aud");
        for _ in 0..3 {
            assert!(v.verify(&stranger.user("u1")).await.is_err());
        }
        assert!(v.verify(&issuer.token("", "user", 600)).await.is_err());
        assert_eq!(v.cached(), 0, "no failure is cached");
        for i in 0..200 {
            v.verify(&issuer.user(&format!("u{i}"))).await.unwrap();
            assert!(v.cached() <= 50);
        }
    }
}
