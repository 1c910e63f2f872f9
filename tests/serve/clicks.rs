//! Click counting (#14 item 7), through the real binary, a real SMTP server (aiosmtpd), real
//! HTTP and dkimpy: an edition that opts in (`track_clicks = true`) is sent with its links
//! going through `serve`'s `/c/{token}`, which redirects to exactly the original address and
//! counts the click per link and language; forged, foreign and tampered tokens get the 404
//! page and no redirect; an edition that does not opt in keeps its links; nothing is recorded
//! per person.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bulletin_testkit::project::Backend;
use mail_parser::MessageParser;

use crate::dkim_support::{KeyKind, assert_maildir_verifies, generate_key};
use crate::support::{OLD_SECRET, Project, SECRET, Server, SmtpSink, http, keys, send_campaign};

const PUBLIC_URL: &str = "https://news.example.org";
const HARBOUR: &str = "https://newsletter.example.org/stories/harbour";
const HARBOUR_ES: &str = "https://newsletter.example.org/es/stories/harbour";

/// The minimal fixture edition under `slug`, counting clicks when `track` is true.
fn edition(p: &Project, slug: &str, track: bool) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/editions/minimal");
    let to = p.path().join("editions").join(slug);
    bulletin_testkit::copy_dir(&from, &to);
    let setting = if track { "track_clicks = true\n" } else { "" };
    let manifest = std::fs::read_to_string(from.join("edition.toml"))
        .expect("edition.toml")
        .replace("slug = \"minimal\"", &format!("slug = \"{slug}\""))
        .replacen(
            "default_language = \"en\"\n",
            &format!("default_language = \"en\"\n{setting}"),
            1,
        );
    std::fs::write(to.join("edition.toml"), manifest).expect("write edition.toml");
    to
}

/// A project signing with DKIM, a list `news` of two English readers and one Spanish one.
fn project() -> (Project, PathBuf) {
    let p = Project::new();
    let key = p.path().join("dkim.pem");
    generate_key(&key, KeyKind::RsaPkcs8);
    p.write(
        "bulletin.toml",
        "[list]\nname = \"Field notes\"\nid = \"notes.example.org\"\n\
         from = \"Field notes <news@example.org>\"\n\
         [dkim]\ndomain = \"example.org\"\nselector = \"news\"\nkey_file = \"dkim.pem\"\n",
    );
    p.ok(&["lists", "add", "news"]);
    p.write(
        "people.csv",
        "email,name,lang,lists\n\
         ana@example.org,Ana Lima,en,news\n\
         bo@example.org,Bo Chen,en,news\n\
         lucia@example.org,Lucía Pérez,es,news\n",
    );
    p.ok(&["subscribers", "import", "people.csv"]);
    (p, key)
}

fn send(p: &Project, sink: &SmtpSink, edition: &Path) -> String {
    send_campaign(p, sink, edition, "news", PUBLIC_URL)
}

/// The HTML and text parts of the message to `to`.
fn parts(messages: &[String], to: &str) -> (String, String) {
    let raw = messages
        .iter()
        .find(|raw| raw.contains(&format!("To: {to}")) || raw.contains(&format!("<{to}>")))
        .unwrap_or_else(|| panic!("no message to {to}"));
    let m = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("the message parses");
    (
        m.body_html(0).expect("an HTML part").into_owned(),
        m.body_text(0).expect("a text part").into_owned(),
    )
}

/// The paths of the click links in `html`, in order, without repeats.
fn click_paths(html: &str) -> Vec<String> {
    let prefix = format!("{PUBLIC_URL}/c/");
    let mut found: Vec<String> = Vec::new();
    for piece in html.split(&prefix).skip(1) {
        let token: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let path = format!("/c/{token}");
        if !found.contains(&path) {
            found.push(path);
        }
    }
    found
}

fn report_json(p: &Project) -> serde_json::Value {
    let out = p.ok(&["--json", "campaigns", "report", "1"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A reader's click: a GET as a browser sends it (browsers always send `Accept-Language`).
fn click(server: &Server, path: &str) -> crate::support::Response {
    http(
        server.addr,
        "GET",
        path,
        &[("Accept-Language", "en-GB,en;q=0.8")],
        b"",
    )
}

/// A refusal: the not-found page, and no redirect.
fn assert_refused(server: &Server, path: &str) {
    let r = server.get(path);
    assert_eq!(r.status, 404, "{path}: {}", r.body);
    assert!(r.header("Location").is_none(), "{path} must not redirect");
    assert!(
        r.body.contains("<html"),
        "a page, not a bare status: {}",
        r.body
    );
}

#[test]
fn clicks_are_counted_per_link_and_language_and_redirect_only_to_the_edition_links() {
    let (p, key) = project();
    let sink = SmtpSink::start(&p.path().join("smtp"));
    let said = send(&p, &sink, &edition(&p, "tracked", true));
    assert!(said.contains("counting clicks on"), "{said}");
    let messages = sink.wait_for(3, Duration::from_secs(30));

    // The HTML links go through /c/, the same for every reader of a language: the token names
    // the link, never the person. The text part keeps the real addresses.
    let (ana_html, ana_text) = parts(&messages, "ana@example.org");
    let (bo_html, _) = parts(&messages, "bo@example.org");
    let (lucia_html, _) = parts(&messages, "lucia@example.org");
    let ana_links = click_paths(&ana_html);
    assert!(!ana_links.is_empty(), "no click links in:\n{ana_html}");
    assert_eq!(ana_links, click_paths(&bo_html), "no per-person links");
    assert!(
        !ana_html.contains(&format!("href=\"{HARBOUR}\"")),
        "{ana_html}"
    );
    assert!(
        ana_text.contains(HARBOUR),
        "the text part keeps the address"
    );
    assert!(
        ana_html.contains(&format!("{PUBLIC_URL}/u/")),
        "unsubscribe stays"
    );
    assert!(
        ana_html.contains(&format!("{PUBLIC_URL}/p/")),
        "preferences stay"
    );
    // Signed after the rewrite: an independent verifier accepts every message.
    assert_maildir_verifies(&sink.maildir, &key, KeyKind::RsaPkcs8);

    // Each link redirects to exactly the address the edition wrote, and counts once.
    let server = Server::start(&p, &[("BULLETIN_LIST_PUBLIC_URL", PUBLIC_URL)]);
    let stored: BTreeSet<String> = p
        .strings("SELECT url FROM campaign_links WHERE campaign_id = 1 AND language = 'en'")
        .into_iter()
        .collect();
    assert!(stored.contains(HARBOUR), "{stored:?}");
    let mut followed = BTreeSet::new();
    let mut harbour = None;
    for path in &ana_links {
        let r = click(&server, path);
        assert_eq!(r.status, 302, "{path}: {}", r.body);
        assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
        let location = r.header("Location").expect("Location").to_string();
        if location == HARBOUR {
            harbour = Some(path.clone());
        }
        followed.insert(location);
    }
    assert_eq!(
        followed, stored,
        "every link leads to its own stored address"
    );
    let harbour = harbour.expect("the harbour story's link");
    // A HEAD (a link checker: not counted), then a second click whose query tries to choose
    // the destination (ignored; it counts as a click on the stored link).
    let head = http(server.addr, "HEAD", &harbour, &[], b"");
    assert_eq!(head.status, 302);
    assert_eq!(head.header("Location"), Some(HARBOUR));
    let evil = click(&server, &format!("{harbour}?url=https://evil.example/"));
    assert_eq!(evil.header("Location"), Some(HARBOUR));
    // A scanner (no Accept-Language): redirected, and counted apart.
    assert_eq!(server.get(&harbour).header("Location"), Some(HARBOUR));
    // Lucía clicks the Spanish story.
    let lucia_harbour = click_paths(&lucia_html)
        .into_iter()
        .find(|path| click(&server, path).header("Location") == Some(HARBOUR_ES))
        .expect("the Spanish harbour link");
    assert!(
        !ana_links.contains(&lucia_harbour),
        "one link row per language"
    );

    // Refused: garbage, a link of another campaign signed with the right key, an unknown
    // link, a tampered token, the old secret's token for a link never issued, a longer path.
    let forged_campaign = keys(SECRET).click(2, 1);
    let unknown = keys(SECRET).click(1, 9_999);
    let mut tampered: Vec<char> = harbour.chars().collect();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    for path in [
        "/c/not-a-token".to_string(),
        format!("/c/{forged_campaign}"),
        format!("/c/{unknown}"),
        tampered,
        format!("/c/{}", keys(OLD_SECRET).click(1, 1)),
        format!("{harbour}/more"),
    ] {
        assert_refused(&server, &path);
    }

    // The report: per link (over both languages) and per language.
    let report = report_json(&p);
    let clicks = &report["report"]["clicks"];
    let links = clicks["links"].as_array().expect("links");
    let of = |url: &str| {
        links
            .iter()
            .find(|l| l["url"] == url)
            .unwrap_or_else(|| panic!("{url} in {links:?}"))["clicks"]
            .as_i64()
    };
    // Ana's round (1) + the `?url=` click (1); the HEAD is not counted, the scanner apart.
    assert_eq!(of(HARBOUR), Some(2), "{clicks}");
    assert_eq!(clicks["automated"], 1, "{clicks}");
    // Lucía's search clicked each Spanish link up to and including the harbour one.
    assert!(of(HARBOUR_ES).is_some_and(|n| n >= 1), "{clicks}");
    let en_total = ana_links.len() as i64 + 1;
    let by_language = clicks["by_language"].as_array().expect("by_language");
    assert!(
        by_language
            .iter()
            .any(|b| b["key"] == "en" && b["count"] == en_total),
        "{by_language:?}"
    );
    assert!(
        by_language.iter().any(|b| b["key"] == "es"),
        "{by_language:?}"
    );
    let page_path = p
        .path()
        .join(report["html"].as_str().expect("the page's path"));
    let page = std::fs::read_to_string(&page_path).expect("the HTML report");
    assert!(
        page.contains("Clicks per link") && page.contains(HARBOUR),
        "{page}"
    );
    let table = p.ok(&["campaigns", "report", "1"]);
    assert!(
        table.contains("clicks per link") && table.contains(HARBOUR),
        "{table}"
    );
    let csv = p.ok(&["campaigns", "report", "1", "--csv"]);
    assert!(
        csv.lines()
            .next()
            .is_some_and(|h| h.ends_with(",clicks,automated")),
        "{csv}"
    );
    assert!(csv.contains(&format!("link,{HARBOUR},,,,,,2,1")), "{csv}");

    // Nothing per person: the table has no column that could name a reader or a delivery.
    // Each backend lists a table's columns its own way.
    let columns = match p.backend() {
        Backend::Sqlite => "SELECT name FROM pragma_table_info('campaign_links')",
        Backend::Postgres => {
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = 'campaign_links'"
        }
    };
    let columns = p.strings(columns);
    assert!(!columns.is_empty(), "the table has columns");
    assert!(
        !columns.iter().any(|c| ["subscriber", "deliver", "email"]
            .iter()
            .any(|w| c.contains(w))),
        "{columns:?}"
    );
}

#[test]
fn without_opt_in_links_stay_and_a_list_can_opt_in_instead() {
    let (p, _) = project();
    let sink = SmtpSink::start(&p.path().join("smtp"));
    let said = send(&p, &sink, &edition(&p, "plain", false));
    assert!(!said.contains("counting clicks"), "{said}");
    let messages = sink.wait_for(3, Duration::from_secs(30));
    let (html, _) = parts(&messages, "ana@example.org");
    assert!(html.contains(&format!("href=\"{HARBOUR}\"")), "{html}");
    assert!(click_paths(&html).is_empty(), "{html}");
    assert_eq!(p.scalar("SELECT COUNT(*) FROM campaign_links"), 0);
    assert!(report_json(&p)["report"]["clicks"].is_null());

    // The list opts in instead: the next edition, silent on clicks, counts them.
    p.ok(&["lists", "set", "news", "--track-clicks"]);
    send(&p, &sink, &edition(&p, "listed", false));
    let messages = sink.wait_for(6, Duration::from_secs(30));
    let second: Vec<String> = messages
        .into_iter()
        .filter(|raw| raw.contains("bulletin.2."))
        .collect();
    let (html, _) = parts(&second, "ana@example.org");
    assert!(!click_paths(&html).is_empty(), "{html}");
    assert!(p.scalar("SELECT COUNT(*) FROM campaign_links WHERE campaign_id = 2") > 0);
    // And stops again.
    p.ok(&["lists", "set", "news", "--no-track-clicks"]);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM lists WHERE name = 'news' AND track_clicks"),
        0
    );
}

#[test]
fn test_copies_and_composed_files_of_a_counting_edition_keep_the_real_links() {
    let (p, _) = project();
    let tracked = edition(&p, "tracked", true);
    let sink = SmtpSink::start(&p.path().join("smtp"));
    let out = p
        .cmd()
        .env("BULLETIN_SECRET", SECRET)
        .env("BULLETIN_SMTP_URL", sink.url())
        .env("BULLETIN_LIST_PUBLIC_URL", PUBLIC_URL)
        .args([
            "preview",
            &tracked.display().to_string(),
            "--to",
            "ana@example.org",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for raw in sink.wait_for(2, Duration::from_secs(30)) {
        let m = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("the message parses");
        let html = m.body_html(0).expect("an HTML part");
        assert!(
            html.contains(&format!("href=\"{HARBOUR}\""))
                || html.contains(&format!("href=\"{HARBOUR_ES}\"")),
            "{html}"
        );
        assert!(
            click_paths(&html).is_empty(),
            "a test copy counts nothing: {html}"
        );
    }
    p.ok(&["compose", &tracked.display().to_string()]);
    let composed = std::fs::read_to_string(p.path().join("out/tracked/en/email.html"))
        .expect("composed email.html");
    assert!(
        composed.contains(&format!("href=\"{HARBOUR}\"")),
        "{composed}"
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM campaign_links"), 0);
}

#[test]
fn a_resumed_campaign_counts_as_it_began() {
    let (p, _) = project();
    let sink = SmtpSink::start(&p.path().join("smtp"));
    let tracked = edition(&p, "tracked", true);
    send(&p, &sink, &tracked);
    let first = sink.wait_for(3, Duration::from_secs(30));
    let (ana_html, _) = parts(&first, "ana@example.org");
    let links = p.scalar("SELECT COUNT(*) FROM campaign_links");
    // Bo's message as if the first sender had stopped before it; the edition now says
    // nothing of clicks (the rendered mail, hence the campaign, is the same).
    p.execute("UPDATE deliveries SET status = 'queued' WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = 'bo@example.org')");
    let manifest = tracked.join("edition.toml");
    let text = std::fs::read_to_string(&manifest).expect("edition.toml");
    std::fs::write(&manifest, text.replace("track_clicks = true\n", "")).expect("write");
    let said = send(&p, &sink, &tracked);
    assert!(said.contains("began counting clicks"), "{said}");
    let all = sink.wait_for(4, Duration::from_secs(30));
    let resent: Vec<String> = all.into_iter().filter(|raw| !first.contains(raw)).collect();
    let (bo_html, _) = parts(&resent, "bo@example.org");
    assert_eq!(
        click_paths(&bo_html),
        click_paths(&ana_html),
        "the same links"
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM campaign_links"), links);
}

#[test]
fn simultaneous_clicks_are_all_counted_and_all_redirected() {
    const N: usize = 200;
    let p = Project::new();
    p.lists(&["news"]);
    p.execute(
        "INSERT INTO campaigns (edition_slug, list_id, list_name, content_hash, subject, status, created_at, updated_at)
         VALUES ('e', 1, 'news', 'h', 's', 'finished', 't', 't');
         INSERT INTO campaign_links (campaign_id, language, position, url, created_at)
         VALUES (1, 'en', 1, 'https://example.org/a', 't');",
    );
    let path = format!("/c/{}", keys(SECRET).click(1, 1));
    let server = Server::start(&p, &[]);
    let addr = server.addr;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(N));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (barrier, path) = (std::sync::Arc::clone(&barrier), path.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let r = http(addr, "GET", &path, &[("Accept-Language", "en")], b"");
                (r.status, r.header("Location").map(str::to_string))
            })
        })
        .collect();
    for h in handles {
        let (status, location) = h.join().expect("thread");
        assert_eq!(status, 302, "{}", server.log());
        assert_eq!(location.as_deref(), Some("https://example.org/a"));
    }
    assert_eq!(
        p.scalar("SELECT clicks FROM campaign_links WHERE id = 1"),
        N as i64,
        "no click lost"
    );
}
