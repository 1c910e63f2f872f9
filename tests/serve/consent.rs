//! An opt-out stays an opt-out: the undo after an unsubscribe undoes that unsubscribe and
//! nothing else, a confirm link confirms only the sign-up that sent it, and blocklisted people
//! are never re-subscribed from the web, whatever old link is replayed.

use std::time::Duration;

use crate::support::{Project, SECRET, Server, SmtpSink, bulletin, confirm_path};

const FORM: &str = "application/x-www-form-urlencoded";

/// One list, one confirmed subscriber; the server and the subscriber's unsubscribe link.
fn setup() -> (Project, i64, i64, String) {
    let project = Project::new();
    let list = project.lists(&["news"])[0];
    let id = project.subscribers(&["reader@example.org".into()], &["news"], None)[0];
    let token = project.unsubscribe_token(SECRET, id, list);
    (project, list, id, token)
}

/// Presses "Unsubscribe" on the page, and returns the undo value the next page carries.
fn unsubscribe_on_the_page(server: &Server, token: &str) -> String {
    let r = server.post(&format!("/u/{token}"), Some(FORM), b"from=page");
    assert_eq!(r.status, 200, "{}", r.body);
    undo_value(&r.body).unwrap_or_else(|| panic!("no undo offered: {}", r.body))
}

/// The hidden `undo` field of a page, if it has one.
pub(crate) fn undo_value(body: &str) -> Option<String> {
    let start = body.find("name=\"undo\" value=\"")? + "name=\"undo\" value=\"".len();
    let len = body[start..].find('"')?;
    Some(body[start..start + len].to_string())
}

fn undo(server: &Server, token: &str, undo: &str) -> crate::support::Response {
    server.post(
        &format!("/u/{token}/resubscribe"),
        Some(FORM),
        format!("undo={undo}").as_bytes(),
    )
}

/// The operator unsubscribes the reader from news.
fn leave_by_cli(project: &Project) {
    let out = bulletin(project.path())
        .env("BULLETIN_DATABASE_URL", project.database_url())
        .args([
            "subscribers",
            "unsubscribe",
            "reader@example.org",
            "--list",
            "news",
        ])
        .output()
        .expect("run bulletin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_old_unsubscribe_link_never_resubscribes() {
    let (project, list, id, token) = setup();
    let server = Server::start(&project, &[]);
    // Unsubscribed by another route (the operator, a complaint): the link from an old or
    // forwarded newsletter, resubscribe button and all, changes nothing.
    leave_by_cli(&project);
    let before = project.snapshot();
    for body in [&b""[..], b"undo=", b"from=page"] {
        let r = server.post(&format!("/u/{token}/resubscribe"), Some(FORM), body);
        assert_eq!(r.status, 410, "{}", r.body);
        assert!(
            r.body.contains("/subscribe?"),
            "points to the form: {}",
            r.body
        );
    }
    assert_eq!(project.status(id, list).as_deref(), Some("unsubscribed"));
    assert_eq!(project.snapshot(), before);
    // Its page does not offer an undo either, only the form's double opt-in.
    let page = server.get(&format!("/u/{token}"));
    assert!(undo_value(&page.body).is_none(), "{}", page.body);
    assert!(page.body.contains("/subscribe?"), "{}", page.body);
}

#[test]
fn an_undo_replayed_after_a_later_cli_unsubscribe_changes_nothing() {
    let (project, list, id, token) = setup();
    let server = Server::start(&project, &[]);
    let first = unsubscribe_on_the_page(&server, &token);
    // The undo right after: back as before.
    let r = undo(&server, &token, &first);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Welcome back"), "{}", r.body);
    assert_eq!(project.status(id, list).as_deref(), Some("confirmed"));
    // Pressing it twice is harmless.
    assert_eq!(undo(&server, &token, &first).status, 200);
    // Later the person leaves through the operator; the saved undo must not bring them back.
    leave_by_cli(&project);
    let before = project.snapshot();
    let r = undo(&server, &token, &first);
    assert_eq!(r.status, 410, "{}", r.body);
    assert_eq!(project.status(id, list).as_deref(), Some("unsubscribed"));
    assert_eq!(project.snapshot(), before);
    // Nor can an undo of one list be used on another link, or be forged.
    let r = undo(&server, &token, "AAAA");
    assert_eq!(r.status, 404);
    assert_eq!(project.status(id, list).as_deref(), Some("unsubscribed"));
}

#[test]
fn an_undo_expires_within_minutes() {
    let (project, list, id, token) = setup();
    let server = Server::start(&project, &[]);
    let fresh = unsubscribe_on_the_page(&server, &token);
    // The same undo, but issued an hour ago (signed with the server's secret).
    let claims = bulletin::token::read(&fresh).expect("readable");
    let old = crate::support::keys(SECRET).issue(
        bulletin::token::Claims {
            issued_at: claims.issued_at - 3600,
            ..claims
        },
        &project.nonce(id),
    );
    let r = undo(&server, &token, &old);
    assert_eq!(r.status, 410, "{}", r.body);
    assert_eq!(project.status(id, list).as_deref(), Some("unsubscribed"));
}

#[test]
fn blocklisted_people_are_never_resubscribed_from_the_web() {
    let (project, list, id, token) = setup();
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    let undo_token = unsubscribe_on_the_page(&server, &token);
    // Their mailbox bounced meanwhile.
    project.execute(&format!(
        "UPDATE subscribers SET status = 'blocklisted' WHERE id = {id}"
    ));
    let r = undo(&server, &token, &undo_token);
    assert_eq!(r.status, 410, "{}", r.body);
    assert_eq!(project.status(id, list).as_deref(), Some("unsubscribed"));
    // The form sends them nothing, and says the same as for anyone.
    let r = server.post(
        "/subscribe",
        Some(FORM),
        b"email=reader%40example.org&list=news&lang=en",
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Check your inbox"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(sink.texts().is_empty());
    assert_eq!(project.status(id, list).as_deref(), Some("unsubscribed"));
}

#[test]
fn a_confirm_link_replayed_after_an_unsubscribe_changes_nothing() {
    let project = Project::new();
    let list = project.lists(&["doi-news"])[0];
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(&project, &[("BULLETIN_SMTP_URL", &smtp)]);
    let r = server.post(
        "/subscribe",
        Some(FORM),
        b"email=joiner%40example.org&list=doi-news&lang=en",
    );
    assert_eq!(r.status, 200);
    let path = confirm_path(&sink.wait_for(1, Duration::from_secs(20))[0]);
    let id = project.scalar("SELECT id FROM subscribers WHERE email = 'joiner@example.org'");
    assert_eq!(server.post(&path, Some(FORM), b"").status, 200);
    assert_eq!(project.status(id, list).as_deref(), Some("confirmed"));
    // They leave (one-click), then the confirm link is replayed within its validity.
    let token = project.unsubscribe_token(SECRET, id, list);
    assert_eq!(server.one_click(&token).status, 200);
    let before = project.snapshot();
    let r = server.post(&path, Some(FORM), b"");
    assert_eq!(r.status, 410, "{}", r.body);
    assert_eq!(project.status(id, list).as_deref(), Some("unsubscribed"));
    assert_eq!(project.snapshot(), before);
}

#[test]
fn only_the_newest_confirm_link_of_a_pending_sign_up_works() {
    let project = Project::new();
    let list = project.lists(&["doi-news"])[0];
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let server = Server::start(
        &project,
        &[
            ("BULLETIN_SMTP_URL", &smtp),
            ("BULLETIN_SERVER_CONFIRM_COOLDOWN_MINUTES", "0"),
        ],
    );
    let ask = || {
        server.post(
            "/subscribe",
            Some(FORM),
            b"email=twice%40example.org&list=doi-news&lang=en",
        )
    };
    assert_eq!(ask().status, 200);
    let first = confirm_path(&sink.wait_for(1, Duration::from_secs(20))[0]);
    assert_eq!(ask().status, 200);
    let mails = sink.wait_for(2, Duration::from_secs(20));
    let second = mails
        .iter()
        .map(|m| confirm_path(m))
        .find(|p| *p != first)
        .expect("a second link");
    let id = project.scalar("SELECT id FROM subscribers WHERE email = 'twice@example.org'");
    assert_eq!(server.post(&first, Some(FORM), b"").status, 410);
    assert_eq!(project.status(id, list).as_deref(), Some("unconfirmed"));
    assert_eq!(server.post(&second, Some(FORM), b"").status, 200);
    assert_eq!(project.status(id, list).as_deref(), Some("confirmed"));
}
