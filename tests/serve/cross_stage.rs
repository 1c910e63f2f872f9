//! #12's cross-stage check, through the real binary, a real SMTP server (aiosmtpd) and real
//! HTTP: a subscriber whose language is `es` receives the Spanish variant, opens the preference
//! centre from the "Manage preferences" link of the message they received, switches to French
//! and leaves one list; the next send gives them the French variant and skips that list.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mail_parser::MessageParser;

use crate::support::{Project, Server, SmtpSink, http, send_campaign};

const PUBLIC_URL: &str = "https://news.example.org";

/// The minimal fixture edition (en, es) under a new slug, with a French translation added.
fn edition(p: &Project, slug: &str) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/editions/minimal");
    let to = p.path().join("editions").join(slug);
    std::fs::create_dir_all(to.join("articles")).expect("edition folder");
    for entry in std::fs::read_dir(from.join("articles")).expect("articles") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join("articles").join(entry.file_name())).expect("copy");
    }
    let manifest = std::fs::read_to_string(from.join("edition.toml"))
        .expect("edition.toml")
        .replace("slug = \"minimal\"", &format!("slug = \"{slug}\""))
        .replacen(
            "[[sections]]",
            "[translations.fr]\ntitle = \"Notes de terrain\"\n\
             subject = \"Notes de terrain : deux histoires de la côte\"\n\
             intro = \"Bonjour de la côte ! Deux courtes histoires.\"\n\n[[sections]]",
            1,
        );
    std::fs::write(to.join("edition.toml"), manifest).expect("write edition.toml");
    to
}

fn parse(raw: &str) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(raw.as_bytes())
        .expect("the message parses")
}

/// The received messages of campaign `campaign` addressed to `to` (the server's folder is
/// not in arrival order; the Message-ID names the campaign).
fn message_to(messages: &[String], campaign: i64, to: &str) -> Vec<String> {
    let prefix = format!("bulletin.{campaign}.");
    messages
        .iter()
        .filter(|raw| {
            let m = parse(raw);
            m.message_id().is_some_and(|id| id.starts_with(&prefix))
                && m.to().and_then(|a| a.first()).and_then(|a| a.address()) == Some(to)
        })
        .cloned()
        .collect()
}

/// The `lang` of the HTML part's root element.
fn html_lang(raw: &str) -> String {
    let html = parse(raw).body_html(0).expect("an HTML part").into_owned();
    let start = html.find("<html").expect("<html");
    let tag = &html[start..start + html[start..].find('>').expect("end of tag")];
    let lang = tag.split("lang=\"").nth(1).expect("lang attribute");
    lang[..lang.find('"').expect("closing quote")].to_string()
}

/// The path of the "Manage preferences" link in the message's HTML footer.
fn preferences_path(raw: &str) -> String {
    let html = parse(raw).body_html(0).expect("an HTML part").into_owned();
    let prefix = format!("{PUBLIC_URL}/p/");
    let start = html
        .find(&prefix)
        .unwrap_or_else(|| panic!("no preferences link in:\n{html}"));
    let token: String = html[start + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("/p/{token}")
}

#[test]
fn a_spanish_reader_switches_to_french_and_leaves_a_list_and_the_next_send_follows() {
    let project = Project::new();
    project.ok(&["lists", "add", "news"]);
    project.ok(&["lists", "add", "events"]);
    project.display_name("news", "es", "Noticias");
    project.display_name("events", "es", "Eventos");
    project.display_name("events", "fr", "Événements");
    project.write(
        "people.csv",
        "email,name,lang,lists\n\
         lucia@example.org,Lucía Pérez,es,news|events\n\
         other@example.org,Other Reader,en,news|events\n",
    );
    project.ok(&["subscribers", "import", "people.csv"]);
    let lists: Vec<i64> = ["news", "events"]
        .iter()
        .map(|n| project.scalar(&format!("SELECT id FROM lists WHERE name = '{n}'")))
        .collect();
    let lucia = project.scalar("SELECT id FROM subscribers WHERE email = 'lucia@example.org'");

    let sink = SmtpSink::start(&project.path().join("smtp"));
    let send = |edition: &Path, list: &str| {
        send_campaign(&project, &sink, edition, list, PUBLIC_URL);
    };

    // First send: Lucía reads Spanish.
    send(&edition(&project, "first"), "news");
    let first = sink.wait_for(2, Duration::from_secs(30));
    let hers = message_to(&first, 1, "lucia@example.org");
    assert_eq!(hers.len(), 1);
    assert_eq!(html_lang(&hers[0]), "es");
    let path = preferences_path(&hers[0]);
    let unsubscribe = parse(&hers[0])
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .to_string();
    assert!(
        !unsubscribe.contains(&path),
        "the preferences link is not the unsubscribe link"
    );

    // She opens the link from the message, switches to French and leaves `events`.
    let server = Server::start(&project, &[("BULLETIN_LIST_PUBLIC_URL", PUBLIC_URL)]);
    let page = server.get(&path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Noticias") && page.body.contains("Eventos"),
        "{}",
        page.body
    );
    let (news, events) = (lists[0], lists[1]);
    let body = format!("shown={news},{events}&list-{news}=on&name=Luc%C3%ADa+P%C3%A9rez&lang=fr");
    let origin = format!("http://{}", server.addr);
    let saved = http(
        server.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &origin),
        ],
        body.as_bytes(),
    );
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("<html lang=\"fr\""), "{}", saved.body);
    assert_eq!(
        project.status(lucia, events).as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        project.scalar(&format!(
            "SELECT COUNT(*) FROM events WHERE subscriber_id = {lucia} AND source = 'preferences'"
        )),
        2,
        "one event for the list, one for the language"
    );
    drop(server);

    // The next edition: French for her on `news`, and nothing for her on `events`.
    let next = edition(&project, "second");
    send(&next, "news");
    let after_news = sink.wait_for(4, Duration::from_secs(30));
    let hers = message_to(&after_news, 2, "lucia@example.org");
    assert_eq!(hers.len(), 1, "one message on news");
    assert_eq!(html_lang(&hers[0]), "fr", "the French variant now");
    send(&next, "events");
    sink.wait_for(5, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let all = sink.texts();
    assert_eq!(all.len(), 5, "only the other reader gets `events`");
    assert!(message_to(&all, 3, "lucia@example.org").is_empty());
    assert_eq!(message_to(&all, 3, "other@example.org").len(), 1);
    assert_eq!(
        project.scalar(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE campaign_id = 3 AND subscriber_id = {lucia}"
        )),
        0,
        "the send to `events` does not count her at all"
    );
}
