//! DKIM: messages signed with RSA (PKCS#8 and PKCS#1) and Ed25519 keys verify under dkimpy,
//! an implementation we did not write, over the bytes the SMTP server received.

use std::path::Path;
use std::process::Command;

use crate::smtp_server::SmtpServer;
use crate::support::Project;

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The DNS TXT record for the key in `pem`.
fn txt_record(pem: &Path, ed25519: bool) -> String {
    use base64::Engine as _;
    let der = openssl(&[
        "pkey",
        "-in",
        pem.to_str().expect("path"),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let b64 = base64::engine::general_purpose::STANDARD;
    if ed25519 {
        // RFC 8463: the raw 32-byte key, not the SubjectPublicKeyInfo.
        format!(
            "v=DKIM1; k=ed25519; p={}",
            b64.encode(&der[der.len() - 32..])
        )
    } else {
        format!("v=DKIM1; k=rsa; p={}", b64.encode(&der))
    }
}

fn signed_send_verifies(kind: &str) {
    let p = Project::new();
    let key = p.path().join("dkim.pem");
    let k = key.to_str().expect("path");
    match kind {
        "rsa-pkcs8" => {
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                k,
            ]);
        }
        "rsa-pkcs1" => {
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                k,
            ]);
            openssl(&["rsa", "-in", k, "-traditional", "-out", k]);
            let pem = std::fs::read_to_string(&key).expect("pem");
            assert!(pem.contains("BEGIN RSA PRIVATE KEY"), "PKCS#1 key expected");
        }
        _ => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", k]);
        }
    }
    p.write(
        "bulletin.toml",
        "[list]\nname = \"GLO.ACT Newsletter\"\nid = \"glo-act.newsletter.example.org\"\n\
         from = \"GLO.ACT <newsletter@example.org>\"\n\
         [dkim]\ndomain = \"example.org\"\nselector = \"news\"\nkey_file = \"dkim.pem\"\n",
    );
    p.ok(&["lists", "add", "news"]);
    p.write(
        "people.csv",
        "email,name,lang,lists\nana@example.org,Ana Lima,en,news\nmoussa@example.net,Moussa Traoré,fr,news\nbo@example.org,\"Bo \"\"the\"\" Chen\",en,news\n",
    );
    p.ok(&["subscribers", "import", "people.csv"]);
    let server = SmtpServer::faulty(p.path(), "");
    let out = p
        .cmd()
        .env(
            "BULLETIN_SECRET",
            "test-secret-test-secret-test-secret-0123",
        )
        .env("BULLETIN_SMTP_URL", server.url())
        .args(["send", &crate::smtp::edition(), "--list", "news", "--yes"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.messages().len(), 3);
    let message = String::from_utf8(server.messages().remove(0)).expect("ASCII");
    let header = message.split("\r\n\r\n").next().expect("headers");
    assert!(header.starts_with("DKIM-Signature: v=1;"), "{header}");
    for h in [
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
        "message-id",
        "from",
        "to",
        "subject",
        "date",
    ] {
        let signed = header
            .split("h=")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .expect("h= tag");
        assert!(
            signed.split(':').any(|s| s == h),
            "{h} must be signed: {signed}"
        );
    }
    let verifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    let result = Command::new("python3")
        .arg(verifier)
        .arg(&server.maildir)
        .arg(txt_record(&key, kind == "ed25519"))
        .output()
        .expect("python3 with dkimpy (pip install dkimpy pynacl; .ci/run does it)");
    assert!(
        result.status.success(),
        "dkimpy rejected the {kind} signature:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn rsa_pkcs8_signatures_verify_independently() {
    signed_send_verifies("rsa-pkcs8");
}

#[test]
fn rsa_pkcs1_signatures_verify_independently() {
    signed_send_verifies("rsa-pkcs1");
}

#[test]
fn ed25519_signatures_verify_independently() {
    signed_send_verifies("ed25519");
}

#[test]
fn an_unusable_key_stops_the_send_before_anything_is_recorded() {
    let p = Project::new();
    p.write("dkim.pem", "not a key\n");
    p.write(
        "bulletin.toml",
        "[dkim]\ndomain = \"example.org\"\nselector = \"news\"\nkey_file = \"dkim.pem\"\n",
    );
    p.ok(&["lists", "add", "news"]);
    p.ok(&["subscribers", "add", "ana@example.org", "--list", "news"]);
    let server = SmtpServer::start(p.path());
    let out = p
        .cmd()
        .env(
            "BULLETIN_SECRET",
            "test-secret-test-secret-test-secret-0123",
        )
        .env("BULLETIN_SMTP_URL", server.url())
        .args(["send", &crate::smtp::edition(), "--list", "news", "--yes"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("dkim.pem is not a usable DKIM key"), "{err}");
    assert_eq!(p.scalar("SELECT COUNT(*) FROM campaigns"), 0);
    assert!(server.messages().is_empty());
}
