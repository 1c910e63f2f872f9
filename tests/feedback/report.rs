//! `campaigns report`: the counts a sender needs after a campaign, in a table, JSON, CSV and
//! an HTML page with a chart.

use std::path::Path;

use bulletin_testkit::smtp::SmtpServer;

use crate::policy::{corpus, delivery_of, drop_in, maildir};
use crate::{SECRET, bounces, project, run};

#[test]
fn the_report_counts_bounces_complaints_unsubscribes_per_language_and_domain() {
    let people = [
        "amy@gmail.com",
        "bo@gmail.com",
        "cy@outlook.com",
        "di@example.org",
    ];
    let p = project(&people, Path::new("unused"), "");
    let server = SmtpServer::start(p.path());
    crate::send(&p, &server.url());
    let box_dir = maildir(&p);
    let hard = delivery_of(&p, "amy@gmail.com", 1);
    let complaint = delivery_of(&p, "cy@outlook.com", 1);
    drop_in(
        &box_dir,
        "1",
        &corpus("gmail-no-such-user.eml", hard, SECRET),
    );
    drop_in(
        &box_dir,
        "2",
        &corpus("arf-yahoo-complaint.eml", complaint, SECRET),
    );
    let (code, out, err) = bounces(&p, &["--maildir", &box_dir.display().to_string()]);
    assert_eq!(code, 0, "{out}\n{err}");
    p.ok(&["subscribers", "unsubscribe", "di@example.org"]);

    let relay = "smtp://127.0.0.1:9";
    let (code, table, err) = run(&p, relay, &["campaigns", "report", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("audience 4: 3 delivered, 0 failed, 1 bounced (1 hard, 0 soft, 0 rejected)"),
        "{table}"
    );
    assert!(
        table.contains("complaints: 1; unsubscribes after this campaign: 1 cli, 1 complaint"),
        "{table}"
    );
    // One complaint for three delivered messages: far above Gmail's 0.3 %.
    assert!(table.contains("complaint rate: 33.333 %"), "{table}");
    assert!(table.contains("ABOVE Gmail's limit"), "{table}");
    assert!(table.contains("per domain:"), "{table}");

    let (code, json, _) = run(&p, relay, &["--json", "campaigns", "report", "1"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let domains: Vec<(String, i64, i64)> = v["report"]["by_domain"]
        .as_array()
        .expect("by_domain")
        .iter()
        .map(|d| {
            (
                d["key"].as_str().expect("key").to_string(),
                d["audience"].as_i64().expect("audience"),
                d["bounced"].as_i64().expect("bounced"),
            )
        })
        .collect();
    assert_eq!(
        domains,
        [
            ("gmail.com".to_string(), 2, 1),
            ("example.org".to_string(), 1, 0),
            ("outlook.com".to_string(), 1, 0)
        ]
    );
    assert_eq!(v["report"]["by_language"][0]["key"], "en");
    let page = v["html"].as_str().expect("html path").to_string();

    let (code, csv, _) = run(&p, relay, &["campaigns", "report", "1", "--csv"]);
    assert_eq!(code, 0);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("dimension,value,audience,delivered,failed,bounced,complaints")
    );
    assert_eq!(lines.next(), Some("campaign,campaign 1,4,3,0,1,1"));
    assert!(csv.contains("\ndomain,gmail.com,2,1,0,1,0"), "{csv}");

    // The page beside the edition's output: the same summary, the warning, the chart.
    let html = std::fs::read_to_string(&page).expect("report page");
    assert!(
        page.ends_with("out/glo-act-special-edition/report-1.html"),
        "{page}"
    );
    assert!(html.contains("<svg"), "a chart");
    assert!(html.contains("<rect"), "with bars");
    assert!(
        html.contains("class=\"warn\""),
        "the complaint rate is highlighted"
    );

    let (code, _, err) = run(&p, relay, &["campaigns", "report", "9"]);
    assert_ne!(code, 0);
    assert!(err.contains('9'), "{err}");
}
