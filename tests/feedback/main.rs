//! Integration tests of what comes back after a send (issue #14): the VERP return path,
//! `bulletin bounces` over a Maildir and an mbox file, the bounce and complaint policy, the
//! corpus of bounce formats, and the whole loop through a real Postfix that writes the DSNs.

mod corpus;
mod dovecot;
mod end_to_end;
mod migration;
mod policy;
mod postfix;
mod report;

use std::path::Path;

use bulletin_testkit::project::Project;

/// The token secret every test project uses.
pub(crate) const SECRET: &str = "feedback-test-secret-0123456789-abcdef";

/// The example edition of the repository.
pub(crate) fn edition() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("editions/glo-act-special-edition")
        .display()
        .to_string()
}

/// A project whose `[bounces]` section sends bounces to `bounces+…@bounces.test` and reads
/// them from `maildir`, with list `news` holding `people` (confirmed, English).
pub(crate) fn project(people: &[&str], maildir: &Path, extra: &str) -> Project {
    let p = Project::new();
    p.write(
        "bulletin.toml",
        format!(
            "[list]\nname = \"News\"\nid = \"news.example.org\"\nfrom = \"News <news@example.org>\"\n\n\
             [bounces]\ndomain = \"bounces.test\"\nmaildir = \"{}\"\n{extra}",
            maildir.display()
        ),
    );
    p.ok(&["lists", "add", "news"]);
    let mut csv = String::from("email,name,lang,lists\n");
    for (i, email) in people.iter().enumerate() {
        csv.push_str(&format!("{email},Person {i},en,news\n"));
    }
    p.write("people.csv", csv);
    p.ok(&["subscribers", "import", "people.csv"]);
    p
}

/// Runs `bulletin` with the secret and relay set; returns (code, stdout, stderr).
pub(crate) fn run(p: &Project, relay: &str, args: &[&str]) -> (i32, String, String) {
    run_with(p, &[("BULLETIN_SMTP_URL", relay)], args)
}

/// Runs `bulletin` with the secret and `env` set; returns (code, stdout, stderr).
pub(crate) fn run_with(p: &Project, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = p.cmd();
    cmd.env("BULLETIN_SECRET", SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `bulletin send <the example edition> --list news --yes` through `relay`.
pub(crate) fn send(p: &Project, relay: &str) {
    let (code, out, err) = run(p, relay, &["send", &edition(), "--list", "news", "--yes"]);
    assert_eq!(code, 0, "send failed:\n{out}\n{err}");
}

/// `bulletin bounces ARGS…`; returns (code, stdout, stderr).
pub(crate) fn bounces(p: &Project, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["bounces"];
    all.extend_from_slice(args);
    run(p, "smtp://127.0.0.1:9", &all)
}
