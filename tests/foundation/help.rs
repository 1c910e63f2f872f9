//! `--help`, the man pages and the completions as a user reads them.

use super::support::Project;

/// The SYNOPSIS section of a roff page (from `.SH SYNOPSIS` to the next `.SH`).
fn synopsis(page: &str) -> &str {
    let start = page.find(".SH SYNOPSIS").expect("a SYNOPSIS section");
    let rest = &page[start + 1..];
    let end = rest.find("\n.SH").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn man_page_names_the_command_as_typed_with_examples_and_exit_status() {
    let p = Project::bare();
    p.ok(&["manpage", "--out", "man"]);
    let page = std::fs::read_to_string(p.path().join("man/bulletin-subscribers-import.1"))
        .expect("man page for subscribers import");
    let synopsis = synopsis(&page);
    assert!(
        synopsis.contains("bulletin subscribers import"),
        "the synopsis names the command as typed:\n{synopsis}"
    );
    assert!(
        !synopsis.contains("bulletin-subscribers-import"),
        "{synopsis}"
    );
    assert!(page.contains(".SH EXAMPLES"), "{page}");
    assert!(
        page.contains(r"bulletin subscribers import subscribers/sample.csv"),
        "an example of this command:\n{page}"
    );
    assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
    assert!(page.contains("partial success"), "{page}");
    // Every page has both sections, the top one included; no page for the hidden `help`.
    for name in ["bulletin.1", "bulletin-send.1", "bulletin-campaigns-show.1"] {
        let page = std::fs::read_to_string(p.path().join("man").join(name)).expect(name);
        assert!(page.contains(".SH EXAMPLES"), "{name}:\n{page}");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{name}:\n{page}");
    }
    assert!(!p.path().join("man/bulletin-help.1").exists());
}

#[test]
fn help_lists_a_commands_own_options_before_the_global_ones() {
    let p = Project::bare();
    let help = p.ok(&["subscribers", "import", "--help"]);
    let own = help.find("--dry-run").expect("its own option");
    let heading = help
        .find("Global options:")
        .expect("a Global options heading");
    let global = help.find("--database").expect("the global --database");
    assert!(own < heading && heading < global, "{help}");
    let options = help.find("Options:").expect("an Options heading");
    assert!(options < own, "{help}");
}

#[test]
fn complete_lists_prints_the_projects_list_names() {
    let p = Project::new();
    p.ok(&["lists", "add", "news"]);
    p.ok(&["lists", "add", "practitioners", "--double-opt-in"]);
    let out = p.ok(&["__complete", "lists"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["news", "practitioners"], "{out}");
}

#[test]
fn complete_lists_outside_a_project_prints_nothing_and_creates_nothing() {
    let p = Project::bare();
    let (code, out, err) = p.run(&["__complete", "lists"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let left: Vec<_> = std::fs::read_dir(p.path()).expect("read dir").collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
    // A project whose database does not exist yet: still nothing, and no empty database.
    let p = Project::new();
    let (code, out, _) = p.run(&["__complete", "lists"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(!p.store_exists(), "completion created a database");
}

#[test]
fn completion_scripts_ask_bulletin_for_list_names_and_offer_folders_for_editions() {
    let p = Project::bare();
    let bash = p.ok(&["completions", "bash"]);
    assert!(bash.contains("bulletin __complete lists"), "{bash}");
    assert!(bash.contains("complete -F _bulletin_with_lists"), "{bash}");
    let zsh = p.ok(&["completions", "zsh"]);
    assert!(
        zsh.contains("'*--list=[List to join (repeatable)]:L:_bulletin_lists'"),
        "{zsh}"
    );
    assert!(zsh.contains("_bulletin_lists() {"), "{zsh}");
    assert!(
        zsh.contains(":edition -- The edition folder:_files -/"),
        "{zsh}"
    );
    let fish = p.ok(&["completions", "fish"]);
    let send_list = fish
        .lines()
        .find(|l| l.contains("using_subcommand send\"") && l.contains("-l list "))
        .expect("fish completes send --list");
    assert!(
        send_list.contains("(bulletin __complete lists"),
        "{send_list}"
    );
    let help = p.ok(&["--help"]);
    assert!(
        !help.contains("__complete"),
        "the helper stays hidden:\n{help}"
    );
}
