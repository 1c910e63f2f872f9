//! Shell completion: `bulletin completions SHELL` (clap_complete's static script, plus list
//! names for `--list` asked of the hidden `bulletin __complete lists`) and that helper.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::Cli;
use super::output::outln;
use crate::config::Config;
use crate::store::Store;

/// What `bulletin __complete` lists.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Candidates {
    /// The names of the project's mailing lists, one a line.
    Lists,
}

/// The command the scripts run for list names; errors are silenced because a completion
/// must never print into the user's command line.
const ASK: &str = "bulletin __complete lists 2>/dev/null";

/// Prints the completion script for `shell`.
pub(super) fn print_script(shell: Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "bulletin", &mut script);
    let script = String::from_utf8(script)?;
    let script = match shell {
        Shell::Bash => with_lists_bash(script),
        Shell::Zsh => with_lists_zsh(&script),
        Shell::Fish => with_lists_fish(&script),
        // Elvish and PowerShell keep clap_complete's script: options and subcommands only.
        _ => script,
    };
    std::io::stdout().lock().write_all(script.as_bytes())?;
    Ok(())
}

/// Bash: a wrapper around clap_complete's `_bulletin` that answers a word after `--list`
/// itself, registered in its place.
fn with_lists_bash(mut script: String) -> String {
    script.push_str(&format!(
        r#"
# List names for --list, from the project's database (bulletin __complete lists).
_bulletin_with_lists() {{
    if [[ "${{COMP_WORDS[COMP_CWORD-1]}}" == "--list" ]]; then
        COMPREPLY=( $(compgen -W "$({ASK})" -- "${{COMP_WORDS[COMP_CWORD]}}") )
        return 0
    fi
    _bulletin "$@"
}}
if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _bulletin_with_lists -o nosort -o bashdefault -o default bulletin
else
    complete -F _bulletin_with_lists -o bashdefault -o default bulletin
fi
"#
    ));
    script
}

/// Zsh: every `--list` value is completed by `_bulletin_lists`, defined before the script's
/// last lines call `_bulletin`.
fn with_lists_zsh(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 256);
    for line in script.lines() {
        if line.starts_with("'--list=") || line.starts_with("'*--list=") {
            out.push_str(&line.replacen(":_default'", ":_bulletin_lists'", 1));
        } else {
            out.push_str(line);
        }
        out.push('\n');
        if line.starts_with("#compdef") {
            out.push_str(&format!(
                "\n# List names for --list, from the project's database.\n\
                 _bulletin_lists() {{\n    local -a lists\n    lists=(${{(f)\"$({ASK})\"}})\n    \
                 _describe 'list' lists\n}}\n"
            ));
        }
    }
    out
}

/// Fish: each `--list` line also offers the list names (and no file names).
fn with_lists_fish(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 512);
    for line in script.lines() {
        out.push_str(line);
        if line.contains(" -l list ") {
            out.push_str(&format!(" -f -a \"({ASK})\""));
        }
        out.push('\n');
    }
    out
}

/// `bulletin __complete lists`: the list names, or nothing at all when there is no project
/// or no database yet; never creates one, never fails.
pub(super) async fn print_candidates(config: Option<&Path>, database: Option<&str>) {
    if let Ok(names) = list_names(config, database).await {
        for name in names {
            if outln!("{name}").is_err() {
                return;
            }
        }
    }
}

async fn list_names(config: Option<&Path>, database: Option<&str>) -> anyhow::Result<Vec<String>> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (mut config, _warnings) = Config::load(config, &env)?;
    if let Some(url) = database {
        config.override_database_url(url)?;
    }
    let named = database.is_some() || env.iter().any(|(k, _)| k == "BULLETIN_DATABASE_URL");
    if config.source.is_none() && !named {
        return Ok(Vec::new());
    }
    let db = &config.database;
    // `open_existing`: a missing or empty file is an error here, not a new database.
    let store = Store::open_existing(&config.database_connect_url()?, db.busy_timeout_ms).await?;
    Ok(store
        .all_lists()
        .await?
        .into_iter()
        .map(|l| l.name)
        .collect())
}
