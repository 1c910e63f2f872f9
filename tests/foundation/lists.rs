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
