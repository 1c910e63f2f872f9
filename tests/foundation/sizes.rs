//! Size limits, the same at every door, so that whatever is stored exports to a file that
//! imports back: attributes per subscriber (count and bytes), columns per file.

use crate::support::Project;

/// `--attr` values adding up to more than an import accepts are refused at `add`, with the
/// limit; values just within it export and import back unchanged.
#[test]
fn attributes_added_on_the_command_line_obey_the_import_limits() {
    let a = Project::with_lists();
    let big = format!("note={}", "x".repeat(70 * 1024));
    let before = a.counts();
    let (code, _, err) = a.run(&["subscribers", "add", "ana@example.org", "--attr", &big]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("65536"), "the limit is named: {err}");
    assert_eq!(a.counts(), before, "nothing written");

    let mut args: Vec<String> = ["subscribers", "add", "ana@example.org", "--list", "news"]
        .iter()
        .map(ToString::to_string)
        .collect();
    let many: Vec<String> = (0..101).map(|i| format!("k{i}=v")).collect();
    for pair in &many {
        args.push("--attr".into());
        args.push(pair.clone());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = a.run(&refs);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("101 attributes") && err.contains("100"),
        "{err}"
    );

    // Just within both limits: stored, exported, imported into a fresh database unchanged.
    let mut args: Vec<String> = ["subscribers", "add", "ana@example.org", "--list", "news"]
        .iter()
        .map(ToString::to_string)
        .collect();
    for i in 0..100 {
        args.push("--attr".into());
        args.push(format!("k{i:02}={}", "y".repeat(600)));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    a.ok(&refs);
    let exported = a.ok(&["subscribers", "export"]);
    let b = Project::with_lists();
    b.write("export.csv", &exported);
    let out = b.ok(&["subscribers", "import", "export.csv"]);
    assert_eq!(out.trim(), "1 added, 0 updated, 0 unchanged, 0 rejected");
    assert_eq!(b.ok(&["subscribers", "export"]), exported);
}

/// Extra columns become attributes: a row whose attributes, merged, pass a limit is rejected
/// by line, and a header with more columns than any subscriber file needs stops the import.
#[test]
fn attribute_columns_and_bytes_per_row_and_columns_per_file() {
    let p = Project::with_lists();
    // 60 extra columns and 50 keys in the `attributes` cell: 110 attributes in all.
    let names: Vec<String> = (0..60).map(|i| format!("c{i}")).collect();
    let keys: Vec<String> = (0..50).map(|i| format!("\"\"k{i}\"\":1")).collect();
    let mut csv = format!("email,attributes,{}\n", names.join(","));
    csv.push_str(&format!(
        "wide@example.org,\"{{{}}}\",{}\n",
        keys.join(","),
        vec!["v"; 60].join(",")
    ));
    csv.push_str(&format!("narrow@example.org,,{}\n", vec![""; 60].join(",")));
    p.write("wide.csv", csv);
    let (code, out, err) = p.run(&["subscribers", "import", "wide.csv"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out.trim(), "1 added, 0 updated, 0 unchanged, 1 rejected");
    assert!(
        err.contains("wide.csv:2: 110 attributes; at most 100"),
        "{err}"
    );

    // Bytes: a JSON cell within its own limit plus extra columns that push it over.
    let json = format!("{{\"\"a\"\":\"\"{}\"\"}}", "z".repeat(63 * 1024));
    let extra = "q".repeat(3 * 1024);
    p.write(
        "heavy.csv",
        format!("email,attributes,city\nheavy@example.org,\"{json}\",{extra}\n"),
    );
    let (code, _, err) = p.run(&["subscribers", "import", "heavy.csv"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("heavy.csv:2: attributes are") && err.contains("at most 65536"),
        "{err}"
    );

    // Columns: a header of 1,000 columns is not a subscriber file.
    let names: Vec<String> = (0..1_000).map(|i| format!("c{i}")).collect();
    p.write("huge.csv", format!("email,{}\n", names.join(",")));
    let before = p.counts();
    let (code, _, err) = p.run(&["subscribers", "import", "huge.csv"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("huge.csv:1:") && err.contains("1001 columns"),
        "{err}"
    );
    assert_eq!(p.counts(), before);
}

/// A subscriber on many lists exports a `lists` cell longer than other cells may be; it must
/// import back all the same.
#[test]
fn many_lists_export_and_import_back() {
    let a = Project::new();
    let b = Project::new();
    let mut args = vec![
        "subscribers".to_string(),
        "add".into(),
        "ana@example.org".into(),
    ];
    for i in 0..100 {
        // 60 characters a name: the `lists` cell is about 6 KB.
        let name = format!("list-{i:03}-{}", "n".repeat(51));
        a.ok(&["lists", "add", &name]);
        b.ok(&["lists", "add", &name]);
        args.push("--list".into());
        args.push(name);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    a.ok(&refs);
    let exported = a.ok(&["subscribers", "export"]);
    b.write("export.csv", &exported);
    let (code, out, err) = b.run(&["subscribers", "import", "export.csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "1 added, 0 updated, 0 unchanged, 0 rejected");
}
