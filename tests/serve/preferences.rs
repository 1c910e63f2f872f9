//! The preference centre (#12 item 8) through the real binary and real HTTP: its own signed
//! link, a GET that changes nothing, a POST from our own page that changes only what differs
//! (each change an event with source `preferences`), joining a double-opt-in list without a
//! new confirmation, private lists shown only to their members, and the test-copy preview.

use crate::support::{Project, SECRET, Server, http, keys};

const FORM: &str = "application/x-www-form-urlencoded";

struct Setup {
    project: Project,
    /// news (public), events-doi (public, double opt-in), staff (private, the reader is on
    /// it), board (private, the reader is not).
    lists: [i64; 4],
    reader: i64,
}

fn setup() -> Setup {
    let project = Project::new();
    let ids = project.lists(&["news", "doi-events", "staff", "board"]);
    project.ok(&["lists", "set", "staff", "--private"]);
    project.ok(&["lists", "set", "board", "--private"]);
    project.display_name("news", "en", "Monthly news");
    project.display_name("news", "fr", "Nouvelles du mois");
    project.display_name("doi-events", "en", "Event invitations");
    project.display_name("staff", "en", "Team notes");
    project.display_name("board", "en", "Board papers");
    let reader = project.subscribers(
        &["reader@example.org".into()],
        &["news", "staff"],
        Some("en"),
    )[0];
    Setup {
        project,
        lists: [ids[0], ids[1], ids[2], ids[3]],
        reader,
    }
}

fn preferences_token(p: &Project, subscriber: i64, list: i64) -> String {
    keys(SECRET).preferences(subscriber, list, &p.nonce(subscriber), 1_700_000_000)
}

/// A POST from the page itself, as a browser sends it (`Origin` is the server's own).
fn save(server: &Server, path: &str, body: &str) -> crate::support::Response {
    let origin = format!("http://{}", server.addr);
    http(
        server.addr,
        "POST",
        path,
        &[("Content-Type", FORM), ("Origin", &origin)],
        body.as_bytes(),
    )
}

fn events(p: &Project, subscriber: i64, source: &str) -> i64 {
    p.scalar(&format!(
        "SELECT COUNT(*) FROM events WHERE subscriber_id = {subscriber} AND source = '{source}'"
    ))
}

#[test]
fn the_page_shows_the_readers_lists_and_a_get_changes_nothing() {
    let Setup {
        project,
        lists,
        reader,
    } = setup();
    let token = preferences_token(&project, reader, lists[0]);
    let server = Server::start(&project, &[]);
    let before = project.snapshot();
    let page = server.get(&format!("/p/{token}"));
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in ["Monthly news", "Event invitations", "Team notes"] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(
        !page.body.contains("Board papers"),
        "a private list the reader is not on stays hidden: {}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("name=\"list-{}\" checked", lists[0])),
        "{}",
        page.body
    );
    assert!(
        !page
            .body
            .contains(&format!("name=\"list-{}\" checked", lists[1])),
        "{}",
        page.body
    );
    assert!(!page.body.contains("doi-events") && !page.body.contains(">staff<"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(project.snapshot(), before, "a GET changed the database");

    // Each link is good for its own purpose only.
    let unsubscribe = project.unsubscribe_token(SECRET, reader, lists[0]);
    assert_eq!(server.get(&format!("/p/{unsubscribe}")).status, 404);
    assert_eq!(server.get(&format!("/u/{token}")).status, 404);
    assert_eq!(server.one_click(&token).status, 404);
    // A forged or truncated link: the same 404.
    assert_eq!(
        server
            .get(&format!("/p/{}", &token[..token.len() - 2]))
            .status,
        404
    );
    let other = keys("a-different-secret-of-more-than-thirty-two-chars").preferences(
        reader,
        lists[0],
        &project.nonce(reader),
        1,
    );
    assert_eq!(server.get(&format!("/p/{other}")).status, 404);
    assert_eq!(project.snapshot(), before);
}

#[test]
fn saving_joins_leaves_and_changes_language_and_name_as_events_from_preferences() {
    let Setup {
        project,
        lists,
        reader,
    } = setup();
    let [news, events_doi, staff, board] = lists;
    let token = preferences_token(&project, reader, news);
    let server = Server::start(&project, &[]);
    let path = format!("/p/{token}");

    // From another site: refused, nothing written, even with the right link.
    let before = project.snapshot();
    let body = format!(
        "shown={news},{events_doi},{staff}&list-{news}=on&list-{events_doi}=on&name=Ana&lang=fr"
    );
    let forged = http(
        server.addr,
        "POST",
        &path,
        &[("Content-Type", FORM), ("Origin", "https://evil.example")],
        body.as_bytes(),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(project.snapshot(), before);

    // Join the double-opt-in list, leave the private one, keep news; French; a name. A
    // hidden list smuggled into the form is ignored.
    let body = format!(
        "shown={news},{events_doi},{staff},{board}&list-{news}=on&list-{events_doi}=on&list-{board}=on&name=Ana+Lima&lang=fr"
    );
    let r = save(&server, &path, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("<html lang=\"fr\""),
        "answered in the new language"
    );
    assert!(r.body.contains("Vos choix sont enregistrés"), "{}", r.body);
    assert!(r.body.contains("Nouvelles du mois"), "{}", r.body);
    assert_eq!(project.status(reader, news).as_deref(), Some("confirmed"));
    assert_eq!(
        project.status(reader, events_doi).as_deref(),
        Some("confirmed"),
        "the link proves the address: no confirmation round"
    );
    assert_eq!(
        project.status(reader, staff).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(project.status(reader, board), None);
    assert_eq!(
        project
            .text(&format!(
                "SELECT language || '/' || name FROM subscribers WHERE id = {reader}"
            ))
            .as_deref(),
        Some("fr/Ana Lima")
    );
    // Three changes, three events, all from the preference centre; the name is not in them.
    assert_eq!(events(&project, reader, "preferences"), 3);
    let details = project.text(&format!(
        "SELECT string_agg(kind || ':' || detail, ' ') FROM events WHERE subscriber_id = {reader} AND source = 'preferences'"
    ));
    assert!(
        !details.clone().unwrap_or_default().contains("Ana"),
        "{details:?}"
    );

    // Saving the same again writes nothing.
    let r = save(&server, &path, &body);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("rien à enregistrer"), "{}", r.body);
    assert_eq!(events(&project, reader, "preferences"), 3);

    // A name that cannot be stored: 422, the form again, nothing written.
    let bad = format!("shown={news}&list-{news}=on&name=A%0Ab&lang=fr");
    let r = save(&server, &path, &bad);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("ligne de <bdi>256</bdi> caractères"),
        "the limit the store applies: {}",
        r.body
    );
    assert_eq!(events(&project, reader, "preferences"), 3);

    // Leave everything.
    let origin = format!("http://{}", server.addr);
    let r = http(
        server.addr,
        "POST",
        &format!("{path}/all"),
        &[("Content-Type", FORM), ("Origin", &origin)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        project.scalar(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE subscriber_id = {reader} AND status <> 'unsubscribed'"
        )),
        0
    );
    assert_eq!(events(&project, reader, "preferences"), 5);
}

#[test]
fn a_blocklisted_reader_can_leave_but_not_join() {
    let Setup {
        project,
        lists,
        reader,
    } = setup();
    let [news, events_doi, ..] = lists;
    project.execute(&format!(
        "UPDATE subscribers SET status = 'blocklisted' WHERE id = {reader}"
    ));
    let token = preferences_token(&project, reader, news);
    let server = Server::start(&project, &[]);
    let r = save(
        &server,
        &format!("/p/{token}"),
        &format!("shown={news},{events_doi}&list-{events_doi}=on&lang=en&name="),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(project.status(reader, events_doi), None);
    assert_eq!(
        project.status(reader, news).as_deref(),
        Some("unsubscribed")
    );
}

#[test]
fn the_test_copy_link_previews_the_page_and_saves_nothing() {
    let Setup { project, .. } = setup();
    let server = Server::start(&project, &[]);
    let before = project.snapshot();
    let page = server.get("/p/test-copy");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Preview of the preference centre"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Monthly news") && !page.body.contains("Team notes"));
    let r = save(&server, "/p/test-copy", "shown=1&list-1=on&lang=fr&name=X");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(project.snapshot(), before);
}
