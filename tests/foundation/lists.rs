//! `lists add | list | remove`.

use crate::support::Project;

#[test]
fn add_list_and_remove() {
    let p = Project::with_lists();
    let out = p.ok(&["--json", "lists", "list"]);
    let lists: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(lists[0]["name"], "news");
    assert_eq!(lists[1]["name"], "partners");
    assert_eq!(lists[1]["double_opt_in"], true);

    p.ok(&["subscribers", "add", "ana@example.org", "--list", "news"]);
    p.ok(&["lists", "remove", "news"]);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscriptions"), 0);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscribers"),
        1,
        "subscribers stay"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM events WHERE kind = 'list_removed'"),
        1
    );
}

#[test]
fn duplicate_bad_and_unknown_names_are_input_errors() {
    let p = Project::with_lists();
    let (code, _, err) = p.run(&["lists", "add", "news"]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = p.run(&["lists", "add", "a|b"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a valid list name"), "{err}");
    let (code, _, err) = p.run(&["lists", "remove", "nwes"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `news`?"), "{err}");
}

#[test]
fn a_list_with_campaigns_needs_force() {
    let p = Project::with_lists();
    p.execute(
        "INSERT INTO campaigns (edition_slug, list_id, list_name, content_hash, subject, created_at, updated_at)
         VALUES ('e', (SELECT id FROM lists WHERE name = 'news'), 'news', 'h', 's', 'now', 'now')",
    );
    let (code, _, err) = p.run(&["lists", "remove", "news"]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
    p.ok(&["lists", "remove", "news", "--force"]);
    assert_eq!(
        p.strings("SELECT list_name FROM campaigns WHERE list_id IS NULL"),
        vec!["news".to_string()],
        "the campaign keeps the list's name"
    );
}

/// A blocklisted person is never mailed, so `lists list` counts them apart rather than among
/// the confirmed audience, in the table and in JSON.
#[test]
fn blocklisted_subscribers_are_counted_apart() {
    let p = Project::with_lists();
    p.write(
        "people.csv",
        "email,lists\nana@example.org,news\nbo@example.org,news\ncy@example.org,news:unconfirmed\n",
    );
    p.ok(&["subscribers", "import", "people.csv"]);
    p.execute("UPDATE subscribers SET status = 'blocklisted' WHERE email = 'bo@example.org'");
    let out = p.ok(&["--json", "lists", "list"]);
    let lists: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(lists[0]["name"], "news");
    assert_eq!(lists[0]["confirmed"], 1, "{out}");
    assert_eq!(lists[0]["unconfirmed"], 1, "{out}");
    assert_eq!(lists[0]["blocklisted"], 1, "{out}");
    let table = p.ok(&["lists", "list"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let news: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("news"))
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let blocklisted = column("BLOCKLISTED").expect("a blocklisted column");
    assert_eq!(news.get(blocklisted), Some(&"1"), "{table}");
    let confirmed = column("CONFIRMED").expect("a confirmed column");
    assert_eq!(news.get(confirmed), Some(&"1"), "{table}");
}
