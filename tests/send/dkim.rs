//! DKIM: messages signed with RSA (PKCS#8 and PKCS#1) and Ed25519 keys verify under dkimpy,
//! an implementation we did not write, over the bytes the SMTP server received.

use crate::dkim_support::{KeyKind, assert_maildir_verifies, generate_key};
use crate::smtp_server::SmtpServer;
use crate::support::Project;

fn signed_send_verifies(kind: KeyKind) {
    let p = Project::new();
    let key = p.path().join("dkim.pem");
    generate_key(&key, kind);
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
    assert_maildir_verifies(&server.maildir, &key, kind);
}

#[test]
fn rsa_pkcs8_signatures_verify_independently() {
    signed_send_verifies(KeyKind::RsaPkcs8);
}

#[test]
fn rsa_pkcs1_signatures_verify_independently() {
    signed_send_verifies(KeyKind::RsaPkcs1);
}

#[test]
fn ed25519_signatures_verify_independently() {
    signed_send_verifies(KeyKind::Ed25519);
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
