//! One mailbox, one subscriber: quoting that changes nothing is canonicalised at every door,
//! and IP literals are refused unless asked for.

use crate::support::Project;

#[test]
fn needless_quotes_do_not_make_a_second_subscriber() {
    let p = Project::with_lists();
    p.ok(&[
        "subscribers",
        "add",
        "\"ana\"@example.org",
        "--list",
        "news",
    ]);
    assert_eq!(
        p.strings("SELECT email FROM subscribers"),
        ["ana@example.org"]
    );
    let (code, _, err) = p.run(&["subscribers", "add", "ana@example.org", "--list", "news"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already known"), "{err}");

    p.write(
        "people.csv",
        "email,name\n\"\"\"bo\"\"@example.org\",Bo\nbo@example.org,Bo again\n\"\"\"ana\"\"@Example.org\",Ana\n",
    );
    let (code, out, err) = p.run(&["subscribers", "import", "people.csv", "--list", "news"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out.trim(), "1 added, 0 updated, 1 unchanged, 1 rejected");
    assert!(
        err.contains("people.csv:3: duplicate of line 2 (bo@example.org)"),
        "{err}"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscribers"),
        2,
        "ana and bo, once each"
    );
    // Quotes that are needed stay, in one canonical form.
    p.ok(&["subscribers", "add", "\"john\\ smith\"@example.org"]);
    p.ok(&["subscribers", "add", "\"john smith\"@example.org"]);
    assert_eq!(
        p.strings("SELECT email FROM subscribers WHERE email LIKE '%smith%'"),
        ["\"john smith\"@example.org"]
    );
}

#[test]
fn ip_literals_are_refused_unless_asked_for() {
    let p = Project::with_lists();
    let before = p.counts();
    let (code, _, err) = p.run(&["subscribers", "add", "x@[192.0.2.1]"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("IP literal") && err.contains("--allow-ip-literal"),
        "{err}"
    );
    assert_eq!(p.counts(), before);

    p.write("ips.csv", "email\nx@[192.0.2.1]\ny@example.org\n");
    let (code, out, err) = p.run(&["subscribers", "import", "ips.csv"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out.trim(), "1 added, 0 updated, 0 unchanged, 1 rejected");
    assert!(
        err.contains("ips.csv:2: invalid address") && err.contains("IP literal"),
        "{err}"
    );

    let out = p.ok(&["subscribers", "import", "ips.csv", "--allow-ip-literal"]);
    assert_eq!(out.trim(), "1 added, 0 updated, 1 unchanged, 0 rejected");
    p.ok(&[
        "subscribers",
        "add",
        "z@[IPv6:2001:DB8::1]",
        "--allow-ip-literal",
    ]);
    let mut emails = p.strings("SELECT email FROM subscribers WHERE email LIKE '%[%'");
    emails.sort();
    assert_eq!(emails, ["x@[192.0.2.1]", "z@[IPv6:2001:db8::1]"]);
    // Found again by the commands that look subscribers up.
    p.ok(&["subscribers", "show", "x@[192.0.2.1]"]);
}

/// Addresses with a non-ASCII local part (RFC 6531) are valid and kept, with a warning that
/// counts them: only a relay that announces SMTPUTF8 can take them.
#[test]
fn non_ascii_local_parts_are_counted_in_a_warning() {
    let p = Project::with_lists();
    p.write(
        "people.csv",
        "email\njosé@example.org\nana@bücher.example\n李@example.org\n",
    );
    let (code, out, err) = p.run(&["subscribers", "import", "people.csv", "--list", "news"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "3 added, 0 updated, 0 unchanged, 0 rejected");
    assert!(
        err.contains("warning: 2 address(es) have a non-ASCII part before the @")
            && err.contains("SMTPUTF8"),
        "{err}"
    );
    let out = p.ok(&["--json", "subscribers", "import", "people.csv"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["non_ascii_local_parts"], 2, "{out}");

    let (code, _, err) = p.run(&["subscribers", "add", "zoë@example.org"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("SMTPUTF8"), "{err}");
    let (_, _, err) = p.run(&["subscribers", "add", "zoe@bücher.example"]);
    assert!(
        !err.contains("SMTPUTF8"),
        "an IDN domain needs no SMTPUTF8: {err}"
    );
}
