//! `bulletin init`: a new project folder that works at once: a commented configuration, an
//! example edition in two languages, a sample subscriber file, and the commands to try them.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use super::{Outcome, UsageError};

/// Arguments of `bulletin init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to set up (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// The files of a new project, by path inside it. They live as real files under
/// `src/cli/scaffold/`, so that they can be read, edited and checked as what they are.
const FILES: &[(&str, &str)] = &[
    ("bulletin.toml", CONFIG_TEMPLATE),
    (
        "subscribers/sample.csv",
        include_str!("scaffold/subscribers/sample.csv"),
    ),
    (
        "editions/first-edition/edition.toml",
        include_str!("scaffold/editions/first-edition/edition.toml"),
    ),
    (
        "editions/first-edition/articles/reading-circle.md",
        include_str!("scaffold/editions/first-edition/articles/reading-circle.md"),
    ),
    (
        "editions/first-edition/articles/reading-circle.fr.md",
        include_str!("scaffold/editions/first-edition/articles/reading-circle.fr.md"),
    ),
    (
        "editions/first-edition/articles/repair-cafe.md",
        include_str!("scaffold/editions/first-edition/articles/repair-cafe.md"),
    ),
    (
        "editions/first-edition/articles/repair-cafe.fr.md",
        include_str!("scaffold/editions/first-edition/articles/repair-cafe.fr.md"),
    ),
];

/// The configuration a new project starts with: every key, its default, and what it does.
const CONFIG_TEMPLATE: &str = include_str!("scaffold/bulletin.toml");

/// Folders a new project has even when nothing is written into them: `templates/` is where
/// the theme's partials are overridden.
const FOLDERS: &[&str] = &["templates", "editions", "subscribers"];

/// The commands that take the new project from here to a sent edition, after `cd` into it.
/// Each line is exact: a newcomer copies them one by one (`tests/compose/init.rs` runs them).
const NEXT_STEPS: &str = include_str!("scaffold/next-steps.txt");

/// Creates the folders and files that do not exist yet; never overwrites, and says which
/// files it kept.
pub(crate) fn init(args: &InitArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let dir = &args.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(UsageError(format!("{} exists and is not a folder", dir.display())).into());
    }
    let mut created = Vec::new();
    let mut kept = Vec::new();
    for sub in FOLDERS {
        create_dir(&dir.join(sub))?;
    }
    for (name, text) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
        if write_new(&path, text)? {
            created.push(path);
        } else {
            kept.push(path);
        }
    }
    if !quiet {
        for path in &kept {
            eprintln!("kept existing {}", path.display());
        }
        for path in &created {
            eprintln!("created {}", path.display());
        }
        eprintln!("\nNext steps:");
        if dir != Path::new(".") {
            eprintln!("  cd {}", shell_word(&dir.display().to_string()));
        }
        eprint!("{NEXT_STEPS}");
    }
    Ok(Outcome::Success)
}

fn create_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))
}

/// `word` as one shell word: as it is when it has nothing the shell would read, else in single
/// quotes, so that the `cd` line can be pasted as printed.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./+,:@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Writes `text` to `path` unless the file exists; true when written.
fn write_new(path: &Path, text: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_is_a_valid_configuration() {
        let c = crate::config::Config::parse(super::CONFIG_TEMPLATE, std::path::Path::new("t"))
            .expect("the scaffolded bulletin.toml must load");
        assert_eq!(c.smtp.pool, 8);
    }

    #[test]
    fn the_cd_line_can_be_pasted_as_printed() {
        use super::shell_word;
        assert_eq!(shell_word("my-news"), "my-news");
        assert_eq!(shell_word("../news/2026"), "../news/2026");
        assert_eq!(shell_word("My News"), "'My News'");
        assert_eq!(shell_word("it's $HOME"), "'it'\\''s $HOME'");
    }
}
