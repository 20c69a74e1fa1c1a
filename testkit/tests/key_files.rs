//! Key files the project writes are read by standard tooling: OpenSSL reads
//! the private key as PKCS#8 (v1, RFC 8410) and the public key as SPKI, and
//! derives from the private key exactly the public key we wrote.

use coupon_testkit::{scratch_root, Issuer};
use std::path::Path;
use std::process::Command;

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn openssl_reads_the_private_and_public_key_files_we_write() {
    let dir = scratch_root().join(format!("keyfiles-{}", std::process::id()));
    let issuer = Issuer::generate("iss", "aud");
    let (private, public) = issuer.write(&dir, "dev-issuer").expect("write keys");
    // `openssl pkey` refuses PKCS#8 v2 ("extra data"), so this reads v1 only.
    let text = openssl(&["pkey", "-in", path(&private), "-noout", "-text"]);
    assert!(text.contains("ED25519 Private-Key"), "{text}");
    openssl(&["pkey", "-pubin", "-in", path(&public), "-noout"]);
    let derived = openssl(&["pkey", "-in", path(&private), "-pubout"]);
    assert_eq!(
        derived,
        issuer.public_pem(),
        "public key matches the private key"
    );
    // The DER is the 48-byte RFC 8410 v1 document: version 0, seed only.
    let der = Command::new("openssl")
        .args(["pkey", "-in", path(&private), "-outform", "DER"])
        .output()
        .expect("openssl der")
        .stdout;
    assert_eq!((der.len(), der[4]), (48, 0), "PKCS#8 v1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_key_written_by_openssl_loads_and_signs_tokens() {
    let dir = scratch_root().join(format!("keyfiles-ossl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let private = dir.join("ossl.pem");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", path(&private)]);
    let issuer = Issuer::load(&private, "iss", "aud").expect("load an OpenSSL key");
    let derived = openssl(&["pkey", "-in", path(&private), "-pubout"]);
    assert_eq!(derived, issuer.public_pem());
    assert_eq!(
        issuer.private_pem(),
        std::fs::read_to_string(&private).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
