//! User and admin tokens from an identity provider's JWKS (RS256, ES256,
//! EdDSA by `kid`, with an algorithm allow-list), the dev issuer's PEM
//! alongside, the refresh an unknown `kid` triggers, and hostile claims.

use super::helpers::TestApp;
use coupon_testkit::idp::{jwks, IdpKey};
use coupon_testkit::issuer::{DEV_AUD, DEV_ISS};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Status and body of an authenticated call that, once past auth, is a 404
/// (no such redemption): 401 means the token was refused.
async fn call(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let resp = app.get("/v1/redemptions/nope", Some(token)).await;
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn jwks_file(name: &str, body: &str) -> std::path::PathBuf {
    let dir = coupon_testkit::scratch_root().join(format!("jwks-{}", coupon_testkit::unique_tag()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[tokio::test]
async fn tokens_signed_by_keys_of_a_jwks_file_are_accepted_by_kid_and_algorithm() {
    let rsa = IdpKey::rs256("rsa-1").unwrap();
    let ec = IdpKey::es256("ec-1");
    let file = jwks_file("both.json", &jwks(&[&rsa, &ec]));
    let app = TestApp::spawn_with(|c| c.tokens.jwks = Some(file.display().to_string())).await;
    for key in [&rsa, &ec] {
        let (s, b) = call(&app, &key.token("shopper", "user", DEV_ISS, DEV_AUD)).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "{:?} token accepted: {b}",
            key.alg
        );
    }
    // The dev issuer's PEM key is still one of the keys.
    assert_eq!(call(&app, &app.user("u1")).await.0, StatusCode::NOT_FOUND);
    // A key that is not the published one under a known kid, and the right
    // key under another audience, are refused.
    let impostor = IdpKey::es256("ec-1");
    let (s, _) = call(&app, &impostor.token("shopper", "user", DEV_ISS, DEV_AUD)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&app, &ec.token("shopper", "user", DEV_ISS, "other-api")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // An allow-list without ES256 refuses ES256 tokens, keeps RS256.
    let strict = TestApp::spawn_with(|c| {
        c.tokens.jwks = Some(file.display().to_string());
        c.tokens.token_algorithms = "RS256,EdDSA".into();
    })
    .await;
    let (s, b) = call(&strict, &ec.token("shopper", "user", DEV_ISS, DEV_AUD)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let (s, _) = call(&strict, &rsa.token("shopper", "user", DEV_ISS, DEV_AUD)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A JWKS served over HTTP whose body can be swapped and whose fetches are counted.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(initial: String) -> JwksServer {
    let body = Arc::new(Mutex::new(initial));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (b, f) = (body.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (b, f) = (b.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                let text = b.lock().unwrap().clone();
                text
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer { url, body, fetches }
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_jwks_once_per_interval_and_failures_are_not_cached() {
    let old = IdpKey::es256("old");
    let rotated = IdpKey::es256("new");
    let idp = serve_jwks(jwks(&[&old])).await;
    let url = idp.url.clone();
    let app = TestApp::spawn_with(move |c| {
        c.tokens.jwks = Some(url);
        c.tokens.jwks_min_refresh_ms = 1_000;
    })
    .await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "loaded at start");
    let token = rotated.token("shopper", "user", DEV_ISS, DEV_AUD);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Many requests naming kids nobody published: one refresh, not one each.
    let calls = (0..20).map(|i| {
        let t = IdpKey::es256(&format!("made-up-{i}")).token("bot", "user", DEV_ISS, DEV_AUD);
        let app = &app;
        async move { call(app, &t).await.0 }
    });
    for s in futures::future::join_all(calls).await {
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        2,
        "one refresh for the burst"
    );
    // The IdP rotates; within the interval the new kid is still unknown.
    *idp.body.lock().unwrap() = jwks(&[&old, &rotated]);
    assert_eq!(call(&app, &token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "rate-limited");
    // After the interval the same token (refused before: not cached) passes.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (s, b) = call(&app, &token).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "rotated key accepted: {b}");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 3);
    // Known kids never refresh.
    call(&app, &old.token("shopper", "user", DEV_ISS, DEV_AUD)).await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 3);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn hostile_claims_are_refused_with_our_own_words() {
    let app = TestApp::spawn().await;
    let claims = |sub: &str, extra: Value| {
        let mut c =
            json!({"sub": sub, "role": "user", "iss": DEV_ISS, "aud": DEV_AUD, "exp": now() + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        app.issuer.sign(&c)
    };
    let long = "u".repeat(10_000);
    let cases = [
        ("future nbf", claims("u1", json!({"nbf": now() + 3600}))),
        ("empty sub", claims("", json!({}))),
        ("10 KB sub", claims(&long, json!({}))),
        ("NUL in sub", claims("u\u{0}1", json!({}))),
        ("expired", claims("u1", json!({"exp": now() - 600}))),
        ("no sub", {
            let c = json!({"role": "user", "iss": DEV_ISS, "aud": DEV_AUD, "exp": now() + 600});
            app.issuer.sign(&c)
        }),
        (
            "other key",
            coupon_testkit::Issuer::generate(DEV_ISS, DEV_AUD).user("u1"),
        ),
    ];
    for (what, token) in cases {
        let (s, b) = call(&app, &token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {b}");
        assert_eq!(b["code"], "unauthorized", "{what}: {b}");
        let detail = b["detail"].as_str().unwrap();
        // jsonwebtoken's texts name its internals ("ExpiredSignature",
        // "InvalidSignature", "Error(…)"); ours are sentences.
        for leak in ["Signature", "Error", "Kind", "Json", "Base64"] {
            assert!(
                !detail.contains(leak),
                "{what}: detail leaks `{leak}`: {detail}"
            );
        }
    }
    // A past nbf and a 255-character sub are fine.
    let ok = claims(&"u".repeat(255), json!({"nbf": now() - 60}));
    assert_eq!(call(&app, &ok).await.0, StatusCode::NOT_FOUND);
}
