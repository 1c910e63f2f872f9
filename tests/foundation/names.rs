//! Names that would show as something else: invisible and direction-changing characters are
//! refused at every door, and a name that looks like an RFC 2047 encoded word reaches the
//! `To:` header encoded, so that a mail client shows it as typed and never decodes it.

use mail_parser::MessageParser;

use crate::support::Project;

#[test]
fn invisible_and_bidi_characters_are_refused_in_names() {
    let p = Project::with_lists();
    let before = p.counts();
    let (code, _, err) = p.run(&[
        "subscribers",
        "add",
        "ana@example.org",
        "--name",
        "Ana \u{202E}gpj.exe",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("U+202E"), "{err}");
    assert_eq!(p.counts(), before);

    p.write(
        "people.csv",
        "email,name\nbo@example.org,Bo\u{2028}Bcc\nzw@example.org,Z\u{200B}w\nok@example.org,Ok\n",
    );
    let (code, out, err) = p.run(&["subscribers", "import", "people.csv"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out.trim(), "1 added, 0 updated, 0 unchanged, 2 rejected");
    assert!(
        err.contains("people.csv:2:") && err.contains("U+2028"),
        "{err}"
    );
    assert!(
        err.contains("people.csv:3:") && err.contains("U+200B"),
        "{err}"
    );
}

#[test]
fn a_name_like_an_encoded_word_is_encoded_in_the_header() {
    let p = Project::with_lists();
    let name = "=?utf-8?q?Your_Bank?=";
    p.ok(&[
        "subscribers",
        "add",
        "ana@example.org",
        "--name",
        name,
        "--list",
        "news",
    ]);
    let edition = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("editions/glo-act-special-edition")
        .display()
        .to_string();
    let out = p
        .cmd()
        .env("BULLETIN_SECRET", "0123456789abcdef0123456789abcdef")
        .args([
            "send", &edition, "--list", "news", "--outbox", "outbox", "--yes",
        ])
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::read_dir(p.path().join("outbox/new"))
        .expect("Maildir")
        .next()
        .expect("one message")
        .expect("entry")
        .path();
    let raw = std::fs::read(file).expect("message");
    let message = MessageParser::default().parse(&raw).expect("parses");
    let to = message.header_raw("To").expect("To").trim().to_string();
    assert!(
        !to.contains(name),
        "passed through as an encoded word: {to}"
    );
    let shown = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.name())
        .expect("a display name")
        .to_string();
    assert_eq!(shown, name, "the reader sees the name as typed");
}
