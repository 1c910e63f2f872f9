//! `bulletin lists …`

use clap::Subcommand;

use super::output::print_table;
use super::{Context, Outcome};
use crate::store::ListAppearance;

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
        /// Keep it off the public subscription form and out of strangers' preference centres
        /// (its members still see it there)
        #[arg(long)]
        private: bool,
        #[command(flatten)]
        texts: ListTexts,
    },
    /// Change what subscribers see of a list: public or private, its name and description per
    /// language. Pages and mails never show the internal NAME; a language without a display
    /// name falls back to English, then to any language the list has, then to the newsletter's
    /// name.
    ///
    /// Example: bulletin lists set news --display-name es="Noticias" --description es="Una vez al mes."
    Set {
        /// The list
        name: String,
        /// Offer it on the public subscription form
        #[arg(long, conflicts_with = "private")]
        public: bool,
        /// Stop offering it on the public form (its members keep it)
        #[arg(long)]
        private: bool,
        /// Count clicks per link in every campaign sent to this list (aggregated, never per
        /// person; see README "Clicks (opt-in)")
        #[arg(long, conflicts_with = "no_track_clicks")]
        track_clicks: bool,
        /// Stop counting clicks for this list (an edition's `track_clicks = true` still does)
        #[arg(long)]
        no_track_clicks: bool,
        #[command(flatten)]
        texts: ListTexts,
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

/// The per-language texts of `lists add` and `lists set`.
#[derive(Debug, clap::Args)]
pub struct ListTexts {
    /// The name subscribers read in one language, as LANG=TEXT (repeatable):
    /// --display-name en="Project news" --display-name ar="أخبار المشروع"
    #[arg(long = "display-name", value_name = "LANG=TEXT", value_parser = lang_pair)]
    display_names: Vec<(String, String)>,
    /// What the list sends, in one language, as LANG=TEXT (repeatable); that language needs a
    /// display name
    #[arg(long = "description", value_name = "LANG=TEXT", value_parser = lang_pair)]
    descriptions: Vec<(String, String)>,
}

/// `es=Noticias` → (`es`, `Noticias`).
fn lang_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((lang, text)) if !lang.trim().is_empty() => {
            Ok((lang.trim().to_string(), text.to_string()))
        }
        _ => Err(format!(
            "`{raw}` is not LANG=TEXT; write it like es=\"Noticias del proyecto\""
        )),
    }
}

impl ListTexts {
    fn into_appearance(self, public: Option<bool>) -> ListAppearance {
        ListAppearance {
            public,
            track_clicks: None,
            display_names: self.display_names,
            descriptions: self.descriptions,
        }
    }
}

pub(crate) async fn run(ctx: &Context, cmd: ListsCommand) -> anyhow::Result<Outcome> {
    let store = ctx.store().await?;
    match cmd {
        ListsCommand::Add {
            name,
            double_opt_in,
            private,
            texts,
        } => {
            let mut list = store.create_list(&name, double_opt_in, "cli").await?;
            let change = texts.into_appearance(private.then_some(false));
            if change.public.is_some()
                || !change.display_names.is_empty()
                || !change.descriptions.is_empty()
            {
                list = store.update_list(&name, &change, "cli").await?;
            }
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
                            if l.public { "public" } else { "private" }.into(),
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
                        "form",
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
        ListsCommand::Set {
            name,
            public,
            private,
            track_clicks,
            no_track_clicks,
            texts,
        } => {
            let visibility = match (public, private) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let mut change = texts.into_appearance(visibility);
            change.track_clicks = match (track_clicks, no_track_clicks) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let list = store.update_list(&name, &change, "cli").await?;
            if ctx.json {
                let texts = store.list_texts(Some(list.id)).await?;
                ctx.print_json(&serde_json::json!({ "list": list, "texts": texts }))?;
            } else {
                let shown = if list.public { "public" } else { "private" };
                let clicks = if list.track_clicks {
                    "; its campaigns count clicks"
                } else {
                    ""
                };
                ctx.info(format!("updated list {name} ({shown}{clicks})"));
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
