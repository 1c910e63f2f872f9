//! `bulletin manpage`: one roff page per command, rendered by clap_mangen from the clap
//! definitions, with the two sections clap cannot know: EXAMPLES and EXIT STATUS.

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::Cli;

/// Example command lines per command path (the words after `bulletin`), each with what it
/// does. They are the README's own examples, so a reader meets the same commands in both.
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "",
        &[
            (
                "bulletin init my-newsletter",
                "start a project that composes, previews and sends at once",
            ),
            (
                "bulletin compose editions/first-edition",
                "render an edition and lint it",
            ),
            (
                "bulletin send editions/first-edition --list news --outbox outbox --yes",
                "send it into a Maildir folder",
            ),
            (
                "bulletin -c /etc/bulletin/bulletin.toml serve",
                "serve the unsubscribe and subscribe pages",
            ),
        ],
    ),
    (
        "init",
        &[(
            "bulletin init my-newsletter",
            "scaffold the project my-newsletter/; files that exist are kept",
        )],
    ),
    (
        "lists",
        &[
            ("bulletin lists add news", "create the list news"),
            ("bulletin lists list", "counts per list and status"),
        ],
    ),
    (
        "lists add",
        &[
            (
                "bulletin lists add glo-act-news",
                "single opt-in: new members are confirmed",
            ),
            (
                "bulletin lists add practitioners --double-opt-in",
                "new members wait for confirmation",
            ),
        ],
    ),
    (
        "lists list",
        &[(
            "bulletin lists list",
            "counts per list and status; blocklisted people apart",
        )],
    ),
    (
        "lists set",
        &[
            (
                "bulletin lists set glo-act-news --display-name en=\"GLO.ACT news\" --display-name es=\"Noticias de GLO.ACT\"",
                "the name readers see, per language",
            ),
            (
                "bulletin lists set staff-test --private",
                "off the public form; members still see it",
            ),
        ],
    ),
    (
        "lists remove",
        &[(
            "bulletin lists remove practitioners",
            "refuses if campaigns were sent (--force)",
        )],
    ),
    (
        "subscribers",
        &[
            (
                "bulletin subscribers import subscribers/sample.csv",
                "add or update subscribers from a CSV file",
            ),
            (
                "bulletin subscribers show ana@example.org",
                "one subscriber with consent and history",
            ),
        ],
    ),
    (
        "subscribers add",
        &[(
            "bulletin subscribers add ana@example.org --name \"Ana Lima\" --lang pt --list glo-act-news --attr city=Recife",
            "add one subscriber to a list",
        )],
    ),
    (
        "subscribers import",
        &[
            (
                "bulletin subscribers import subscribers/sample.csv",
                "import the file into the lists its lists column names",
            ),
            (
                "bulletin subscribers import people.csv --list news --dry-run",
                "check every row and report, write nothing",
            ),
            (
                "bulletin subscribers import people.csv --update",
                "also update the name, language and attributes of known addresses",
            ),
        ],
    ),
    (
        "subscribers list",
        &[
            (
                "bulletin subscribers list --list news --status confirmed",
                "the confirmed members of news",
            ),
            (
                "bulletin subscribers list --format csv > subscribers.csv",
                "everyone as CSV",
            ),
        ],
    ),
    (
        "subscribers show",
        &[(
            "bulletin subscribers show ana@example.org",
            "fields, subscriptions with consent source, history",
        )],
    ),
    (
        "subscribers unsubscribe",
        &[(
            "bulletin subscribers unsubscribe ana@example.org --list news",
            "unsubscribe from one list",
        )],
    ),
    (
        "subscribers unblock",
        &[(
            "bulletin subscribers unblock ana@example.org",
            "lift a blocklisting (subscriptions stay as they are)",
        )],
    ),
    (
        "subscribers remove",
        &[(
            "bulletin subscribers remove ana@example.org --yes",
            "erase for good (GDPR), without asking",
        )],
    ),
    (
        "subscribers export",
        &[
            (
                "bulletin subscribers export --list news --output news.csv",
                "a CSV that import reads back unchanged",
            ),
            (
                "bulletin subscribers export --excel --output news.csv",
                "the same for Excel: UTF-8 with BOM, semicolons",
            ),
        ],
    ),
    (
        "compose",
        &[
            (
                "bulletin compose editions/glo-act-special-edition",
                "out/<slug>/<lang>/email.html, email.txt, archive.html",
            ),
            (
                "bulletin compose editions/glo-act-special-edition --lang fr --out site",
                "one language, into site/",
            ),
            (
                "bulletin --json compose editions/glo-act-special-edition",
                "the lint report as JSON",
            ),
        ],
    ),
    (
        "preview",
        &[
            (
                "bulletin preview editions/glo-act-special-edition",
                "write out/<slug>/preview.html",
            ),
            (
                "bulletin preview editions/glo-act-special-edition --serve",
                "http://127.0.0.1:8025/, re-rendered on save",
            ),
            (
                "bulletin preview editions/glo-act-special-edition --to me@example.org",
                "a [TEST] copy of each language to yourself",
            ),
        ],
    ),
    (
        "send",
        &[
            (
                "bulletin send editions/glo-act-special-edition --list glo-act-news --dry-run",
                "build every message, count, send nothing",
            ),
            (
                "bulletin send editions/glo-act-special-edition --list glo-act-news",
                "asks before sending on a terminal",
            ),
            (
                "bulletin send editions/glo-act-special-edition --list glo-act-news --outbox outbox --yes",
                "into a Maildir folder instead of SMTP",
            ),
            (
                "bulletin send editions/glo-act-special-edition --list glo-act-news --at 2026-12-05T09:00 --tz Europe/Paris",
                "schedule it; a worker sends it then",
            ),
        ],
    ),
    (
        "worker",
        &[
            (
                "bulletin worker --name mx1 --rate 50",
                "send every due campaign beside other workers, until SIGTERM",
            ),
            (
                "bulletin worker --name mx1 --hourly-cap 500",
                "at most 500 messages an hour from this worker (one outbound IP), across campaigns and restarts",
            ),
            (
                "bulletin worker --once",
                "send what is due now, then exit (cron)",
            ),
        ],
    ),
    (
        "campaigns",
        &[
            ("bulletin campaigns list", "every campaign with its counts"),
            ("bulletin campaigns show 3", "one campaign's recipients"),
        ],
    ),
    (
        "campaigns list",
        &[("bulletin campaigns list", "every campaign with its counts")],
    ),
    (
        "campaigns show",
        &[
            (
                "bulletin campaigns show 3 --failed",
                "who was refused, and the relay's words",
            ),
            (
                "bulletin campaigns show 3 --recipient ana@example.org",
                "each attempt to reach Ana",
            ),
            (
                "bulletin campaigns show 3 --all --format csv > campaign-3.csv",
                "every recipient, for a report",
            ),
        ],
    ),
    (
        "campaigns pause",
        &[(
            "bulletin campaigns pause 3",
            "stop after the messages in flight; send resumes",
        )],
    ),
    (
        "campaigns resume",
        &[(
            "bulletin campaigns resume 3",
            "hand a paused campaign back to the workers",
        )],
    ),
    (
        "campaigns cancel",
        &[(
            "bulletin campaigns cancel 3",
            "stop for good; remaining recipients are skipped",
        )],
    ),
    (
        "campaigns retry",
        &[(
            "bulletin campaigns retry 3",
            "queue the failed deliveries again; then run the same send",
        )],
    ),
    (
        "campaigns report",
        &[
            (
                "bulletin campaigns report 3",
                "the table; the HTML page with its chart is written beside the edition's output",
            ),
            (
                "bulletin campaigns report 3 --csv > report.csv",
                "one row for the campaign, then one per language and per domain",
            ),
        ],
    ),
    (
        "serve",
        &[(
            "bulletin -c /etc/bulletin/bulletin.toml serve",
            "listen on [server] listen, 127.0.0.1:8080 by default",
        )],
    ),
    (
        "bounces",
        &[
            (
                "bulletin bounces",
                "read [bounces] maildir (or mbox); exit 3 when messages were left for a person",
            ),
            (
                "bulletin bounces --mbox /var/mail/bounces --json",
                "an mbox file instead; what happened to each message, as JSON",
            ),
        ],
    ),
    (
        "doctor",
        &[
            (
                "bulletin doctor",
                "check SPF, DKIM, DMARC, the bounce domain, the relay and public_url; exit 1 on a problem",
            ),
            (
                "bulletin doctor --egress-ip 203.0.113.7 --edition editions/first-edition --json",
                "judge SPF on the relay's public address and SIZE against that edition; JSON",
            ),
        ],
    ),
    (
        "db",
        &[(
            "bulletin db copy --from sqlite://bulletin.db --to postgres://bulletin@db.example.org/bulletin",
            "move the store to PostgreSQL (password from BULLETIN_DATABASE_PASSWORD)",
        )],
    ),
    (
        "db copy",
        &[
            (
                "bulletin db copy --from sqlite://bulletin.db --to postgres://bulletin@db.example.org/bulletin",
                "copy every table, ids kept; refuses a target that holds any row",
            ),
            (
                "bulletin db copy --from postgres://bulletin@db.example.org/bulletin --to sqlite://back.db --from-password-file /run/secrets/db",
                "and back into a new SQLite file, with that server's own password",
            ),
        ],
    ),
    (
        "completions",
        &[(
            "bulletin completions bash > /etc/bash_completion.d/bulletin",
            "or zsh, fish, elvish, powershell",
        )],
    ),
    (
        "manpage",
        &[(
            "bulletin manpage --out /usr/local/share/man/man1",
            "then: man bulletin-subscribers-import",
        )],
    ),
];

/// The README's exit code table, as roff.
const EXIT_STATUS: &str = ".SH \"EXIT STATUS\"
.TP
\\fB0\\fR
success: everything was done
.TP
\\fB1\\fR
stopped by the world: database locked or read\\-only, relay down or refusing, a campaign paused or interrupted; running the same command again resumes
.TP
\\fB2\\fR
usage or input error: a bad file, configuration, list or address, or an unknown option; the message names it and the fix
.TP
\\fB3\\fR
partial success: some rows or recipients failed, the rest were done
";

/// Writes `bulletin.1` and one page per visible subcommand, `bulletin-subscribers-import.1`
/// for `bulletin subscribers import`, into `out`.
pub(super) fn write_manpages(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Building sets each subcommand's bin_name ("bulletin subscribers import", the synopsis)
    // and display_name ("bulletin-subscribers-import", the page's name) and propagates the
    // global options into every page.
    cmd.build();
    let mut pages = vec![(String::new(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| visible(s)) {
        pages.push((sub.get_name().to_string(), sub.clone()));
        for subsub in sub.get_subcommands().filter(|s| visible(s)) {
            let path = format!("{} {}", sub.get_name(), subsub.get_name());
            pages.push((path, subsub.clone()));
        }
    }
    for (path, page) in pages {
        let name = page
            .get_display_name()
            .unwrap_or(page.get_name())
            .to_string();
        let buffer =
            render(&path, page).with_context(|| format!("cannot render the man page {name}"))?;
        let file = out.join(format!("{name}.1"));
        std::fs::write(&file, buffer)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    eprintln!("man pages written to {}", out.display());
    Ok(())
}

/// Not hidden, and not clap's own `help` subcommand.
fn visible(cmd: &clap::Command) -> bool {
    !cmd.is_hide_set() && cmd.get_name() != "help"
}

/// clap_mangen's sections in its order, with EXAMPLES and EXIT STATUS before VERSION.
fn render(path: &str, page: clap::Command) -> std::io::Result<Vec<u8>> {
    let has_arguments = page.get_arguments().any(|a| !a.is_hide_set());
    let has_subcommands = page.get_subcommands().any(visible);
    let man = clap_mangen::Man::new(page);
    let mut buffer = Vec::new();
    man.render_title(&mut buffer)?;
    man.render_name_section(&mut buffer)?;
    man.render_synopsis_section(&mut buffer)?;
    man.render_description_section(&mut buffer)?;
    if has_arguments {
        man.render_options_section(&mut buffer)?;
    }
    if has_subcommands {
        man.render_subcommands_section(&mut buffer)?;
    }
    let examples = EXAMPLES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, e)| *e)
        .unwrap_or(&[]);
    if !examples.is_empty() {
        buffer.extend_from_slice(b".SH EXAMPLES\n");
        for (line, what) in examples {
            buffer.extend_from_slice(
                format!(".TP\n\\fB{}\\fR\n{}\n", roff_text(line), roff_text(what)).as_bytes(),
            );
        }
    }
    buffer.extend_from_slice(EXIT_STATUS.as_bytes());
    man.render_version_section(&mut buffer)?;
    Ok(buffer)
}

/// Text as roff reads it literally: backslashes and hyphens escaped, and a leading `.` or `'`
/// (which roff would take for a request) guarded.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_has_examples() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut paths = vec![String::new()];
        for sub in cmd.get_subcommands().filter(|s| visible(s)) {
            paths.push(sub.get_name().to_string());
            for subsub in sub.get_subcommands().filter(|s| visible(s)) {
                paths.push(format!("{} {}", sub.get_name(), subsub.get_name()));
            }
        }
        for path in paths {
            assert!(
                EXAMPLES.iter().any(|(p, _)| *p == path),
                "no EXAMPLES for `bulletin {path}`"
            );
        }
    }

    #[test]
    fn roff_text_escapes_what_roff_would_read() {
        assert_eq!(roff_text("a-b \\x"), "a\\-b \\ex");
        assert_eq!(roff_text(".hidden"), "\\&.hidden");
    }
}
