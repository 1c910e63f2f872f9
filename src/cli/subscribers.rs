//! `bulletin subscribers …`

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};

use super::output::{outln, print_table};
use super::{Context, Outcome, UsageError};
use crate::address::Address;
use crate::store::{
    AddOutcome, BatchError, BatchWriter, ImportOptions, List, NewSubscriber, Store, Subscriber,
    SubscriberFilter, SubscriberStatus, SubscriptionStatus,
};
use crate::subscriber_csv::{CsvError, ExportWriter, ImportReader, Imported};
use crate::subscriber_input::{attributes_json, parse_attr_pair, validate_language, validate_name};

/// Subscribers fetched per page when listing or exporting.
const PAGE: i64 = 2_000;

/// Subscriber commands.
#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add one subscriber (or join an existing one to more lists)
    Add {
        /// Address (name@example.org, without a display name)
        email: String,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// Preferred language (en, fr, pt-BR, ...)
        #[arg(long = "lang", value_name = "xx")]
        lang: Option<String>,
        /// List to join (repeatable)
        #[arg(long = "list", value_name = "L")]
        lists: Vec<String>,
        /// Attribute for templates (repeatable)
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
        /// Record the subscriptions as unconfirmed (waiting for double opt-in)
        #[arg(long)]
        unconfirmed: bool,
        /// The person consented again: lift an erasure or an earlier unsubscribe
        #[arg(long)]
        new_consent: bool,
        /// Accept an IP address as domain (name@[192.0.2.1]); refused by default
        #[arg(long)]
        allow_ip_literal: bool,
    },
    /// Import subscribers from CSV (columns: email, name, lang, lists, attributes, any other)
    Import {
        /// CSV file (UTF-8; `,` `;` or tab separated; `-` reads standard input)
        file: PathBuf,
        /// Join every row to this list too (repeatable)
        #[arg(long = "list", value_name = "L")]
        lists: Vec<String>,
        /// Overwrite name, language and attributes of subscribers already known
        #[arg(long)]
        update: bool,
        /// Check the file and report what would change, writing nothing
        #[arg(long)]
        dry_run: bool,
        /// Accept IP addresses as domains (name@[192.0.2.1]); such rows are refused by default
        #[arg(long)]
        allow_ip_literal: bool,
    },
    /// List subscribers
    List {
        /// Only members of this list
        #[arg(long, value_name = "L")]
        list: Option<String>,
        /// Only this status: confirmed, unconfirmed, unsubscribed (of a subscription) or active, blocklisted
        #[arg(long, value_name = "S")]
        status: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show one subscriber with subscriptions and history
    Show {
        /// Address
        email: String,
    },
    /// Unsubscribe from one list, or from all lists
    Unsubscribe {
        /// Address
        email: String,
        /// Only this list
        #[arg(long, value_name = "L")]
        list: Option<String>,
    },
    /// Lift a blocklisting (after a bounce that was wrong, or an operator's mistake); the
    /// subscriptions stay as they are
    Unblock {
        /// Address
        email: String,
    },
    /// Erase a subscriber's personal data (GDPR), keeping only a hash that blocks re-import.
    /// Asks first on a terminal; a script must pass --yes
    Remove {
        /// Address
        email: String,
        /// Erase without asking (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Export subscribers as CSV (re-importable unchanged) or JSON
    Export {
        /// Only members of this list
        #[arg(long, value_name = "L")]
        list: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Write to this file instead of standard output
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// CSV for Excel: UTF-8 with a byte-order mark (so accents show), cells separated by
        /// semicolons (what Excel expects in most European locales, where the comma is the
        /// decimal mark) and CRLF line ends; `import` reads it back unchanged
        #[arg(long, conflicts_with = "format")]
        excel: bool,
    },
}

/// `subscribers list --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns
    Table,
    /// CSV, as `export` writes it
    Csv,
    /// A JSON array
    Json,
}

/// `subscribers export --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// CSV that `import` reads back
    Csv,
    /// JSON lines, one subscriber per line
    Json,
    /// CSV for Excel (`--excel`)
    #[value(skip)]
    Excel,
}

pub(crate) async fn run(ctx: &Context, cmd: SubscribersCommand) -> anyhow::Result<Outcome> {
    let store = ctx.store().await?;
    let outcome = match cmd {
        SubscribersCommand::Add {
            email,
            name,
            lang,
            lists,
            attrs,
            unconfirmed,
            new_consent,
            allow_ip_literal,
        } => {
            add(
                ctx,
                &store,
                AddArgs {
                    email,
                    name,
                    lang,
                    lists,
                    attrs,
                    unconfirmed,
                    new_consent,
                    allow_ip_literal,
                },
            )
            .await?
        }
        SubscribersCommand::Import {
            file,
            lists,
            update,
            dry_run,
            allow_ip_literal,
        } => {
            let options = ImportOptions {
                update,
                dry_run,
                source: String::new(),
            };
            import(ctx, &store, &file, &lists, options, allow_ip_literal).await?
        }
        SubscribersCommand::List {
            list,
            status,
            format,
        } => {
            let format = if ctx.json { ListFormat::Json } else { format };
            list_subscribers(&store, list.as_deref(), status.as_deref(), format).await?
        }
        SubscribersCommand::Show { email } => show(ctx, &store, &email).await?,
        SubscribersCommand::Unsubscribe { email, list } => {
            let address = lookup(&email)?;
            let list = match list {
                Some(name) => Some(store.list_named(&name).await?),
                None => None,
            };
            let left = store.unsubscribe(&address, list.as_ref(), "cli").await?;
            if ctx.json {
                ctx.print_json(
                    &serde_json::json!({ "email": address.as_str(), "unsubscribed_from": left }),
                )?;
            } else if left.is_empty() {
                ctx.info(format!(
                    "{address} was not subscribed there; nothing changed"
                ));
            } else {
                ctx.info(format!("unsubscribed {address} from {}", left.join(", ")));
            }
            Outcome::Success
        }
        SubscribersCommand::Unblock { email } => unblock(ctx, &store, &email).await?,
        SubscribersCommand::Remove { email, yes } => {
            let address = lookup(&email)?;
            if !yes && !confirm_erasure(&address)? {
                ctx.info(format!("nothing erased; {address} is as it was"));
                return Ok(Outcome::Success);
            }
            store.erase(&address, "cli").await?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({ "erased": address.as_str() }))?;
            } else {
                ctx.info(format!(
                    "erased {address}: personal data deleted; a hash remains so that imports cannot add it back"
                ));
            }
            Outcome::Success
        }
        SubscribersCommand::Export {
            list,
            format,
            output,
            excel,
        } => {
            let format = match (excel, ctx.json) {
                (true, true) => {
                    return Err(UsageError(
                        "--excel writes CSV and --json asks for JSON; leave one out".into(),
                    )
                    .into());
                }
                (true, false) => ExportFormat::Excel,
                (false, true) => ExportFormat::Json,
                (false, false) => format,
            };
            export(&store, list.as_deref(), format, output.as_deref()).await?
        }
    };
    store.close().await;
    Ok(outcome)
}

/// The prompt before an erasure, on a terminal.
fn erasure_prompt(address: &Address) -> String {
    format!("Erase {address} for good? Their history is kept only as a hash. [y/N] ")
}

/// Whether an answer to a `[y/N]` prompt says yes; anything else, an empty line included,
/// is no.
fn says_yes(answer: &str) -> bool {
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES")
}

/// Asks on the terminal before erasing `address`. Off a terminal there is nobody to ask,
/// and an erasure cannot be undone, so a script must say it means it with `--yes`.
fn confirm_erasure(address: &Address) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "not erasing {address}: an erasure cannot be undone and there is no terminal to ask on; pass --yes to erase from a script"
        ))
        .into());
    }
    // On standard error, so that `--json` output stays one JSON value.
    let mut err = std::io::stderr().lock();
    write!(err, "{}", erasure_prompt(address))?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(says_yes(&answer))
}

/// An address to look up: any valid form, IP literals included, since looking up adds
/// nobody (and a subscriber added with --allow-ip-literal must be reachable).
fn lookup(email: &str) -> Result<Address, crate::address::AddressError> {
    Address::parse_with(email, true)
}

struct AddArgs {
    email: String,
    name: Option<String>,
    lang: Option<String>,
    lists: Vec<String>,
    attrs: Vec<String>,
    unconfirmed: bool,
    new_consent: bool,
    allow_ip_literal: bool,
}

async fn add(ctx: &Context, store: &Store, args: AddArgs) -> anyhow::Result<Outcome> {
    let address = Address::parse_with(&args.email, args.allow_ip_literal)?;
    let name = validate_name(args.name.as_deref().unwrap_or(""))?;
    let language = match &args.lang {
        Some(l) => validate_language(l)?,
        None => None,
    };
    let mut attributes = serde_json::Map::new();
    for pair in &args.attrs {
        let (k, v) = parse_attr_pair(pair)?;
        attributes.insert(k, v);
    }
    // The limits an import applies, so that this subscriber exports to a file that imports.
    attributes_json(&attributes)?;
    let lists = resolve_lists(store, &args.lists).await?;
    let status = args.unconfirmed.then_some(SubscriptionStatus::Unconfirmed);
    let new = NewSubscriber {
        address: address.clone(),
        name,
        language,
        attributes,
    };
    let outcome = store
        .add_subscriber(&new, &lists, status, args.new_consent, "cli")
        .await?;
    if address.needs_smtputf8() {
        ctx.info(smtputf8_warning(1));
    }
    if ctx.json {
        ctx.print_json(&outcome)?;
        return Ok(Outcome::Success);
    }
    let names: Vec<&str> = lists.iter().map(|l| l.name.as_str()).collect();
    let kept = match &outcome {
        AddOutcome::Added { .. } if names.is_empty() => {
            ctx.info(format!("added {address}"));
            &[][..]
        }
        AddOutcome::Added { .. } => {
            ctx.info(format!("added {address} to {}", names.join(", ")));
            &[][..]
        }
        AddOutcome::Updated {
            kept_unsubscribed, ..
        } => {
            ctx.info(format!(
                "{address} already known; now on {}",
                names.join(", ")
            ));
            kept_unsubscribed.as_slice()
        }
        AddOutcome::Unchanged {
            kept_unsubscribed, ..
        } => {
            ctx.info(format!("{address} already known; nothing changed"));
            kept_unsubscribed.as_slice()
        }
    };
    if !kept.is_empty() {
        ctx.info(format!(
            "note: {address} unsubscribed from {} earlier and stays unsubscribed; pass --new-consent if they asked to come back",
            kept.join(", ")
        ));
    }
    Ok(Outcome::Success)
}

async fn resolve_lists(store: &Store, names: &[String]) -> anyhow::Result<Vec<List>> {
    let mut lists = Vec::with_capacity(names.len());
    for name in names {
        let list = store.list_named(name).await?;
        if !lists.iter().any(|l: &List| l.id == list.id) {
            lists.push(list);
        }
    }
    Ok(lists)
}

async fn import(
    ctx: &Context,
    store: &Store,
    file: &Path,
    list_names: &[String],
    mut options: ImportOptions,
    allow_ip_literal: bool,
) -> anyhow::Result<Outcome> {
    let extra = resolve_lists(store, list_names).await?;
    let all = store.all_lists().await?;
    let mut reader = ImportReader::open(file, all, extra)?;
    reader.allow_ip_literal(allow_ip_literal);
    let shown = file.display().to_string();
    let label = file
        .file_name()
        .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
    options.source = format!("import:{label}");
    let dry_run = options.dry_run;
    let quiet = ctx.quiet;
    let writer = BatchWriter::new(store.importer().await?, options, |line, message: &str| {
        if !quiet {
            eprintln!("{shown}:{line}: {message}");
        }
    });
    let Imported {
        report,
        non_ascii,
        stopped,
        rows_written,
    } = reader
        .import_into(writer)
        .await
        .map_err(|e| batch_failed(e, &shown, dry_run))?;
    if let Some(e) = stopped {
        let done = report.summary(dry_run);
        let context = match e {
            CsvError::MissingList { .. } if rows_written == 0 || dry_run => {
                format!("import of {shown} stopped: nothing was imported")
            }
            CsvError::MissingList { .. } => format!(
                "import of {shown} stopped: {rows_written} rows of the batches before it were imported ({done}), the rest were not; importing the file again will count those as unchanged"
            ),
            _ => format!(
                "import of {shown} stopped ({done} before the problem); fix the file and import it again: rows already imported will count as unchanged"
            ),
        };
        return Err(anyhow::Error::new(e).context(context));
    }
    if ctx.json {
        let notes: Vec<serde_json::Value> = report
            .notes
            .iter()
            .map(|(line, message)| serde_json::json!({ "line": line, "message": message }))
            .collect();
        ctx.print_json(&serde_json::json!({
            "file": shown,
            "dry_run": dry_run,
            "added": report.added,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
            "suppressed": report.suppressed,
            "non_ascii_local_parts": non_ascii,
            "notes": notes,
        }))?;
    } else if !quiet {
        outln!("{}", report.summary(dry_run))?;
    }
    if non_ascii > 0 {
        ctx.info(smtputf8_warning(non_ascii));
    }
    Ok(if report.rejected > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

/// The error of a batch that failed, saying how far the import of `shown` got, with the
/// store's own error kept in the chain (it decides the exit code).
fn batch_failed(error: BatchError, shown: &str, dry_run: bool) -> anyhow::Error {
    match error {
        BatchError::Batch { done, source, .. } => anyhow::Error::new(source).context(format!(
            "import of {shown} stopped ({} before this batch)",
            done.summary(dry_run)
        )),
        BatchError::Task(e) => anyhow::Error::new(e).context("the import's database task failed"),
        BatchError::Finish(e) => e.into(),
    }
}

/// The warning for addresses that only an SMTPUTF8 relay can deliver to. They are kept: the
/// address is valid, and the relay decides.
fn smtputf8_warning(count: u64) -> String {
    format!(
        "warning: {count} address(es) have a non-ASCII part before the @ (RFC 6531); only a relay \
         that announces SMTPUTF8 can deliver to them (they are kept)"
    )
}

fn parse_status_filter(status: Option<&str>) -> anyhow::Result<SubscriberFilter> {
    let mut filter = SubscriberFilter::default();
    match status {
        None => {}
        Some("active") => filter.subscriber = Some(SubscriberStatus::Active),
        Some("blocklisted") => filter.subscriber = Some(SubscriberStatus::Blocklisted),
        Some(s) => {
            filter.subscription = Some(s.parse::<SubscriptionStatus>().map_err(|_| {
                UsageError(format!(
                    "`{s}` is not a status; use confirmed, unconfirmed, unsubscribed, active or blocklisted"
                ))
            })?);
        }
    }
    Ok(filter)
}

async fn filter_for(
    store: &Store,
    list: Option<&str>,
    status: Option<&str>,
) -> anyhow::Result<SubscriberFilter> {
    let mut filter = parse_status_filter(status)?;
    if let Some(name) = list {
        filter.list_id = Some(store.list_named(name).await?.id);
    }
    Ok(filter)
}

/// Calls `each` for every subscriber matching `filter`, a page at a time.
async fn for_each_subscriber(
    store: &Store,
    filter: &SubscriberFilter,
    mut each: impl FnMut(&Subscriber) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let page = store.subscribers_page(filter, after, PAGE).await?;
        for s in &page {
            each(s)?;
        }
        match page.last() {
            Some(last) => after = last.id,
            None => return Ok(()),
        }
    }
}

fn subscriber_json(s: &Subscriber) -> serde_json::Value {
    let lists: serde_json::Map<String, serde_json::Value> = s
        .subscriptions()
        .into_iter()
        .map(|(l, st)| (l, serde_json::Value::String(st)))
        .collect();
    serde_json::json!({
        "email": s.email,
        "name": s.name,
        "lang": s.language,
        "status": s.status,
        "lists": lists,
        "attributes": s.attributes_json(),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

async fn list_subscribers(
    store: &Store,
    list: Option<&str>,
    status: Option<&str>,
    format: ListFormat,
) -> anyhow::Result<Outcome> {
    let filter = filter_for(store, list, status).await?;
    match format {
        ListFormat::Csv => {
            write_csv(store, &filter, &mut std::io::stdout().lock()).await?;
        }
        ListFormat::Json => {
            let mut all = Vec::new();
            for_each_subscriber(store, &filter, |s| {
                all.push(subscriber_json(s));
                Ok(())
            })
            .await?;
            outln!("{}", serde_json::to_string_pretty(&all)?)?;
        }
        ListFormat::Table => {
            let mut rows = Vec::new();
            for_each_subscriber(store, &filter, |s| {
                let lists: Vec<String> = s
                    .subscriptions()
                    .into_iter()
                    .map(|(l, st)| format!("{l}:{st}"))
                    .collect();
                rows.push(vec![
                    s.email.clone(),
                    s.name.clone(),
                    s.language.clone().unwrap_or_default(),
                    s.status.to_string(),
                    lists.join(" "),
                ]);
                Ok(())
            })
            .await?;
            if rows.is_empty() {
                eprintln!("no subscribers match");
            } else {
                print_table(&["email", "name", "lang", "status", "lists"], &rows)?;
            }
        }
    }
    Ok(Outcome::Success)
}

async fn write_csv(
    store: &Store,
    filter: &SubscriberFilter,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut writer = ExportWriter::new(out, store.all_lists().await?)?;
    for_each_subscriber(store, filter, |s| Ok(writer.write(s)?)).await?;
    writer.finish()?;
    Ok(())
}

async fn export(
    store: &Store,
    list: Option<&str>,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let filter = filter_for(store, list, None).await?;
    // Write to a temporary file beside the target and rename it at the end, so that a failed
    // export never leaves a truncated file where a good one was.
    let (mut out, finish): (Box<dyn Write>, Option<(PathBuf, PathBuf)>) = match output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            (
                Box::new(std::io::BufWriter::new(file)),
                Some((tmp, path.to_path_buf())),
            )
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
        ),
    };
    match format {
        ExportFormat::Csv => write_csv(store, &filter, &mut out).await?,
        ExportFormat::Excel => {
            let mut writer = ExportWriter::excel(&mut out, store.all_lists().await?)?;
            for_each_subscriber(store, &filter, |s| Ok(writer.write(s)?)).await?;
            writer.finish()?;
        }
        ExportFormat::Json => {
            for_each_subscriber(store, &filter, |s| {
                writeln!(out, "{}", subscriber_json(s))?;
                Ok(())
            })
            .await?;
        }
    }
    out.flush().context("cannot write the export")?;
    drop(out);
    if let Some((tmp, path)) = finish {
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Outcome::Success)
}

/// A "not found" that names an erasure when the address was erased: only its hash is left.
async fn not_found_or_erased(
    store: &Store,
    address: &Address,
    error: crate::store::StoreError,
) -> anyhow::Error {
    match error {
        crate::store::StoreError::SubscriberNotFound(_)
            if store.is_erased(address).await.unwrap_or(false) =>
        {
            UsageError(format!(
                "{address} was erased at the person's request; only a hash of the address is kept"
            ))
            .into()
        }
        e => e.into(),
    }
}

async fn unblock(ctx: &Context, store: &Store, email: &str) -> anyhow::Result<Outcome> {
    let address = lookup(email)?;
    let lifted = match store.unblock(&address, "cli").await {
        Ok(lifted) => lifted,
        Err(e) => return Err(not_found_or_erased(store, &address, e).await),
    };
    if !lifted {
        return Err(UsageError(format!(
            "{address} is not blocklisted; nothing to lift (see `bulletin subscribers show {address}`)"
        ))
        .into());
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "unblocked": address.as_str() }))?;
    } else {
        ctx.info(format!(
            "{address} is no longer blocklisted; their subscriptions are as they were"
        ));
    }
    Ok(Outcome::Success)
}

async fn show(ctx: &Context, store: &Store, email: &str) -> anyhow::Result<Outcome> {
    let address = lookup(email)?;
    let subscriber = match store.subscriber(&address).await {
        Ok(s) => s,
        Err(e) => return Err(not_found_or_erased(store, &address, e).await),
    };
    let subscriptions = store.subscriptions_of(subscriber.id).await?;
    let events = store.events_for(subscriber.id).await?;
    if ctx.json {
        let mut value = subscriber_json(&subscriber);
        value["subscriptions"] = serde_json::to_value(&subscriptions)?;
        value["events"] = serde_json::to_value(&events)?;
        ctx.print_json(&value)?;
        return Ok(Outcome::Success);
    }
    outln!("email:      {}", subscriber.email)?;
    outln!("name:       {}", subscriber.name)?;
    outln!(
        "language:   {}",
        subscriber.language.as_deref().unwrap_or("-")
    )?;
    outln!("status:     {}", subscriber.status)?;
    outln!("attributes: {}", subscriber.attributes_json())?;
    outln!("created:    {}", subscriber.created_at)?;
    outln!("updated:    {}", subscriber.updated_at)?;
    outln!()?;
    if subscriptions.is_empty() {
        outln!("no subscriptions")?;
    } else {
        let rows: Vec<Vec<String>> = subscriptions
            .iter()
            .map(|s| {
                vec![
                    s.list.clone(),
                    s.status.to_string(),
                    s.consent_source.clone(),
                    s.created_at.clone(),
                    s.confirmed_at.clone().unwrap_or_default(),
                    s.unsubscribed_at.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(
            &[
                "list",
                "status",
                "consent",
                "since",
                "confirmed",
                "unsubscribed",
            ],
            &rows,
        )?;
    }
    outln!()?;
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.occurred_at.clone(),
                e.kind.clone(),
                e.list_name.clone().unwrap_or_default(),
                e.source.clone(),
            ]
        })
        .collect();
    print_table(&["when", "event", "list", "source"], &rows)?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_confirms_an_erasure() {
        for yes in ["y\n", "Y\n", "yes\n", " yes \r\n"] {
            assert!(says_yes(yes), "{yes:?}");
        }
        for no in ["\n", "", "n\n", "no\n", "yess\n", "ja\n"] {
            assert!(!says_yes(no), "{no:?}");
        }
        let address = Address::parse("ana@example.org").expect("valid");
        assert_eq!(
            erasure_prompt(&address),
            "Erase ana@example.org for good? Their history is kept only as a hash. [y/N] "
        );
    }
}
