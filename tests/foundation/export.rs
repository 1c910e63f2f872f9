//! `subscribers export` and the round trip through `import`.

use crate::support::Project;

#[test]
fn export_imports_back_unchanged() {
    let a = Project::with_lists();
    a.write(
        "people.csv",
        "email,name,lang,lists,attributes,city\n\
         ana@example.org,\"Lima, Ana \"\"Nina\"\"\",pt-BR,news|partners:confirmed,\"{\"\"n\"\":1}\",Recife\n\
         bo@example.org,Bo,,partners,,\n\
         chloé@example.org,Chloé,fr,news,,\n",
    );
    a.ok(&["subscribers", "import", "people.csv"]);
    a.ok(&[
        "subscribers",
        "unsubscribe",
        "chloé@example.org",
        "--list",
        "news",
    ]);
    a.ok(&["subscribers", "export", "--output", "export.csv"]);
    let first = std::fs::read_to_string(a.path().join("export.csv")).expect("export written");
    assert!(
        first.contains("chloé@example.org,Chloé,fr,news:unsubscribed,"),
        "{first}"
    );
    assert!(first.contains("bo@example.org,Bo,,partners,"), "{first}");

    // Into a fresh database with the same lists: the same export comes out.
    let b = Project::with_lists();
    b.write("export.csv", &first);
    b.ok(&["subscribers", "import", "export.csv"]);
    let second = b.ok(&["subscribers", "export"]);
    assert_eq!(second, first);

    // And into the database it came from: nothing changes.
    let counts = a.counts();
    let out = a.ok(&["subscribers", "import", "export.csv", "--update"]);
    assert_eq!(out.trim(), "0 added, 0 updated, 3 unchanged, 0 rejected");
    assert_eq!(a.counts(), counts);
}

#[test]
fn json_lines_and_list_filter() {
    let p = Project::with_lists();
    p.ok(&["subscribers", "add", "ana@example.org", "--list", "news"]);
    p.ok(&["subscribers", "add", "bo@example.org", "--list", "partners"]);
    let out = p.ok(&[
        "subscribers",
        "export",
        "--list",
        "partners",
        "--format",
        "json",
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["email"], "bo@example.org");
    assert_eq!(lines[0]["lists"]["partners"], "unconfirmed");
}

/// Cells a spreadsheet would run as formulas (OWASP: `=`, `+`, `-`, `@` first) are written
/// with a leading `'`, and import takes exactly that `'` away again: the round trip stays
/// byte for byte, and names that merely start with `'` are left alone.
#[test]
fn formulas_are_neutralised_on_export_and_restored_on_import() {
    let a = Project::with_lists();
    let people = [
        (
            "=cmd|'/Ccalc'!A0@example.org",
            "=HYPERLINK(\"http://evil.example\",\"x\")",
        ),
        ("plus@example.org", "+1 555 0100"),
        ("-minus@example.org", "-Minus"),
        ("at@example.org", "@SUM(A1)"),
        ("quote@example.org", "'=already quoted"),
        ("dutch@example.org", "'t Hooft"),
    ];
    for (email, name) in people {
        // `--name=…` and `--`: values that start with `-` are not options.
        let name = format!("--name={name}");
        a.ok(&["subscribers", "add", &name, "--list", "news", "--", email]);
    }
    let first = a.ok(&["subscribers", "export"]);
    for line in first.lines().skip(1) {
        let cell = line.split(',').next().unwrap_or("");
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "a cell a spreadsheet would run: {line}"
        );
    }
    assert!(first.contains("'=cmd|"), "{first}");
    assert!(first.contains("'+1 555 0100"), "{first}");
    assert!(first.contains("''=already quoted"), "{first}");
    assert!(first.contains(",'t Hooft,"), "{first}");

    let b = Project::with_lists();
    b.write("export.csv", &first);
    b.ok(&["subscribers", "import", "export.csv"]);
    assert_eq!(b.ok(&["subscribers", "export"]), first);
    let mut stored = b.strings("SELECT email || ' ' || name FROM subscribers");
    stored.sort();
    let mut expected: Vec<String> = people.iter().map(|(e, n)| format!("{e} {n}")).collect();
    expected.sort();
    assert_eq!(stored, expected);
}

/// `--excel`: what Excel opens with accents intact in most European locales (a UTF-8
/// byte-order mark, `;` between cells, CRLF line ends), and what `import` reads back to the
/// same rows.
#[test]
fn excel_export_has_a_bom_and_semicolons_and_imports_back() {
    let a = Project::with_lists();
    a.write(
        "people.csv",
        "email,name,lang,lists,attributes\n\
         chloé@example.org,\"Chloé Martin; Jr\",fr,news|partners:confirmed,\"{\"\"org\"\":\"\"Défense, Droits\"\"}\"\n\
         ana@example.org,=1+1,pt-BR,news,\n\
         bo@example.org,Bo,,,\n",
    );
    a.ok(&["subscribers", "import", "people.csv"]);
    a.ok(&["subscribers", "export", "--excel", "--output", "excel.csv"]);
    let bytes = std::fs::read(a.path().join("excel.csv")).expect("export written");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBFemail;name;lang;lists;attributes\r\n"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(
        text.contains("chloé@example.org;\"Chloé Martin; Jr\";fr;"),
        "{text}"
    );
    assert!(
        text.contains("ana@example.org;'=1+1;pt-BR;news;\r\n"),
        "{text}"
    );
    // Standard output gets the same bytes.
    let out = a
        .cmd()
        .args(["subscribers", "export", "--excel"])
        .output()
        .expect("runs");
    assert_eq!(out.stdout, text.as_bytes());

    // Into a fresh database: the same subscribers, lists and attributes as the plain export.
    let b = Project::with_lists();
    b.write("excel.csv", &text);
    let out = b.ok(&["subscribers", "import", "excel.csv"]);
    assert_eq!(out.trim(), "3 added, 0 updated, 0 unchanged, 0 rejected");
    assert_eq!(
        b.ok(&["subscribers", "export"]),
        a.ok(&["subscribers", "export"])
    );
    // And into the database it came from: nothing changes.
    let counts = a.counts();
    let out = a.ok(&["subscribers", "import", "excel.csv", "--update"]);
    assert_eq!(out.trim(), "0 added, 0 updated, 3 unchanged, 0 rejected");
    assert_eq!(a.counts(), counts);

    let help = a.ok(&["subscribers", "export", "--help"]);
    assert!(
        help.contains("--excel") && help.contains("semicolon"),
        "{help}"
    );
    let (code, _, err) = a.run(&["subscribers", "export", "--excel", "--format", "json"]);
    assert_eq!(code, 2, "{err}");
}
