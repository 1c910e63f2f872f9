//! DKIM helpers shared by the send and serve tests: keys made by openssl, the DNS record that
//! publishes them, and verification by dkimpy (`tests/support/dkim_verify.py`), an
//! implementation we did not write, over the bytes an SMTP server received.

use std::path::Path;
use std::process::Command;

/// The kinds of key bulletin accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA-2048 in a PKCS#8 `PRIVATE KEY` block.
    RsaPkcs8,
    /// RSA-2048 in a PKCS#1 `RSA PRIVATE KEY` block.
    RsaPkcs1,
    /// Ed25519 (RFC 8463) in PKCS#8.
    Ed25519,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Writes a new private key of `kind` to `path` (PEM).
pub fn generate_key(path: &Path, kind: KeyKind) {
    let k = path.to_str().expect("UTF-8 path");
    match kind {
        KeyKind::RsaPkcs8 | KeyKind::RsaPkcs1 => {
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                k,
            ]);
            if kind == KeyKind::RsaPkcs1 {
                openssl(&["rsa", "-in", k, "-traditional", "-out", k]);
                let pem = std::fs::read_to_string(path).expect("pem");
                assert!(pem.contains("BEGIN RSA PRIVATE KEY"), "PKCS#1 key expected");
            }
        }
        KeyKind::Ed25519 => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", k]);
        }
    }
}

/// The DNS TXT record for the key in `pem`.
pub fn txt_record(pem: &Path, kind: KeyKind) -> String {
    use base64::Engine as _;
    let der = openssl(&[
        "pkey",
        "-in",
        pem.to_str().expect("UTF-8 path"),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let b64 = base64::engine::general_purpose::STANDARD;
    if kind == KeyKind::Ed25519 {
        // RFC 8463: the raw 32-byte key, not the SubjectPublicKeyInfo.
        format!(
            "v=DKIM1; k=ed25519; p={}",
            b64.encode(&der[der.len() - 32..])
        )
    } else {
        format!("v=DKIM1; k=rsa; p={}", b64.encode(&der))
    }
}

/// Asserts that dkimpy verifies every message in `maildir` against the public half of `key`.
pub fn assert_maildir_verifies(maildir: &Path, key: &Path, kind: KeyKind) {
    let verifier = crate::support_dir().join("dkim_verify.py");
    let result = Command::new("python3")
        .arg(verifier)
        .arg(maildir)
        .arg(txt_record(key, kind))
        .output()
        .expect("python3 with dkimpy (pip install dkimpy pynacl; .ci/run does it)");
    assert!(
        result.status.success(),
        "dkimpy rejected the {kind:?} signature:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}
