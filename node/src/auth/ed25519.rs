//! Ed25519 signatures of never-seen tokens, verified in batches.
//!
//! A launch burst brings tens of thousands of tokens the node has never
//! seen, each needing one signature check: through `ring` that was 38 % of
//! the node's CPU (about 50 µs a token on the project's VM). Checked one by
//! one with `ed25519-dalek` it is about 34 µs; checked together in one
//! batch equation about 19 µs a token (`docs/benchmarks.md`). So every
//! check that arrives while a batch is being verified joins the next one, on
//! a thread of its own (the work is pure CPU and must not stall the async
//! workers). A lone check goes out at once: an idle node waits for nothing.
//!
//! A batch that fails is split in halves and each half checked again, down
//! to single signatures: one forged token costs its batch about two more
//! checks per halving (log₂ of the batch), not one check per member, so bad
//! tokens cannot make every good one in their batch pay a full check.
//!
//! The batch equation accepts exactly the signatures a holder of the
//! issuer's private key can make; it differs from a single check only on
//! crafted small-order components, which change a valid signature's bytes
//! without changing what it signs (`docs/decisions.md`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Signatures per batch: the gain flattens out past a few dozen, and a
/// batch's wait is every member's latency.
const BATCH: usize = 64;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE,
/// AlgorithmIdentifier { id-Ed25519 }, BIT STRING of 32 bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The raw key of an Ed25519 public key PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn key_from_pem(pem: &str) -> Option<VerifyingKey> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).ok()?;
    let raw = der.strip_prefix(&SPKI_PREFIX[..])?;
    VerifyingKey::from_bytes(raw.try_into().ok()?).ok()
}

/// The raw key of an OKP JWK's `x` (base64url, 32 bytes).
pub fn key_from_jwk_x(x: &str) -> Option<VerifyingKey> {
    let raw = URL_SAFE_NO_PAD.decode(x).ok()?;
    VerifyingKey::from_bytes(raw.as_slice().try_into().ok()?).ok()
}

struct Check {
    key: VerifyingKey,
    message: Vec<u8>,
    signature: Signature,
    reply: oneshot::Sender<bool>,
}

/// Hands signature checks to the batching thread. Cheap to clone.
#[derive(Clone)]
pub struct BatchVerifier {
    tx: mpsc::Sender<Check>,
}

impl Default for BatchVerifier {
    fn default() -> Self {
        Self::spawn()
    }
}

impl BatchVerifier {
    pub fn spawn() -> BatchVerifier {
        let (tx, rx) = mpsc::channel::<Check>();
        std::thread::Builder::new()
            .name("ed25519-batch".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                // Ends when every sender is gone (the verifier was dropped).
                while let Ok(first) = rx.recv() {
                    batch.push(first);
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(c) => batch.push(c),
                            Err(_) => break,
                        }
                    }
                    let mut verdicts = vec![false; batch.len()];
                    judge(&batch, &mut verdicts);
                    for (check, ok) in batch.drain(..).zip(verdicts) {
                        let _ = check.reply.send(ok);
                    }
                }
            })
            .expect("spawning the signature thread");
        BatchVerifier { tx }
    }

    /// Whether `signature_b64` (base64url, as in a JWT) is `key`'s
    /// signature of `message`.
    pub async fn verify(&self, key: VerifyingKey, message: &[u8], signature_b64: &str) -> bool {
        let Some(signature) = decode_signature(signature_b64) else {
            return false;
        };
        let (reply, verdict) = oneshot::channel();
        let check = Check {
            key,
            message: message.to_vec(),
            signature,
            reply,
        };
        if self.tx.send(check).is_err() {
            return false;
        }
        verdict.await.unwrap_or(false)
    }
}

fn decode_signature(b64: &str) -> Option<Signature> {
    // 64 bytes are 86 base64url characters; refuse anything longer before
    // decoding it.
    if b64.len() != 86 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(b64).ok()?;
    Some(Signature::from_bytes(raw.as_slice().try_into().ok()?))
}

/// Writes each check's verdict: the whole slice at once when it holds,
/// otherwise each half again, down to single checks.
fn judge(checks: &[Check], verdicts: &mut [bool]) {
    if let [one] = checks {
        verdicts[0] = one.key.verify(&one.message, &one.signature).is_ok();
        return;
    }
    let messages: Vec<&[u8]> = checks.iter().map(|c| c.message.as_slice()).collect();
    let signatures: Vec<Signature> = checks.iter().map(|c| c.signature).collect();
    let keys: Vec<VerifyingKey> = checks.iter().map(|c| c.key).collect();
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        verdicts.fill(true);
        return;
    }
    let mid = checks.len() / 2;
    let (left, right) = verdicts.split_at_mut(mid);
    judge(&checks[..mid], left);
    judge(&checks[mid..], right);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signer(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn sig_b64(key: &SigningKey, msg: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(key.sign(msg).to_bytes())
    }

    #[tokio::test]
    async fn a_forged_signature_in_a_full_batch_is_refused_and_only_it() {
        let v = BatchVerifier::spawn();
        let good = signer(1);
        let forger = signer(2);
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let msg = format!("token-{i}").into_bytes();
            // Every 37th is signed by a key the verifier does not hold.
            let bad = i % 37 == 5;
            let sig = sig_b64(if bad { &forger } else { &good }, &msg);
            let v = v.clone();
            let key = good.verifying_key();
            tasks.push(tokio::spawn(async move {
                (bad, v.verify(key, &msg, &sig).await)
            }));
        }
        for t in tasks {
            let (bad, ok) = t.await.unwrap();
            assert_eq!(
                ok,
                !bad,
                "verdict of a {} signature",
                if bad { "forged" } else { "good" }
            );
        }
    }

    #[tokio::test]
    async fn a_signature_over_other_bytes_or_malformed_is_refused() {
        let v = BatchVerifier::spawn();
        let k = signer(3);
        let sig = sig_b64(&k, b"header.payload");
        assert!(v.verify(k.verifying_key(), b"header.payload", &sig).await);
        assert!(!v.verify(k.verifying_key(), b"header.payloaD", &sig).await);
        assert!(
            !v.verify(k.verifying_key(), b"header.payload", &sig[1..])
                .await
        );
        assert!(!v.verify(k.verifying_key(), b"header.payload", "!!").await);
    }

    #[test]
    fn keys_are_read_from_a_pem_and_a_jwk() {
        let k = signer(4);
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(k.verifying_key().as_bytes());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(&der)
        );
        assert_eq!(key_from_pem(&pem), Some(k.verifying_key()));
        let x = URL_SAFE_NO_PAD.encode(k.verifying_key().as_bytes());
        assert_eq!(key_from_jwk_x(&x), Some(k.verifying_key()));
        assert_eq!(
            key_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            None
        );
    }
}
