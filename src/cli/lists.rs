//! `bulletin lists …`

use clap::Subcommand;

use super::output::print_table;
use super::{Context, Outcome};

/// Mailing list commands.
#[derive(Debug, Subcommand)]
pub enum ListsCommand {
    /// Create a list
    Add {
        /// Name: letters, digits, '.', '_' or '-'
        name: String,
        /// New subscriptions stay unconfirmed until the person confirms by mail
        #[arg(long)]
        double_opt_in: bool,
    },
    /// Show every list with its subscription counts
    List,
    /// Remove a list and its subscriptions (subscribers stay)
    Remove {
        /// The list
        name: String,
        /// Remove it even though campaigns were sent to it
        #[arg(long)]
        force: bool,
    },
}

pub(crate) async fn run(ctx: &Context, cmd: ListsCommand) -> anyhow::Result<Outcome> {
    let store = ctx.store().await?;
    match cmd {
        ListsCommand::Add {
            name,
            double_opt_in,
        } => {
            let list = store.create_list(&name, double_opt_in, "cli").await?;
            if ctx.json {
                ctx.print_json(&list)?;
            } else {
                let mode = if double_opt_in {
                    " (double opt-in)"
                } else {
                    ""
                };
                ctx.info(format!("created list {name}{mode}"));
            }
        }
        ListsCommand::List => {
            let lists = store.list_summaries().await?;
            if ctx.json {
                ctx.print_json(&lists)?;
            } else if lists.is_empty() {
                ctx.info("no lists yet; create one with `bulletin lists add NAME`");
            } else {
                let rows: Vec<Vec<String>> = lists
                    .iter()
                    .map(|l| {
                        vec![
                            l.name.clone(),
                            if l.double_opt_in { "double" } else { "single" }.into(),
                            l.confirmed.to_string(),
                            l.unconfirmed.to_string(),
                            l.unsubscribed.to_string(),
                            l.blocklisted.to_string(),
                            l.created_at.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "name",
                        "opt-in",
                        "confirmed",
                        "unconfirmed",
                        "unsubscribed",
                        "blocklisted",
                        "created",
                    ],
                    &rows,
                )?;
            }
        }
        ListsCommand::Remove { name, force } => {
            store.remove_list(&name, force, "cli").await?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({ "removed": name }))?;
            } else {
                ctx.info(format!("removed list {name}"));
            }
        }
    }
    store.close().await;
    Ok(Outcome::Success)
}
