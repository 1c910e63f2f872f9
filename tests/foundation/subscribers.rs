//! `subscribers add | list | show | unsubscribe | remove`.

use crate::support::Project;

#[test]
fn add_normalises_the_domain_and_finds_case_insensitive_duplicates() {
    let p = Project::with_lists();
    p.ok(&[
        "subscribers",
        "add",
        "Ana.Lima@Bücher.Example",
        "--name",
        "Ana Lima",
        "--lang",
        "PT_br",
        "--list",
        "news",
        "--attr",
        "city=Recife",
    ]);
    assert_eq!(
        p.strings("SELECT email FROM subscribers"),
        vec!["Ana.Lima@xn--bcher-kva.example".to_string()]
    );
    assert_eq!(
        p.strings("SELECT language FROM subscribers"),
        vec!["pt-BR".to_string()]
    );
    let (code, _, err) = p.run(&[
        "subscribers",
        "add",
        "ana.lima@BÜCHER.example",
        "--list",
        "partners",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already known"), "{err}");
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscribers"), 1);
    assert_eq!(
        p.strings("SELECT status FROM subscriptions ORDER BY list_id"),
        vec!["confirmed".to_string(), "unconfirmed".to_string()],
        "double opt-in list starts unconfirmed"
    );
}

#[test]
fn bad_addresses_and_header_injection_are_refused_before_writing() {
    let p = Project::with_lists();
    let before = p.counts();
    for (args, needle) in [
        (
            vec!["subscribers", "add", "Ana <ana@example.org>"],
            "display name",
        ),
        (vec!["subscribers", "add", "ana@example"], "has no dot"),
        (
            vec![
                "subscribers",
                "add",
                "ana@example.org\r\nBcc: x@example.net",
            ],
            "control character",
        ),
        (
            vec![
                "subscribers",
                "add",
                "ana@example.org",
                "--name",
                "Ana\r\nBcc: x@example.net",
            ],
            "line break",
        ),
        (
            vec!["subscribers", "add", "ana@example.org", "--lang", "english"],
            "not a language tag",
        ),
        (
            vec!["subscribers", "add", "ana@example.org", "--attr", "novalue"],
            "KEY=VALUE",
        ),
        (
            vec!["subscribers", "add", "ana@example.org", "--list", "nwes"],
            "did you mean `news`?",
        ),
    ] {
        let (code, _, err) = p.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    }
    assert_eq!(p.counts(), before, "nothing written");
}

#[test]
fn unsubscribe_is_per_list_and_never_undone_silently() {
    let p = Project::with_lists();
    p.ok(&[
        "subscribers",
        "add",
        "ana@example.org",
        "--list",
        "news",
        "--list",
        "partners",
    ]);
    p.ok(&[
        "subscribers",
        "unsubscribe",
        "ana@example.org",
        "--list",
        "news",
    ]);
    assert_eq!(
        p.strings("SELECT l.name || '=' || s.status FROM subscriptions s JOIN lists l ON l.id = s.list_id ORDER BY l.name"),
        vec!["news=unsubscribed".to_string(), "partners=unconfirmed".to_string()]
    );
    let (code, _, err) = p.run(&["subscribers", "add", "ana@example.org", "--list", "news"]);
    assert_eq!(code, 0);
    assert!(err.contains("stays unsubscribed"), "{err}");
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscriptions WHERE status = 'unsubscribed'"),
        1
    );
    p.ok(&[
        "subscribers",
        "add",
        "ana@example.org",
        "--list",
        "news",
        "--new-consent",
    ]);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscriptions WHERE status = 'unsubscribed'"),
        0
    );
    p.ok(&["subscribers", "unsubscribe", "ana@example.org"]);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscriptions WHERE status <> 'unsubscribed'"),
        0
    );
}

#[test]
fn remove_erases_personal_data_and_blocks_re_adding() {
    let p = Project::with_lists();
    p.ok(&[
        "subscribers",
        "add",
        "Erase.Me@example.org",
        "--name",
        "Erase Me",
        "--list",
        "news",
    ]);
    p.ok(&["subscribers", "remove", "erase.me@example.org", "--yes"]);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscribers"), 0);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscriptions"), 0);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM suppressions"), 1);
    // No personal data is left anywhere in the file's tables.
    let leftovers = p.scalar(
        "SELECT (SELECT COUNT(*) FROM events WHERE detail LIKE '%rase%' OR source LIKE '%rase%' OR subscriber_id IS NOT NULL)",
    );
    assert_eq!(leftovers, 0);

    let (code, _, err) = p.run(&[
        "subscribers",
        "add",
        "ERASE.ME@example.org",
        "--list",
        "news",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("erased at the person's request") && err.contains("--new-consent"),
        "{err}"
    );
    let (code, _, err) = p.run(&["subscribers", "show", "erase.me@example.org"]);
    assert_eq!(code, 2);
    assert!(err.contains("erased"), "{err}");
    p.ok(&[
        "subscribers",
        "add",
        "erase.me@example.org",
        "--list",
        "news",
        "--new-consent",
    ]);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM suppressions"), 0);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM events WHERE kind = 'reconsented'"),
        1
    );
}

#[test]
fn show_and_list_in_every_format() {
    let p = Project::with_lists();
    p.ok(&[
        "subscribers",
        "add",
        "ana@example.org",
        "--name",
        "Ana",
        "--list",
        "news",
        "--attr",
        "city=Recife",
    ]);
    p.ok(&["subscribers", "add", "bo@example.org", "--list", "partners"]);

    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["--json", "subscribers", "show", "ANA@example.org"]))
            .expect("json");
    assert_eq!(shown["name"], "Ana");
    assert_eq!(shown["attributes"]["city"], "Recife");
    assert_eq!(shown["subscriptions"][0]["consent_source"], "cli");
    let kinds: Vec<&str> = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["created", "subscribed"]);

    let table = p.ok(&["subscribers", "list", "--list", "news"]);
    assert!(
        table.contains("ana@example.org") && !table.contains("bo@example.org"),
        "{table}"
    );
    let csv = p.ok(&[
        "subscribers",
        "list",
        "--status",
        "unconfirmed",
        "--format",
        "csv",
    ]);
    assert_eq!(
        csv,
        "email,name,lang,lists,attributes\nbo@example.org,,,partners,\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["subscribers", "list", "--format", "json"])).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(2));
    let (code, _, err) = p.run(&["subscribers", "list", "--status", "gone"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a status"), "{err}");
}

/// `subscribers unblock` lifts a blocklisting (a 5.1.1 bounce, an operator's decision) and
/// records it; subscriptions stay as they were, and it refuses where there is nothing to lift.
#[test]
fn unblock_lifts_a_blocklisting_and_nothing_else() {
    let p = Project::with_lists();
    p.write(
        "ana.csv",
        "email,lists\nana@example.org,news|partners:unsubscribed\n",
    );
    p.ok(&["subscribers", "import", "ana.csv"]);
    p.execute("UPDATE subscribers SET status = 'blocklisted' WHERE email = 'ana@example.org'");
    let subscriptions = "SELECT l.name || ':' || x.status FROM subscriptions x
         JOIN lists l ON l.id = x.list_id ORDER BY l.name";
    let before = p.strings(subscriptions);

    let (code, _, err) = p.run(&["subscribers", "unblock", "ana@example.org"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("ana@example.org is no longer blocklisted"),
        "{err}"
    );
    assert_eq!(p.strings("SELECT status FROM subscribers"), ["active"]);
    assert_eq!(
        p.strings("SELECT kind || ' ' || source FROM events WHERE kind = 'unblocked'"),
        ["unblocked cli"]
    );
    assert_eq!(p.strings(subscriptions), before, "subscriptions untouched");
    assert_eq!(before, ["news:confirmed", "partners:unsubscribed"]);

    let counts = p.counts();
    let (code, _, err) = p.run(&["subscribers", "unblock", "ana@example.org"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not blocklisted"), "{err}");
    assert_eq!(p.counts(), counts);

    p.ok(&["subscribers", "add", "bo@example.org"]);
    p.ok(&["subscribers", "remove", "bo@example.org", "--yes"]);
    let (code, _, err) = p.run(&["subscribers", "unblock", "bo@example.org"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("was erased"), "{err}");

    let (code, _, err) = p.run(&["subscribers", "unblock", "nobody@example.org"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nobody@example.org"), "{err}");
}

/// Erasure cannot be undone: a script must say it means it (`--yes`), and a person at a
/// terminal is asked.
#[test]
fn remove_asks_on_a_terminal_and_needs_yes_in_a_script() {
    let p = Project::with_lists();
    p.ok(&["subscribers", "add", "ana@example.org", "--list", "news"]);
    let before = p.counts();
    // Off a terminal (standard input is a pipe here), without --yes: refused.
    let (code, _, err) = p.run(&["subscribers", "remove", "ana@example.org"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ana@example.org") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(p.counts(), before, "nothing erased");

    // On a terminal (a pseudo-terminal from util-linux `script`): asked, and only "y" erases.
    let bin = assert_cmd::cargo::cargo_bin("bulletin");
    let on_terminal = |answer: &str| {
        let script = p.program("script");
        let out = assert_cmd::Command::from_std(script)
            .args([
                "-qec",
                &format!("{} subscribers remove ana@example.org", bin.display()),
                "/dev/null",
            ])
            .write_stdin(answer)
            .output()
            .expect("script (util-linux) runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_terminal("n\n");
    assert!(
        shown.contains(
            "Erase ana@example.org for good? Their history is kept only as a hash. [y/N]"
        ),
        "{shown}"
    );
    assert!(shown.contains("nothing erased"), "{shown}");
    assert_eq!(p.counts(), before, "answered no");
    let shown = on_terminal("y\n");
    assert!(shown.contains("erased ana@example.org"), "{shown}");
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscribers"), 0);

    p.ok(&["subscribers", "add", "bo@example.org", "--list", "news"]);
    p.ok(&["subscribers", "remove", "bo@example.org", "--yes"]);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscribers"), 0);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM suppressions"), 2);
}
