//! `/subscribe` → confirmation mail through a real SMTP server → `/confirm/{token}`.

use std::time::Duration;

use crate::dkim_support::{KeyKind, assert_maildir_verifies, generate_key};
use crate::support::{Project, Server, SmtpSink, confirm_path, unix_now};

const FORM: &str = "application/x-www-form-urlencoded";

fn subscribe(server: &Server, email: &str, list: &str, extra: &str) -> crate::support::Response {
    let body = format!(
        "email={}&list={list}&lang=en{extra}",
        email.replace('@', "%40")
    );
    server.post("/subscribe", Some(FORM), body.as_bytes())
}

#[test]
fn double_opt_in_end_to_end_with_a_real_smtp_server() {
    let project = Project::new();
    let list = project.lists(&["doi-news"])[0];
    project.display_name("doi-news", "en", "Partner news");
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);

    let form = server.get("/subscribe?list=doi-news");
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"website\""), "honeypot present");

    let r = subscribe(&server, "new.person@example.org", "doi-news", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Check your inbox"));
    let id = project.scalar("SELECT id FROM subscribers WHERE email = 'new.person@example.org'");
    assert_eq!(project.status(id, list).as_deref(), Some("unconfirmed"));

    let mail = sink.wait_for(1, Duration::from_secs(20)).remove(0);
    let header = |line: &str| mail.lines().any(|l| l.trim_end() == line);
    assert!(header("To: <new.person@example.org>"), "{mail}");
    assert!(header("Auto-Submitted: auto-generated"), "{mail}");
    assert!(
        !mail.contains("List-Unsubscribe"),
        "nobody is subscribed yet: {mail}"
    );
    assert!(
        mail.contains("From: Newsletter <newsletter@example.org>"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: Confirm your subscription to Partner news"),
        "{mail}"
    );
    assert!(mail.contains("https://news.example.org/confirm/"), "{mail}");
    let path = confirm_path(&mail);

    // Opening the link (a scanner, a preview) confirms nothing.
    let page = server.get(&path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Confirm"), "{}", page.body);
    assert_eq!(project.status(id, list).as_deref(), Some("unconfirmed"));
    // The button does.
    let r = server.post(&path, Some(FORM), b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Subscription confirmed"), "{}", r.body);
    assert_eq!(project.status(id, list).as_deref(), Some("confirmed"));
    assert_eq!(
        project.scalar(&format!(
            "SELECT COUNT(*) FROM events WHERE subscriber_id = {id} AND kind = 'confirmed' AND source = 'page'"
        )),
        1
    );
    assert_eq!(
        project.scalar(&format!(
            "SELECT COUNT(*) FROM events WHERE subscriber_id = {id} AND kind = 'subscribed' AND source = 'form'"
        )),
        1
    );
    // Confirming twice is harmless.
    assert_eq!(server.post(&path, Some(FORM), b"").status, 200);
    assert!(!server.log().contains("new.person"), "the log names nobody");
}

#[test]
fn the_answer_never_reveals_whether_an_address_is_known() {
    let project = Project::new();
    project.lists(&["news"]);
    project.subscribers(&["known@example.org".into()], &["news"], None);
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    let known = subscribe(&server, "known@example.org", "news", "");
    let unknown = subscribe(&server, "stranger@example.org", "news", "");
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body);
    // The confirmed subscriber is not mailed again; the stranger is.
    let mails = sink.wait_for(1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.texts().len(), 1, "{mails:?}");
    assert!(mails[0].contains("To: stranger@example.org"));
}

/// Every class of address gets byte for byte the same answer: known and confirmed, pending,
/// unsubscribed, blocklisted, erased, unknown, and one asked for twice within the cooldown.
#[test]
fn the_answer_is_the_same_for_every_kind_of_address() {
    let project = Project::new();
    let list = project.lists(&["news"])[0];
    let ids = project.subscribers(
        &[
            "confirmed@example.org".into(),
            "left@example.org".into(),
            "bounced@example.org".into(),
            "erased@example.org".into(),
        ],
        &["news"],
        None,
    );
    project.execute(&format!(
        "UPDATE subscriptions SET status = 'unsubscribed' WHERE subscriber_id = {} AND list_id = {list}",
        ids[1]
    ));
    project.execute(&format!(
        "UPDATE subscribers SET status = 'blocklisted' WHERE id = {}",
        ids[2]
    ));
    project.with_store(async |store| {
        let erased = bulletin::address::Address::parse("erased@example.org").expect("address");
        store.erase(&erased, "cli").await.expect("erase");
    });
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    let answers: Vec<_> = [
        "confirmed@example.org",
        "left@example.org",
        "bounced@example.org",
        "erased@example.org",
        "new@example.org",
        "new@example.org",
    ]
    .iter()
    .map(|email| {
        let r = subscribe(&server, email, "news", "");
        let mut names: Vec<String> = r.headers.iter().map(|(k, _)| k.to_lowercase()).collect();
        names.sort();
        (r.status, r.body, names)
    })
    .collect();
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer, &answers[0], "answer #{i} differs");
    }
}

/// One confirmation mail per address and cooldown, whoever asks and however the address is
/// spelt, and still after a restart: the cooldown lives in the database.
#[test]
fn one_confirmation_mail_per_address_within_the_cooldown_even_across_restarts() {
    let project = Project::new();
    project.lists(&["doi-news"]);
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let env = [
        ("BULLETIN_SMTP_URL", smtp.as_str()),
        // Behind a proxy: each request may name another client.
        ("BULLETIN_SERVER_CLIENT_IP_HEADER", "X-Real-IP"),
    ];
    let from = |server: &Server, client: &str, email: &str| {
        let body = format!("email={}&list=doi-news&lang=en", email.replace('@', "%40"));
        crate::support::http(
            server.addr,
            "POST",
            "/subscribe",
            &[("Content-Type", FORM), ("X-Real-IP", client)],
            body.as_bytes(),
        )
    };
    {
        let server = Server::start(&project, &env);
        assert_eq!(from(&server, "192.0.2.1", "victim@example.org").status, 200);
        sink.wait_for(1, Duration::from_secs(20));
        for (i, spelling) in ["victim@example.org", "Victim@Example.org"]
            .iter()
            .enumerate()
        {
            let client = format!("198.51.100.{i}");
            let r = from(&server, &client, spelling);
            assert_eq!(r.status, 200);
            assert!(r.body.contains("Check your inbox"));
        }
    }
    let server = Server::start(&project, &env);
    assert_eq!(
        from(&server, "203.0.113.9", "victim@example.org").status,
        200
    );
    // Another address is not held back by it.
    assert_eq!(
        from(&server, "203.0.113.9", "other@example.org").status,
        200
    );
    sink.wait_for(2, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(800));
    let mails = sink.texts();
    let to_victim = mails
        .iter()
        .filter(|m| m.to_lowercase().contains("to: <victim@example.org>"))
        .count();
    assert_eq!(to_victim, 1, "{mails:#?}");
    assert_eq!(mails.len(), 2);
}

#[test]
fn posts_from_another_site_are_refused() {
    let project = Project::new();
    project.lists(&["news"]);
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    // The form's own page asks browsers to name it in `Origin` when it posts.
    let form = server.get("/subscribe");
    assert_eq!(form.header("referrer-policy"), Some("same-origin"));
    let post = |email: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("Content-Type", FORM)];
        all.extend_from_slice(headers);
        let body = format!("email={}&list=news&lang=en", email.replace('@', "%40"));
        crate::support::http(server.addr, "POST", "/subscribe", &all, body.as_bytes())
    };
    for (i, headers) in [
        vec![("Origin", "https://evil.example")],
        vec![("Origin", "null")],
        vec![("Referer", "https://evil.example/page.html")],
        vec![
            ("Origin", "https://news.example.org.evil.example"),
            ("Referer", "https://news.example.org/subscribe"),
        ],
    ]
    .iter()
    .enumerate()
    {
        let r = post(&format!("victim{i}@example.org"), headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
    }
    assert_eq!(project.scalar("SELECT COUNT(*) FROM subscribers"), 0);
    // Our own pages: the public URL's origin (behind the proxy), or this very host.
    let own = format!("http://{}", server.addr);
    for (i, headers) in [
        vec![("Origin", "https://news.example.org")],
        vec![("Origin", own.as_str())],
        vec![("Referer", "https://news.example.org/subscribe?list=news")],
        vec![],
    ]
    .iter()
    .enumerate()
    {
        let r = post(&format!("reader{i}@example.org"), headers);
        assert_eq!(r.status, 200, "{headers:?}: {}", r.body);
    }
    sink.wait_for(4, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.texts().len(), 4);
    assert!(sink.texts().iter().all(|m| !m.contains("victim")));
}

#[test]
fn honeypot_bad_input_and_rate_limit() {
    let project = Project::new();
    project.lists(&["news"]);
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(
        &project,
        &[
            ("BULLETIN_SMTP_URL", &smtp),
            ("BULLETIN_SERVER_SUBSCRIBE_LIMIT_PER_HOUR", "3"),
        ],
    );
    // A bot fills the hidden field: same answer, nothing stored, nothing sent.
    let r = subscribe(
        &server,
        "bot@example.org",
        "news",
        "&website=http%3A%2F%2Fspam",
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Check your inbox"));
    assert_eq!(project.scalar("SELECT COUNT(*) FROM subscribers"), 0);
    // Not an address: the form again, with the error, and what was typed.
    let r = subscribe(&server, "not-an-address", "news", "");
    assert_eq!(r.status, 422);
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);
    // Unknown list.
    assert_eq!(subscribe(&server, "a@example.org", "nope", "").status, 404);
    // Missing fields.
    assert_eq!(
        server.post("/subscribe", Some(FORM), b"list=news").status,
        422
    );
    // The fourth counted request within the hour from this address is refused (the
    // unreadable form never reached the limiter).
    let r = subscribe(&server, "b@example.org", "news", "");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.texts().len(), 0);
}

#[test]
fn expired_and_forged_confirm_links() {
    let project = Project::new();
    let list = project.lists(&["doi-news"])[0];
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    assert_eq!(
        subscribe(&server, "late@example.org", "doi-news", "").status,
        200
    );
    let id = project.scalar("SELECT id FROM subscribers WHERE email = 'late@example.org'");
    // Issued eight days ago: past the default seven.
    let old = project.confirm_token(id, list, unix_now() - 8 * 86_400);
    let r = server.post(&format!("/confirm/{old}"), Some(FORM), b"");
    assert_eq!(r.status, 410, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);
    assert_eq!(project.status(id, list).as_deref(), Some("unconfirmed"));
    // An unsubscribe token is not a confirm token.
    let wrong = project.unsubscribe_token(crate::support::SECRET, id, list);
    assert_eq!(
        server
            .post(&format!("/confirm/{wrong}"), Some(FORM), b"")
            .status,
        404
    );
    assert_eq!(server.get("/confirm/garbage").status, 404);
    assert_eq!(project.status(id, list).as_deref(), Some("unconfirmed"));
    drop(sink);
}

/// With `[dkim]` set, the confirmation mail is signed like an edition, and dkimpy verifies it
/// over the bytes the SMTP server received.
#[test]
fn the_confirmation_mail_is_dkim_signed() {
    let project = Project::new();
    project.lists(&["doi-news"]);
    let key = project.path().join("dkim.pem");
    generate_key(&key, KeyKind::Ed25519);
    std::fs::write(
        project.path().join("bulletin.toml"),
        "[dkim]\ndomain = \"example.org\"\nselector = \"news\"\nkey_file = \"dkim.pem\"\n",
    )
    .expect("write config");
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    let r = subscribe(&server, "signed@example.org", "doi-news", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let mail = sink.wait_for(1, Duration::from_secs(20)).remove(0);
    assert!(
        mail.contains("DKIM-Signature: v=1; a=ed25519-sha256;"),
        "{mail}"
    );
    assert_maildir_verifies(&sink.maildir, &key, KeyKind::Ed25519);
}
