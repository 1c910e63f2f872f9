//! Several `bulletin serve` instances on one store (two web hosts behind a load balancer)
//! behave as one (issue #16 item 7): the subscription form's per-client limit is counted in
//! the store, and a one-click unsubscribe that reaches both at once is recorded once.
//!
//! On the PostgreSQL pass of the suite these are two processes on one server, as on two
//! hosts; on the SQLite pass, two processes on one file.

use crate::support::{Project, SECRET, Server, SmtpSink};

const FORM: &str = "application/x-www-form-urlencoded";

fn subscribe(server: &Server, email: &str) -> crate::support::Response {
    let body = format!("email={}&list=news&lang=en", email.replace('@', "%40"));
    server.post("/subscribe", Some(FORM), body.as_bytes())
}

#[test]
fn two_instances_share_the_form_limit_and_record_a_one_click_once() {
    let project = Project::new();
    let news = project.lists(&["news"])[0];
    let subs = project.subscribers(&["reader@example.org".to_string()], &["news"], None);
    let sink = SmtpSink::start(project.path());
    let smtp = sink.url();
    let env = [
        ("BULLETIN_SMTP_URL", smtp.as_str()),
        ("BULLETIN_SERVER_SUBSCRIBE_LIMIT_PER_HOUR", "3"),
    ];
    let (a, b) = (Server::start(&project, &env), Server::start(&project, &env));

    // The same one-click POST, eight times at once, half to each instance (a mail provider
    // retrying while the first request is still in flight): one change, one event.
    let token = project.unsubscribe_token(SECRET, subs[0], news);
    std::thread::scope(|scope| {
        for i in 0..8 {
            let (server, token) = (if i % 2 == 0 { &a } else { &b }, &token);
            scope.spawn(move || {
                let r = server.one_click(token);
                assert_eq!(r.status, 200, "{}", r.body);
            });
        }
    });
    assert_eq!(
        project.status(subs[0], news).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        project.scalar("SELECT COUNT(*) FROM events WHERE kind = 'unsubscribed'"),
        1
    );

    // Three requests an hour from one client, whichever instance answers: alternating between
    // them, the fourth is refused. (Each instance counting alone would allow six.)
    for (i, server) in [&a, &b, &a].into_iter().enumerate() {
        let r = subscribe(server, &format!("new{i}@example.org"));
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
    }
    let r = subscribe(&b, "new3@example.org");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(subscribe(&a, "new4@example.org").status, 429);
    // A restart does not forget the count either.
    drop(a);
    let c = Server::start(&project, &env);
    assert_eq!(subscribe(&c, "new5@example.org").status, 429);
    assert_eq!(
        project.scalar("SELECT COUNT(*) FROM subscribers WHERE email LIKE 'new%'"),
        3
    );
    // One row for the one client, and no address in clear: a SHA-256 in hex.
    assert_eq!(
        project.scalar(
            "SELECT COUNT(*) FROM form_rate_windows
             WHERE length(client_hash) = 64 AND client_hash NOT LIKE '%127.0.0.1%'"
        ),
        1
    );
}
