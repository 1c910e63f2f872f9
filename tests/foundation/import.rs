//! `subscribers import`: every bad input the issue lists, and the rules that protect consent.

use crate::support::Project;

const GOOD: &str = "email,name,lang,lists,attributes,country\n\
ana@example.org,Ana Lima,pt,news,\"{\"\"org\"\":\"\"Defensoria\"\"}\",Brazil\n\
bo@example.org,Bo Chen,en,news|partners,,\n\
chloe@example.org,Chloé Martin,fr,partners:confirmed,,France\n";

#[test]
fn imports_once_and_a_second_run_changes_nothing() {
    let p = Project::with_lists();
    p.write("people.csv", GOOD);
    let out = p.ok(&["subscribers", "import", "people.csv"]);
    assert_eq!(out.trim(), "3 added, 0 updated, 0 unchanged, 0 rejected");
    assert_eq!(
        p.strings(
            "SELECT name || '|' || attributes FROM subscribers WHERE email = 'ana@example.org'"
        ),
        vec![r#"Ana Lima|{"country":"Brazil","org":"Defensoria"}"#.to_string()]
    );
    assert_eq!(
        p.strings("SELECT s.status FROM subscriptions s JOIN subscribers u ON u.id = s.subscriber_id WHERE u.email = 'chloe@example.org'"),
        vec!["confirmed".to_string()],
        "an explicit status in the file wins over double opt-in"
    );
    assert_eq!(
        p.strings("SELECT DISTINCT consent_source FROM subscriptions"),
        vec!["import:people.csv".to_string()]
    );
    let counts = p.counts();
    let out = p.ok(&["subscribers", "import", "people.csv"]);
    assert_eq!(out.trim(), "0 added, 0 updated, 3 unchanged, 0 rejected");
    assert_eq!(
        p.counts(),
        counts,
        "second import wrote nothing, not even events"
    );
}

#[test]
fn dry_run_reports_and_writes_nothing() {
    let p = Project::with_lists();
    p.write("people.csv", GOOD);
    let before = p.counts();
    let out = p.ok(&["subscribers", "import", "people.csv", "--dry-run"]);
    assert!(out.contains("3 added") && out.contains("dry run"), "{out}");
    assert_eq!(p.counts(), before);
}

#[test]
fn update_overwrites_fields_only_when_asked() {
    let p = Project::with_lists();
    p.write("people.csv", GOOD);
    p.ok(&["subscribers", "import", "people.csv"]);
    p.write(
        "renamed.csv",
        "email,name,lang\nANA@example.org,Ana Maria Lima,pt\n",
    );
    let out = p.ok(&["subscribers", "import", "renamed.csv"]);
    assert_eq!(out.trim(), "0 added, 0 updated, 1 unchanged, 0 rejected");
    let out = p.ok(&["subscribers", "import", "renamed.csv", "--update"]);
    assert_eq!(out.trim(), "0 added, 1 updated, 0 unchanged, 0 rejected");
    assert_eq!(
        p.strings("SELECT name FROM subscribers WHERE email_key = 'ana@example.org'"),
        vec!["Ana Maria Lima".to_string()]
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM events WHERE kind = 'updated'"),
        1
    );
}

#[test]
fn an_unsubscribe_survives_import_and_update() {
    let p = Project::with_lists();
    p.write("people.csv", GOOD);
    p.ok(&["subscribers", "import", "people.csv"]);
    p.ok(&[
        "subscribers",
        "unsubscribe",
        "bo@example.org",
        "--list",
        "news",
    ]);
    for args in [
        vec!["subscribers", "import", "people.csv"],
        vec!["subscribers", "import", "people.csv", "--update"],
        vec!["subscribers", "import", "people.csv", "--list", "news"],
    ] {
        let (code, out, err) = p.run(&args);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains(
                "people.csv:3: bo@example.org unsubscribed from news earlier; left unsubscribed"
            ),
            "{err}"
        );
        assert!(out.contains("0 added"), "{out}");
        assert_eq!(
            p.scalar("SELECT COUNT(*) FROM subscriptions s JOIN subscribers u ON u.id = s.subscriber_id
                      JOIN lists l ON l.id = s.list_id
                      WHERE u.email = 'bo@example.org' AND l.name = 'news' AND s.status = 'unsubscribed'"),
            1
        );
    }
}

#[test]
fn erased_addresses_are_not_imported_again() {
    let p = Project::with_lists();
    p.write("people.csv", GOOD);
    p.ok(&["subscribers", "import", "people.csv"]);
    p.ok(&["subscribers", "remove", "chloe@example.org", "--yes"]);
    let (code, out, err) = p.run(&["subscribers", "import", "people.csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 erased earlier (not re-added)"), "{out}");
    assert!(
        err.contains("people.csv:4: chloe@example.org was erased"),
        "{err}"
    );
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM subscribers WHERE email_key = 'chloe@example.org'"),
        0
    );
}

/// Runs an import that must fail as a whole: exit 2, a message naming the file, nothing written.
fn refused(p: &Project, file: &str, needle: &str) {
    let before = p.counts();
    let (code, _, err) = p.run(&["subscribers", "import", file]);
    assert_eq!(code, 2, "{file}: {err}");
    assert!(
        err.contains(file),
        "{file}: message must name the file: {err}"
    );
    assert!(err.contains(needle), "{file}: expected {needle:?} in {err}");
    assert_eq!(p.counts(), before, "{file}: nothing may be written");
}

#[test]
fn file_level_problems_stop_before_writing() {
    let p = Project::with_lists();
    refused(&p, "missing.csv", "cannot read");
    p.write("empty.csv", "");
    refused(&p, "empty.csv", "is empty");
    p.write(
        "binary.csv",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",
    );
    refused(&p, "binary.csv", "not a text file");
    p.write("noheader.csv", "ana@example.org,Ana\nbo@example.org,Bo\n");
    refused(&p, "noheader.csv", "the first line is data");
    p.write("noemail.csv", "address,name\nana@example.org,Ana\n");
    refused(&p, "noemail.csv", "no `email` column");
    p.write("latin1-header.csv", b"email,pr\xe9nom\n");
    refused(&p, "latin1-header.csv", "not UTF-8");
}

#[test]
fn bad_rows_are_reported_by_line_and_skipped() {
    let p = Project::with_lists();
    let mut file: Vec<u8> = Vec::new();
    file.extend_from_slice(b"email,name,lang,lists,attributes\n");
    file.extend_from_slice(b"good1@example.org,Good One,en,news,\n"); // 2
    file.extend_from_slice(b"not-an-address,Bad,en,news,\n"); // 3
    file.extend_from_slice(b"\"inj@example.org\",\"Eve\r\nBcc: victim@example.net\",en,news,\n"); // 4
    file.extend_from_slice(b"latin@example.org,Jos\xe9,es,news,\n"); // 6 (line 4 spans two lines)
    file.extend_from_slice(b"json@example.org,J,en,news,\"[1,2]\"\n"); // 7
    file.extend_from_slice(b"GOOD1@example.org,Again,en,news,\n"); // 8
    file.extend_from_slice(b"lang@example.org,L,english!,news,\n"); // 9
    file.extend_from_slice(b"big@example.org,");
    file.extend_from_slice(&vec![b'x'; 1024 * 1024]);
    file.extend_from_slice(b",en,news,\n"); // 10
    file.extend_from_slice(b"good2@example.org,Good Two,fr,news,\n"); // 11
    p.write("mixed.csv", file);
    let (code, out, err) = p.run(&["subscribers", "import", "mixed.csv"]);
    assert_eq!(code, 3, "some rows rejected means exit 3: {err}");
    assert_eq!(out.trim(), "2 added, 0 updated, 0 unchanged, 7 rejected");
    for needle in [
        "mixed.csv:3: invalid address",
        "mixed.csv:4: the name contains a line break",
        "mixed.csv:6: column `name` is not UTF-8 (byte 0xE9",
        "mixed.csv:7: attributes must be a JSON object",
        "mixed.csv:8: duplicate of line 2",
        "mixed.csv:9: `english!` is not a language tag",
        "mixed.csv:10: column `name` is 1048576 bytes long",
    ] {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
    let mut emails = p.strings("SELECT email FROM subscribers ORDER BY email");
    emails.sort();
    assert_eq!(emails, ["good1@example.org", "good2@example.org"]);
}

#[test]
fn semicolons_bom_crlf_and_standard_input() {
    let p = Project::with_lists();
    let text = "\u{feff}email;name;lists\r\n\"ana@example.org\";\"Lima; Ana\";news\r\nbo@example.org;Bo;\r\n";
    let out = p
        .cmd()
        .args(["subscribers", "import", "-", "--list", "partners"])
        .write_stdin(text)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 added, 0 updated, 0 unchanged, 0 rejected"
    );
    assert_eq!(
        p.strings("SELECT name FROM subscribers ORDER BY id"),
        ["Lima; Ana", "Bo"]
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscriptions"), 3);
}

#[test]
fn json_report_for_scripts() {
    let p = Project::with_lists();
    p.write("people.csv", "email\nana@example.org\nnope\n");
    let (code, out, _) = p.run(&["--json", "subscribers", "import", "people.csv"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["added"], 1);
    assert_eq!(v["rejected"], 1);
    assert_eq!(v["notes"][0]["line"], 3);
}

#[test]
fn the_sample_list_imports_cleanly() {
    let p = Project::new();
    p.ok(&["lists", "add", "glo-act-news"]);
    p.ok(&["lists", "add", "practitioners"]);
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("subscribers/glo-act-sample.csv");
    let out = p.ok(&[
        "subscribers",
        "import",
        sample.to_str().expect("utf-8 path"),
    ]);
    let added: u64 = out
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(added >= 25, "{out}");
    assert!(out.contains("0 rejected"), "{out}");
    let languages = p.scalar("SELECT COUNT(DISTINCT language) FROM subscribers");
    assert!(languages >= 4, "several languages: {languages}");
}

/// Everything about a database that an import decides, without ids or times: who is there,
/// in what order, on which lists, and which events record it.
fn imported_state(p: &Project) -> Vec<Vec<String>> {
    vec![
        p.strings("SELECT email FROM subscribers ORDER BY id"),
        p.strings(
            "SELECT u.email || ' ' || l.name || ' ' || s.status || ' ' || s.consent_source
             FROM subscriptions s JOIN subscribers u ON u.id = s.subscriber_id
             JOIN lists l ON l.id = s.list_id ORDER BY 1",
        ),
        p.strings(
            "SELECT u.email || ' ' || e.kind || ' ' || COALESCE(l.name, '-') || ' ' || e.detail
                    || ' ' || e.source
             FROM events e JOIN subscribers u ON u.id = e.subscriber_id
             LEFT JOIN lists l ON l.id = e.list_id ORDER BY 1",
        ),
    ]
}

/// New subscribers are written one of two ways: runs of rows joining the same lists with one
/// `INSERT ... SELECT` per run, or, when the lists change from row to row, row by row. The
/// same people must come out the same either way, in file order, each with a fresh nonce.
#[test]
fn runs_of_the_same_lists_and_mixed_rows_are_written_alike() {
    let kinds = ["news", "", "news|partners:confirmed", "partners"];
    let row = |i: usize, lists: &str| format!("p{i:02}@example.org,Person {i},en,{lists}\n");
    let mut interleaved = String::from("email,name,lang,lists\n");
    let mut grouped = String::from("email,name,lang,lists\n");
    for i in 0..40 {
        interleaved.push_str(&row(i, kinds[i % 4]));
    }
    for (k, lists) in kinds.iter().enumerate() {
        for i in (0..40).filter(|i| i % 4 == k) {
            grouped.push_str(&row(i, lists));
        }
    }

    let mixed = Project::with_lists();
    mixed.write("people.csv", &interleaved);
    let out = mixed.ok(&["subscribers", "import", "people.csv"]);
    assert_eq!(out.trim(), "40 added, 0 updated, 0 unchanged, 0 rejected");
    let runs = Project::with_lists();
    runs.write("people.csv", &grouped);
    runs.ok(&["subscribers", "import", "people.csv"]);

    let (a, b) = (imported_state(&mixed), imported_state(&runs));
    assert_eq!(
        a[0][..3],
        ["p00@example.org", "p01@example.org", "p02@example.org"]
    );
    assert_eq!(
        b[0][..3],
        ["p00@example.org", "p04@example.org", "p08@example.org"]
    );
    assert_eq!(a[1], b[1], "the same subscriptions");
    assert_eq!(a[2], b[2], "the same events");
    // 10 on news, 10 on nothing, 10 on both, 10 on partners (double opt-in: unconfirmed).
    assert_eq!(a[1].len(), 40);
    assert!(a[1].contains(&"p02@example.org partners confirmed import:people.csv".to_string()));
    assert!(a[1].contains(&"p03@example.org partners unconfirmed import:people.csv".to_string()));
    assert_eq!(
        a[2].len(),
        50,
        "one event a subscription, one `created` each for the rest"
    );
    assert!(a[2].contains(&"p01@example.org created - {} import:people.csv".to_string()));
    assert!(
        a[2].contains(
            &r#"p03@example.org subscribed partners {"status":"unconfirmed"} import:people.csv"#
                .to_string()
        )
    );
    for p in [&mixed, &runs] {
        let nonces = p.strings("SELECT DISTINCT token_nonce FROM subscribers");
        assert!(
            nonces.len() == 40
                && nonces
                    .iter()
                    .all(|n| n.len() == 16
                        && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))),
            "every subscriber has its own 16-hex-digit nonce: {nonces:?}"
        );
        // No row points at a subscriber or list that is not there (what SQLite's
        // foreign_key_check reports, asked in SQL that PostgreSQL takes too).
        assert_eq!(
            p.scalar(
                "SELECT (SELECT COUNT(*) FROM subscriptions s
                         WHERE NOT EXISTS (SELECT 1 FROM subscribers x WHERE x.id = s.subscriber_id)
                            OR NOT EXISTS (SELECT 1 FROM lists l WHERE l.id = s.list_id))
                      + (SELECT COUNT(*) FROM events e
                         WHERE (e.subscriber_id IS NOT NULL
                                AND NOT EXISTS (SELECT 1 FROM subscribers x WHERE x.id = e.subscriber_id))
                            OR (e.list_id IS NOT NULL
                                AND NOT EXISTS (SELECT 1 FROM lists l WHERE l.id = e.list_id)))"
            ),
            0
        );
    }
}

/// A file of three batches (rows are written 5,000 to a transaction, one batch in flight
/// while the next is read): every batch's remarks reach the operator with their file line,
/// new subscribers keep the file's order across batches, and importing the file again
/// changes nothing.
#[test]
fn a_file_of_several_batches_imports_in_order_with_every_remark() {
    let p = Project::with_lists();
    p.ok(&["subscribers", "add", "gone@example.org", "--list", "news"]);
    p.ok(&["subscribers", "remove", "gone@example.org", "--yes"]);
    p.ok(&["subscribers", "add", "left@example.org", "--list", "news"]);
    p.ok(&[
        "subscribers",
        "unsubscribe",
        "left@example.org",
        "--list",
        "news",
    ]);
    let mut file = String::from("email,name,lists\n");
    for i in 0..12_000 {
        file.push_str(&match i {
            3_000 => "not-an-address,X,news\n".to_string(),
            7_000 => "gone@example.org,G,news\n".to_string(),
            9_000 => "P00001@example.org,again,news\n".to_string(),
            11_000 => "left@example.org,L,news|partners\n".to_string(),
            _ => format!(
                "p{i:05}@example.org,Person {i},{}\n",
                if i % 3 == 0 { "news|partners" } else { "news" }
            ),
        });
    }
    p.write("people.csv", &file);

    let (code, out, err) = p.run(&["subscribers", "import", "people.csv"]);
    assert_eq!(
        out.trim(),
        "11996 added, 1 updated, 0 unchanged, 2 rejected, 1 erased earlier (not re-added)"
    );
    assert_eq!(code, 3, "rejected rows make a partial success: {err}");
    // Row i of the loop is on line i + 2 of the file (after the header).
    for remark in [
        "people.csv:3002: invalid address: `not-an-address`",
        "people.csv:9002: duplicate of line 3 (P00001@example.org)",
        "people.csv:7002: gone@example.org was erased at the person's request",
        "people.csv:11002: left@example.org unsubscribed from news earlier; left unsubscribed",
    ] {
        assert!(err.contains(remark), "missing `{remark}` in:\n{err}");
    }
    let emails = p.strings("SELECT email FROM subscribers ORDER BY id");
    assert_eq!(emails.len(), 11_997);
    assert_eq!(
        emails[1..4],
        [
            "p00000@example.org",
            "p00001@example.org",
            "p00002@example.org"
        ],
        "after left@, in file order"
    );
    assert_eq!(emails[11_996], "p11999@example.org");
    assert_eq!(
        p.strings("SELECT CAST(COUNT(*) AS TEXT) FROM subscriptions WHERE list_id = (SELECT id FROM lists WHERE name = 'partners')"),
        vec!["3999".to_string()],
        "every third row (less rows 3000 and 9000), and left@ joining partners for the first time"
    );

    let counts = p.counts();
    let (code, out, _) = p.run(&["--json", "subscribers", "import", "people.csv"]);
    assert_eq!(code, 3);
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(
        (
            &report["added"],
            &report["updated"],
            &report["unchanged"],
            &report["rejected"],
            &report["suppressed"]
        ),
        (
            &serde_json::json!(0),
            &serde_json::json!(0),
            &serde_json::json!(11_997),
            &serde_json::json!(2),
            &serde_json::json!(1)
        )
    );
    assert_eq!(report["notes"].as_array().map(Vec::len), Some(4));
    assert_eq!(p.counts(), counts, "the second import wrote nothing");
}

/// Excel writes CRLF line ends: a bad row is reported on the line a text editor shows, also
/// after a quoted cell that spans lines (with a CRLF inside it too).
#[test]
fn crlf_files_report_each_row_on_its_true_line() {
    let p = Project::with_lists();
    p.write(
        "excel.csv",
        "\u{feff}email;name\r\nana@example.org;Ana\r\nnot-an-address;Bad\r\nbo@example.org;Bo\r\n",
    );
    let (code, out, err) = p.run(&["subscribers", "import", "excel.csv"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out.trim(), "2 added, 0 updated, 0 unchanged, 1 rejected");
    assert!(err.contains("excel.csv:3: invalid address"), "{err}");

    // Lines: 1 header, 2-3 ana (the attributes cell spans them), 4 bo, 5 the bad row, 6 another
    // spanning 6-7, 8 bad again.
    p.write(
        "quoted.csv",
        "email,attributes\r\n\
         cy@example.org,\"{\r\n\"\"org\"\":\"\"X\"\"}\"\r\n\
         dee@example.org,\r\n\
         not-an-address,\r\n\
         eve@example.org,\"{\r\n\"\"org\"\":\"\"Y\"\"}\"\r\n\
         also-bad,\r\n",
    );
    let (code, out, err) = p.run(&["subscribers", "import", "quoted.csv"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out.trim(), "3 added, 0 updated, 0 unchanged, 2 rejected");
    assert!(
        err.contains("quoted.csv:5: invalid address: `not-an-address`"),
        "{err}"
    );
    assert!(
        err.contains("quoted.csv:8: invalid address: `also-bad`"),
        "{err}"
    );
    assert_eq!(
        p.strings("SELECT attributes FROM subscribers WHERE email = 'eve@example.org'"),
        [r#"{"org":"Y"}"#]
    );
}

/// A list the file names that does not exist stops the import at once, with one message
/// that says how to create it, and nothing is written (not the rows before it either).
#[test]
fn a_missing_list_stops_the_import_once_and_writes_nothing() {
    let p = Project::with_lists();
    p.write(
        "people.csv",
        "email,lists\nana@example.org,news\nbo@example.org,events\ncy@example.org,events\ndee@example.org,news|events\n",
    );
    let before = p.counts();
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["subscribers", "import", "people.csv"];
        args.extend_from_slice(extra);
        let (code, out, err) = p.run(&args);
        assert_eq!(code, 2, "{err}");
        assert_eq!(out, "", "no summary of an import that did not happen");
        assert_eq!(
            err.matches("bulletin lists add events").count(),
            1,
            "one message, not one per row:\n{err}"
        );
        assert!(
            err.contains("people.csv:3:") && err.contains("nothing was imported"),
            "{err}"
        );
        assert_eq!(p.counts(), before, "nothing written");
    }

    // The same for a list named with --list, before any row is read.
    p.write("plain.csv", "email\nana@example.org\nbo@example.org\n");
    let (code, _, err) = p.run(&["subscribers", "import", "plain.csv", "--list", "events"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches("bulletin lists add events").count(), 1, "{err}");
    assert_eq!(p.counts(), before);

    // Once the list exists, the same file imports.
    p.ok(&["lists", "add", "events"]);
    let out = p.ok(&["subscribers", "import", "people.csv"]);
    assert_eq!(out.trim(), "4 added, 0 updated, 0 unchanged, 0 rejected");
}

/// Past the first batch (5,000 rows), the batches before are already written: the import
/// still stops at the first row naming a missing list, and says what was kept.
#[test]
fn a_missing_list_after_the_first_batch_says_what_was_kept() {
    let p = Project::with_lists();
    let mut file = String::from("email,lists\n");
    for i in 0..6_000 {
        file.push_str(&format!("p{i:05}@example.org,news\n"));
    }
    file.push_str("late@example.org,events\n");
    p.write("people.csv", &file);
    let (code, out, err) = p.run(&["subscribers", "import", "people.csv"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(out, "");
    assert!(err.contains("people.csv:6002:"), "{err}");
    assert!(err.contains("bulletin lists add events"), "{err}");
    assert!(
        err.contains("5000 rows of the batches before it were imported"),
        "{err}"
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM subscribers"), 5_000);
}
