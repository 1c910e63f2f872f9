//! A newcomer's whole journey through the real binary, as the README tells it: start a
//! project, compose and preview its edition, import subscribers from an Excel-style file, send
//! a test copy and then the edition through a real SMTP server, serve the subscriber pages, and
//! let a reader leave with the one-click button of the message they received — then see it
//! all in `campaigns show` and `subscribers show`.

use std::time::Duration;

use mail_parser::MessageParser;

use crate::support::{Project, SECRET, Server, SmtpSink};

/// The path of the one-click URL in a received message's `List-Unsubscribe` header.
fn one_click_token(raw: &str) -> String {
    let message = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("the message parses");
    let header = message
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe");
    let url = header
        .split(['<', '>'])
        .find(|part| part.contains("/u/"))
        .expect("an https one-click URL");
    url.rsplit("/u/").next().expect("token").trim().to_string()
}

fn to_address(raw: &str) -> String {
    let message = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("the message parses");
    message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .expect("To")
        .to_string()
}

#[test]
fn from_init_to_a_one_click_unsubscribe_reported_by_campaigns_show() {
    let project = Project::bare();
    let (code, out, err) = project.run(&["init", "."]);
    assert_eq!(code, 0, "{err}");
    assert!(
        format!("{out}{err}").contains("bulletin compose editions/first-edition"),
        "the next steps name the commands: {out}{err}"
    );

    // The scaffolded edition composes cleanly and previews.
    let (code, _, composed) = project.run(&["compose", "editions/first-edition"]);
    assert_eq!(code, 0, "{composed}");
    assert!(composed.contains("lint: 0 error(s)"), "{composed}");
    project.ok(&["preview", "editions/first-edition"]);

    // Subscribers as Excel saves them: BOM, semicolons, CRLF, and one bad row on line 4.
    project.ok(&["lists", "add", "news"]);
    project.write(
        "people.csv",
        "\u{feff}email;name;lang;lists\r\n\
         ana.lima@example.org;Ana Lima;en;news\r\n\
         luc.martin@example.net;Luc Martin;fr;news\r\n\
         not-an-address;Nobody;en;news\r\n\
         mia.chen@example.org;Mia Chen;en;news\r\n",
    );
    let (code, _, err) = project.run(&["subscribers", "import", "people.csv"]);
    assert_eq!(code, 3, "a bad row makes a partial import: {err}");
    assert!(
        err.contains("people.csv:4"),
        "the bad row on its true line: {err}"
    );
    assert_eq!(
        project.scalar("SELECT COUNT(*) FROM subscribers"),
        3,
        "the three good rows"
    );

    // A test copy to the operator, then the edition, through a real SMTP server.
    let sink = SmtpSink::start(&project.path().join("smtp"));
    let bulletin = |args: &[&str]| {
        let out = project
            .cmd()
            .env("BULLETIN_SECRET", SECRET)
            .env("BULLETIN_SMTP_URL", sink.url())
            .env("BULLETIN_LIST_PUBLIC_URL", "https://news.example.org")
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    bulletin(&[
        "preview",
        "editions/first-edition",
        "--to",
        "operator@example.org",
    ]);
    assert_eq!(
        sink.wait_for(2, Duration::from_secs(30)).len(),
        2,
        "one per language"
    );
    bulletin(&["send", "editions/first-edition", "--list", "news", "--yes"]);
    let received = sink.wait_for(5, Duration::from_secs(30));
    let luc = received
        .iter()
        .find(|raw| to_address(raw) == "luc.martin@example.net")
        .expect("Luc's message");
    let html = MessageParser::default()
        .parse(luc.as_bytes())
        .and_then(|m| m.body_html(0).map(|h| h.into_owned()))
        .expect("an HTML part");
    assert!(html.contains("lang=\"fr\""), "Luc reads French");

    // The reader presses the button their mail client shows (RFC 8058).
    let server = Server::start(&project, &[]);
    let response = server.one_click(&one_click_token(luc));
    assert_eq!(response.status, 200, "{}", response.body);

    // What happened, as the operator sees it.
    let shown = bulletin(&["campaigns", "show", "1", "--all"]);
    assert!(
        shown.contains("luc.martin@example.net") && shown.contains("sent"),
        "{shown}"
    );
    let luc_now = bulletin(&["subscribers", "show", "luc.martin@example.net"]);
    assert!(luc_now.contains("unsubscribed"), "{luc_now}");
    assert_eq!(
        project.scalar(
            "SELECT COUNT(*) FROM events e JOIN subscribers s ON s.id = e.subscriber_id
             WHERE s.email = 'luc.martin@example.net' AND e.kind = 'unsubscribed' AND e.source = 'one-click'"
        ),
        1
    );
}
