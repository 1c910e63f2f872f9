//! `/u/{token}`: the RFC 8058 one-click POST in every encoding mail clients use, the page and
//! its buttons, and every kind of bad link.

use crate::support::{OLD_SECRET, Project, SECRET, Server, http, multipart};

/// Two lists, three subscribers on both.
fn setup() -> (Project, Vec<i64>, Vec<i64>) {
    let project = Project::new();
    let lists = project.lists(&["news", "events"]);
    let emails: Vec<String> = (0..3).map(|i| format!("person{i}@example.org")).collect();
    let subs = project.subscribers(&emails, &["news", "events"], None);
    (project, lists, subs)
}

#[test]
fn one_click_in_every_encoding_unsubscribes_only_that_list_once() {
    let (project, lists, subs) = setup();
    let server = Server::start(&project, &[]);
    let (news, events) = (lists[0], lists[1]);

    // Form-encoded, as Gmail sends it.
    let t0 = project.unsubscribe_token(SECRET, subs[0], news);
    let r = server.one_click(&t0);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("location").is_none(), "never a redirect");
    // Multipart, as some clients send it.
    let t1 = project.unsubscribe_token(SECRET, subs[1], news);
    let r = server.post(
        &format!("/u/{t1}"),
        Some("multipart/form-data; boundary=XyZ"),
        &multipart("XyZ", "List-Unsubscribe", "One-Click"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Empty body, no content type.
    let t2 = project.unsubscribe_token(SECRET, subs[2], news);
    let r = server.post(&format!("/u/{t2}"), None, b"");
    assert_eq!(r.status, 200, "{}", r.body);

    for &s in &subs {
        assert_eq!(project.status(s, news).as_deref(), Some("unsubscribed"));
        // Only the list the message came from.
        assert_eq!(project.status(s, events).as_deref(), Some("confirmed"));
    }
    assert_eq!(
        project.scalar(
            "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribed' AND source = 'one-click'"
        ),
        3
    );

    // Idempotent: again, in each encoding, still 200, no new event, no change.
    let before = project.snapshot();
    assert_eq!(server.one_click(&t0).status, 200);
    assert_eq!(server.post(&format!("/u/{t2}"), None, b"").status, 200);
    assert_eq!(project.snapshot(), before);

    // No cookie was set, and nothing personal went to the log.
    assert!(r.header("set-cookie").is_none());
    let log = server.log();
    assert!(log.contains("POST /u/{token} 200"), "{log}");
    assert!(!log.contains(&t0) && !log.contains("example.org"), "{log}");
}

#[test]
fn get_never_changes_state() {
    let (project, lists, subs) = setup();
    let server = Server::start(&project, &[]);
    let token = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    let before = project.snapshot();
    for _ in 0..3 {
        let r = server.get(&format!("/u/{token}"));
        assert_eq!(r.status, 200);
        // No display name set: the newsletter's name, never the internal `news`.
        assert!(
            r.body.contains("Unsubscribe from Test Newsletter?"),
            "{}",
            r.body
        );
        assert!(r.body.contains("<form method=\"post\""), "{}", r.body);
        let r = http(server.addr, "HEAD", &format!("/u/{token}"), &[], b"");
        assert_eq!(r.status, 200);
        let r = server.get(&format!("/confirm/{token}"));
        assert_eq!(r.status, 404, "an unsubscribe token is no confirm token");
    }
    assert_eq!(project.snapshot(), before, "a GET changed the database");
}

#[test]
fn page_buttons_unsubscribe_undo_and_leave_everything() {
    let (project, lists, subs) = setup();
    let server = Server::start(&project, &[("BULLETIN_DATABASE_BUSY_TIMEOUT_MS", "2000")]);
    let (news, events) = (lists[0], lists[1]);
    let token = project.unsubscribe_token(SECRET, subs[0], news);

    // The page's own button: same URL, `from=page`.
    let r = server.post(
        &format!("/u/{token}"),
        Some("application/x-www-form-urlencoded"),
        b"from=page",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains(&format!("/u/{token}/resubscribe")),
        "undo offered"
    );
    assert!(
        r.body.contains(&format!("/u/{token}/all")),
        "leave-all offered"
    );
    assert_eq!(
        project.status(subs[0], news).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        project
            .text(&format!(
                "SELECT source FROM events WHERE subscriber_id = {} AND kind = 'unsubscribed'",
                subs[0]
            ))
            .as_deref(),
        Some("page")
    );

    // Undo, with the token bound to this unsubscribe that the page carries.
    let undo = crate::consent::undo_value(&r.body).expect("undo token");
    let r = server.post(
        &format!("/u/{token}/resubscribe"),
        Some("application/x-www-form-urlencoded"),
        format!("undo={undo}").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(project.status(subs[0], news).as_deref(), Some("confirmed"));

    // Leave every list.
    let r = server.post(&format!("/u/{token}/all"), None, b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        project.status(subs[0], news).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        project.status(subs[0], events).as_deref(),
        Some("unsubscribed")
    );
    // The others are untouched.
    assert_eq!(project.status(subs[1], news).as_deref(), Some("confirmed"));
}

#[test]
fn forged_truncated_and_cross_list_tokens_get_a_friendly_404_and_change_nothing() {
    let (project, lists, subs) = setup();
    let lonely = project.lists(&["lonely"])[0];
    let server = Server::start(&project, &[]);
    let good = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    let mut flipped: Vec<char> = good.chars().collect();
    let last = flipped.len() - 3;
    flipped[last] = if flipped[last] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    // Another subscriber's id under this subscriber's signature: the MAC covers the ids.
    let claims = bulletin::token::read(&good).expect("readable");
    let other_body = crate::support::keys("x".repeat(40).as_str()).unsubscribe(
        subs[1],
        claims.list_id,
        "wrong-nonce",
        0,
    );
    let bad = [
        good[..good.len() - 4].to_string(),
        flipped,
        "AAAA".into(),
        "not-a-token".into(),
        "A".repeat(300),
        // Signed with the wrong secret.
        project.unsubscribe_token(OLD_SECRET, subs[0], lists[0]),
        other_body,
        // Well signed, but for a list the person never joined.
        project.unsubscribe_token(SECRET, subs[0], lonely),
    ];
    let before = project.snapshot();
    for (i, token) in bad.iter().enumerate() {
        let r = server.one_click(token);
        if i == bad.len() - 1 {
            // A valid link to a list they are not on: nothing to do, and the page says so.
            assert_eq!(r.status, 200, "{token}");
            continue;
        }
        assert_eq!(r.status, 404, "token #{i} {token}: {}", r.body);
        assert!(r.body.contains("This link is not valid"), "{}", r.body);
        assert_eq!(server.get(&format!("/u/{token}")).status, 404);
    }
    // Gibberish paths too.
    assert_eq!(server.get("/u/").status, 404);
    assert_eq!(server.get("/u/a/b/c").status, 404);
    assert_eq!(project.snapshot(), before, "a bad token changed something");
    // A revoked nonce kills every link of that subscriber.
    project.execute(&format!(
        "UPDATE subscribers SET token_nonce = 'rotated' WHERE id = {}",
        subs[0]
    ));
    assert_eq!(server.one_click(&good).status, 404);
}

#[test]
fn links_signed_with_a_previous_secret_keep_working_after_rotation() {
    let (project, lists, subs) = setup();
    let old_file = project.path().join("old-secret.key");
    std::fs::write(&old_file, format!("{OLD_SECRET}\n")).expect("write old secret");
    let old_token = project.unsubscribe_token(OLD_SECRET, subs[0], lists[0]);
    let new_token = project.unsubscribe_token(SECRET, subs[1], lists[0]);

    // Without the previous secret the old link is dead...
    {
        let server = Server::start(&project, &[]);
        assert_eq!(server.one_click(&old_token).status, 404);
    }
    // ...with it, both work.
    let old = old_file.display().to_string();
    let server = Server::start(&project, &[("BULLETIN_SERVER_PREVIOUS_SECRET_FILES", &old)]);
    assert_eq!(server.one_click(&old_token).status, 200);
    assert_eq!(server.one_click(&new_token).status, 200);
    assert_eq!(
        project.status(subs[0], lists[0]).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        project.status(subs[1], lists[0]).as_deref(),
        Some("unsubscribed")
    );
}

#[test]
fn oversized_bodies_are_refused() {
    let (project, lists, subs) = setup();
    let server = Server::start(&project, &[]);
    let token = project.unsubscribe_token(SECRET, subs[0], lists[0]);
    let before = project.snapshot();
    // Announced size over the limit: refused before the body is read (so the test sends only
    // the head, as a client honouring `Expect: 100-continue` would).
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    write!(
        stream,
        "POST /u/{token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\
         Expect: 100-continue\r\n\r\n"
    )
    .expect("send head");
    let r = crate::support::read_response(&mut stream);
    assert_eq!(r.status, 413, "{}", r.body);
    // A real body just over the limit.
    let big = vec![b'a'; bulletin::web::BODY_LIMIT + 1];
    let r = server.post(
        &format!("/u/{token}"),
        Some("application/x-www-form-urlencoded"),
        &big,
    );
    assert_eq!(r.status, 413);
    let r = server.post(
        "/subscribe",
        Some("application/x-www-form-urlencoded"),
        &big,
    );
    assert_eq!(r.status, 413);
    assert_eq!(project.snapshot(), before);
}

#[test]
fn pages_carry_security_headers_and_the_subscribers_language() {
    let project = Project::new();
    let lists = project.lists(&["news"]);
    let fr = project.subscribers(&["amelie@example.fr".into()], &["news"], Some("fr"));
    let server = Server::start(&project, &[]);
    let token = project.unsubscribe_token(SECRET, fr[0], lists[0]);
    let r = server.get(&format!("/u/{token}"));
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("<html lang=\"fr\" dir=\"ltr\">"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Me désinscrire"), "{}", r.body);
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // No external asset, no script.
    assert!(
        !r.body.contains("<script") && !r.body.contains("src="),
        "{}",
        r.body
    );
    // Unknown pages: the friendly 404, in the browser's language.
    let r = http(
        server.addr,
        "GET",
        "/nothing-here",
        &[("Accept-Language", "fr-FR,fr;q=0.9")],
        b"",
    );
    assert_eq!(r.status, 404);
    assert!(r.body.contains("Ce lien n’est pas valide"), "{}", r.body);
}
