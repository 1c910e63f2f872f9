//! Across the stages: a message delivered by `send` carries a List-Unsubscribe URL which,
//! POSTed the way Gmail does (RFC 8058), unsubscribes that subscriber from that list through
//! `bulletin serve`; the next send skips them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use mail_parser::MessageParser;

use crate::smtp::{SECRET, per_recipient, project_with, run, send_news};
use crate::smtp_server::SmtpServer;

#[test]
fn a_one_click_post_from_the_mail_unsubscribes_and_the_next_send_skips_them() {
    let p = project_with(4);
    let server = SmtpServer::start(p.path());
    let (code, _, err) = send_news(&p, &server.url(), &[], "--yes");
    assert_eq!(code, 0, "{err}");
    let raw = server
        .messages()
        .into_iter()
        .find(|m| String::from_utf8_lossy(m).contains("reader1@example.org"))
        .expect("reader1's message");
    let message = MessageParser::default().parse(&raw).expect("parses");
    let url = message
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim()
        .trim_matches(['<', '>'])
        .to_string();
    let path = format!("/u/{}", url.rsplit("/u/").next().expect("a /u/ link"));

    let mut serve = p
        .std_cmd()
        .env("BULLETIN_SECRET", SECRET)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bulletin serve");
    let stderr = serve.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve printed its address")
            .expect("utf-8");
        if let Some(a) = line.strip_prefix("serve: listening on http://") {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    // What Gmail sends: a form-encoded POST with List-Unsubscribe=One-Click, no cookies.
    let body = "List-Unsubscribe=One-Click";
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        p.strings(
            "SELECT x.status FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
             WHERE s.email = 'reader1@example.org'"
        ),
        vec!["unsubscribed".to_string()]
    );
    assert_eq!(
        p.scalar(
            "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribed' AND source = 'one-click'"
        ),
        1
    );

    // The next edition skips them.
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/editions/minimal");
    let (code, _, err) = run(
        &p,
        &server.url(),
        &[],
        &[
            "send",
            fixture.to_str().expect("path"),
            "--list",
            "news",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let seen = per_recipient(&server.messages());
    assert_eq!(
        seen.get("reader1@example.org"),
        Some(&1),
        "only the first edition: {seen:?}"
    );
    for i in [0, 2, 3] {
        assert_eq!(
            seen.get(&format!("reader{i}@example.org")),
            Some(&2),
            "{seen:?}"
        );
    }
}
