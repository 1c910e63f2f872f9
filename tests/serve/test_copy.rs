//! The test copy (`preview --to`) end to end: its unsubscribe link, taken from the message a
//! real SMTP server received, leads `serve` to a page that says it is a test copy, in the
//! visitor's language, and nothing is written when it is pressed.

use std::path::Path;

use mail_parser::MessageParser;

use crate::support::{Project, SECRET, Server, SmtpSink, bulletin, http};

const PUBLIC_URL: &str = "https://news.example.org";

/// Sends a test copy of the example edition through aiosmtpd and returns the path (under
/// the public URL) of every received message's `List-Unsubscribe` link.
fn test_copy_links(p: &Project) -> Vec<String> {
    let sink = SmtpSink::start(p.path());
    let edition = Path::new(env!("CARGO_MANIFEST_DIR")).join("editions/glo-act-special-edition");
    let out = bulletin(p.path())
        .args([
            "preview",
            &edition.display().to_string(),
            "--to",
            "operator@example.org",
        ])
        .env("BULLETIN_SECRET", SECRET)
        .env("BULLETIN_DATABASE_URL", p.database_url())
        .env("BULLETIN_LIST_PUBLIC_URL", PUBLIC_URL)
        .env("BULLETIN_SMTP_URL", sink.url())
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 4, "one copy per language (ar, en, es, fr)");
    messages
        .iter()
        .map(|raw| {
            let m = MessageParser::default().parse(raw).expect("parses");
            let header = m
                .header_raw("List-Unsubscribe")
                .expect("List-Unsubscribe")
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
            let html = m.body_html(0).expect("html part");
            assert!(
                html.contains(&header),
                "the footer links where the header does: {header}"
            );
            assert!(
                html.contains(&format!("{PUBLIC_URL}/p/test-copy")),
                "Manage preferences leads to the preview of the preference centre"
            );
            header
                .strip_prefix(PUBLIC_URL)
                .unwrap_or_else(|| panic!("{header} is under {PUBLIC_URL}"))
                .to_string()
        })
        .collect()
}

#[test]
fn the_test_copys_unsubscribe_link_explains_itself_and_changes_nothing() {
    let p = Project::new();
    let lists = p.lists(&["news"]);
    let reader = p.subscribers(&["reader@example.org".to_string()], &["news"], Some("en"))[0];
    let paths = test_copy_links(&p);
    let before = p.snapshot();
    let server = Server::start(&p, &[]);
    for path in &paths {
        let page = server.get(path);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("This is a test copy"), "{}", page.body);
        assert!(
            page.body.contains("unsubscribes the reader")
                && page.body.contains("Nothing was changed"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("not valid"), "{}", page.body);

        let fr = http(
            server.addr,
            "GET",
            path,
            &[("Accept-Language", "fr-FR,fr;q=0.9")],
            b"",
        );
        assert_eq!(fr.status, 200);
        assert!(
            fr.body.contains("copie de test") && fr.body.contains("Rien n’a été modifié"),
            "{}",
            fr.body
        );

        // RFC 8058 one-click, exactly as a mail program sends it, and the page's own button.
        for body in [&b"List-Unsubscribe=One-Click"[..], b"from=page"] {
            let done = server.post(path, Some("application/x-www-form-urlencoded"), body);
            assert_eq!(done.status, 200, "{}", done.body);
            assert!(done.body.contains("This is a test copy"), "{}", done.body);
        }
    }
    let preview = server.get("/p/test-copy");
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("Preview of the preference centre"),
        "{}",
        preview.body
    );
    assert_eq!(p.snapshot(), before, "nothing was written");
    assert_eq!(p.status(reader, lists[0]).as_deref(), Some("confirmed"));
}
