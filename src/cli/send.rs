//! `bulletin send`: render and check the edition, then hand the campaign to `delivery`; also
//! `preview --to`, the test copy through the same message path.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;

use super::compose::{ThemeArgs, identity, templates_dir};
use super::output::outln;
use super::{Context, Outcome, UsageError};
use crate::delivery::estimate::Estimate;
use crate::delivery::{
    self, BeginOptions, Begun, CampaignKey, Progress, Relay, Run, RunReport, Session, Settings,
    SmtpRelay, SmtpTimeouts, Transport,
};
use crate::mail::{Personaliser, RecipientData, Sender};
use crate::render;
use crate::store::{Store, SubscriberFilter, SubscriptionStatus};
use crate::token::Keys;

/// Arguments of `bulletin send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The edition folder
    #[arg(value_hint = clap::ValueHint::DirPath)]
    pub edition: PathBuf,
    /// The list to send to
    #[arg(long, value_name = "L")]
    pub list: String,
    /// Build every message and report counts, size and the expected duration; deliver
    /// nothing, record nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Deliver into this Maildir folder instead of the SMTP relay
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    /// Messages per second (overrides [smtp] rate; 0 = no limit)
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Parallel connections (overrides [smtp] pool)
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Do not send again to recipients whose delivery is uncertain (under way when a sender
    /// stopped, or handed over with no final reply)
    #[arg(long)]
    pub skip_uncertain: bool,
    /// Before resuming, queue the campaign's failed deliveries again (after their cause was
    /// fixed); each is a new attempt
    #[arg(long)]
    pub retry_failed: bool,
    /// Which templates to use (`--templates`, else the project's `templates/`, else the built-in theme).
    #[command(flatten)]
    pub theme: ThemeArgs,
}

/// What a send needs, checked before anything is recorded.
struct Prepared {
    rendered: Arc<render::RenderedEdition>,
    sender: Sender,
    store: Store,
    list: crate::store::List,
    audience: i64,
    keys: Keys,
    default_subject: String,
    /// The campaign counts clicks (the edition's or the list's `track_clicks`).
    track_clicks: bool,
}

/// Renders the edition (refusing lint errors), finds the list and its audience, and checks
/// the secret and the DKIM key: every input mistake stops the send before a campaign exists.
async fn prepare(ctx: &Context, args: &SendArgs) -> anyhow::Result<Prepared> {
    let templates = templates_dir(ctx, args.theme.templates.as_deref())?;
    let (edition, _, rendered) = super::compose::load_and_render(
        &args.edition,
        &templates,
        &identity(ctx),
        archive_publish(ctx),
        None,
    )?;
    if rendered.lint.errors() > 0 {
        return Err(UsageError(format!(
            "{} does not compose cleanly ({} lint error(s)); run `bulletin compose {}` to see them",
            args.edition.display(),
            rendered.lint.errors(),
            args.edition.display()
        ))
        .into());
    }
    let sender = Sender::from_config(&ctx.config)?;
    let store = ctx.store().await?;
    let list = store.list_named(&args.list).await?;
    let audience = store.audience_size(list.id).await?;
    if audience == 0 {
        return Err(crate::store::CampaignError::EmptyAudience(list.name.clone()).into());
    }
    let secret = ctx.config.token_secret()?.ok_or_else(|| {
        UsageError(
            "no token secret for unsubscribe links: set BULLETIN_SECRET or [server] secret_file (32+ characters)"
                .into(),
        )
    })?;
    // Links are signed with the current secret only; previous ones matter to `serve`, which
    // verifies.
    let keys = Keys::new(&secret, &[])?;
    let default_subject = rendered
        .variants
        .get(&rendered.default_language)
        .map(|v| v.subject.clone())
        .unwrap_or_default();
    // A bad key must stop the send before a campaign exists.
    crate::mail::dkim::Signer::from_config(&ctx.config)?;
    // Either opts in: the edition (`track_clicks = true`) or the list (`lists set
    // --track-clicks`).
    let track_clicks = edition.track_clicks || list.track_clicks;
    Ok(Prepared {
        rendered: Arc::new(rendered),
        sender,
        store,
        list,
        audience,
        keys,
        default_subject,
        track_clicks,
    })
}

pub(crate) async fn send(ctx: &Context, args: SendArgs) -> anyhow::Result<Outcome> {
    let p = prepare(ctx, &args).await?;
    if args.dry_run {
        let settings = Settings::from_config(&ctx.config, args.concurrency, args.rate);
        return dry_run(ctx, &p, &settings).await;
    }
    let relay = Relay::from_config(&ctx.config, args.outbox.as_deref())?;
    if !confirmed(&args, &p, &relay)? {
        ctx.info("nothing sent");
        return Ok(Outcome::Success);
    }
    let settings = Settings::from_config(&ctx.config, args.concurrency, args.rate);
    let (campaign, report) = deliver(ctx, &args, &p, &settings, Arc::new(relay)).await?;
    let counts = p.store.delivery_counts(campaign.id).await?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "campaign": campaign.id,
            "run": report,
            "totals": counts,
        }))?;
    } else if !ctx.quiet {
        // Ignored when the reader has gone: the exit code below, not this line, tells how the
        // run ended, and a closed pipe must not turn a paused campaign into a quiet success.
        let _ = outln!(
            "campaign #{}: {} sent, {} failed, {} skipped, {} waiting (this run: {} sent in {:.1} s, {:.0}/s, {:.1} MB)",
            campaign.id,
            counts.sent,
            counts.failed,
            counts.skipped,
            counts.queued + counts.sending,
            report.sent,
            report.seconds,
            report.sent as f64 / report.seconds.max(0.001),
            report.bytes as f64 / 1e6
        );
    }
    p.store.close().await;
    if let Some(why) = &report.stopped {
        return Err(anyhow::anyhow!("campaign #{} {why}", campaign.id));
    }
    Ok(if counts.failed > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

/// On a terminal, asks before sending (unless `--yes`); elsewhere there is nobody to ask.
fn confirmed(args: &SendArgs, p: &Prepared, relay: &Relay) -> anyhow::Result<bool> {
    if args.yes || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Ok(true);
    }
    let languages: Vec<&str> = p.rendered.variants.keys().map(String::as_str).collect();
    outln!(
        "Send \"{}\" to {} subscriber(s) of {} ({}) through {}? [y/N] ",
        p.default_subject,
        p.audience,
        p.list.name,
        languages.join(", "),
        relay.describe()
    )?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `preview --to`: one copy of every language variant to each address, through the same
/// message path as a campaign (personalisation, headers, DKIM), subject prefixed `[TEST]`.
/// No campaign and no delivery rows are created; the database is not opened.
pub(crate) async fn test_send(
    ctx: &Context,
    edition_dir: &std::path::Path,
    templates: &std::path::Path,
    to: &[String],
) -> anyhow::Result<Outcome> {
    let addresses = to
        .iter()
        .map(|a| crate::address::Address::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let (_, _, mut rendered) = super::compose::load_and_render(
        edition_dir,
        templates,
        &identity(ctx),
        archive_publish(ctx),
        None,
    )?;
    for variant in rendered.variants.values_mut() {
        variant.subject = format!("[TEST] {}", variant.subject);
    }
    let sender = Sender::from_config(&ctx.config)?;
    // Test copies' links lead to the page that explains a test copy (never a real token:
    // they must never unsubscribe anyone); the key below signs nothing that is sent.
    let keys = Keys::new(
        &crate::config::Secret::new(format!("test-copy-{}", "x".repeat(32))),
        &[],
    )?;
    let languages: Vec<String> = rendered.variants.keys().cloned().collect();
    let mut personaliser = Personaliser::new(
        Arc::new(rendered),
        sender,
        keys,
        &ctx.config.list.public_url,
        0,
        0,
    )
    .for_test_copy();
    if let Some(signer) = crate::mail::dkim::Signer::from_config(&ctx.config)? {
        personaliser = personaliser.with_dkim(signer);
    }
    let relay = SmtpRelay::from_url(&ctx.config.smtp.url, ctx.config.smtp_credentials()?)
        .map_err(|e| UsageError(e.to_string()))?
        .with_timeouts(SmtpTimeouts::from_config(&ctx.config));
    let mut session = relay
        .open()
        .await
        .map_err(|e| crate::delivery::DeliveryError::Relay {
            relay: relay.describe(),
            cause: e.to_string(),
        })?;
    let mut sent = 0;
    for (i, address) in addresses.iter().enumerate() {
        for (j, language) in languages.iter().enumerate() {
            let built = personaliser.build(
                &RecipientData {
                    subscriber_id: 0,
                    delivery_id: -(i64::try_from(i * languages.len() + j).unwrap_or(0) + 1),
                    email: address.as_str(),
                    name: "",
                    language: Some(language),
                    attributes: "{}",
                    token_nonce: "test",
                },
                time::OffsetDateTime::now_utc(),
            )?;
            let reply = session
                .send(personaliser.envelope_from(), &built.to, &built.bytes)
                .await
                .map_err(|e| anyhow::anyhow!("test copy to {address} ({language}) refused: {e}"))?;
            sent += 1;
            ctx.info(format!("test copy ({language}) to {address}: {reply}"));
        }
    }
    session.close().await;
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "test_copies": sent, "languages": languages }))?;
    }
    Ok(Outcome::Success)
}

/// Creates or resumes the campaign (saying what was found), and runs it.
async fn deliver(
    ctx: &Context,
    args: &SendArgs,
    p: &Prepared,
    settings: &Settings,
    relay: Arc<Relay>,
) -> anyhow::Result<(crate::store::Campaign, RunReport)> {
    let key = CampaignKey {
        slug: &p.rendered.slug,
        content_hash: &p.rendered.content_hash,
        subject: &p.default_subject,
    };
    let options = BeginOptions {
        retry_failed: args.retry_failed,
        skip_uncertain: args.skip_uncertain,
        lease_ttl: settings.lease_ttl,
    };
    let begun = delivery::begin(&p.store, relay.as_ref(), &p.list, key, options).await?;
    tell_begun(ctx, &begun, &p.list, relay.as_ref(), args.skip_uncertain);
    let track_clicks = match begun.created {
        Some(_) => p.track_clicks,
        // Resumed: as it began (its links are recorded or not), so that every message of a
        // campaign is alike; a changed setting applies to the next campaign.
        None => {
            let began_counting = p.store.counts_clicks(begun.campaign.id).await?;
            if began_counting != p.track_clicks {
                ctx.info(format!(
                    "campaign #{} began {} clicks and goes on that way; the changed setting applies to the next campaign",
                    begun.campaign.id,
                    if began_counting { "counting" } else { "without counting" }
                ));
            }
            began_counting
        }
    };
    let rendered = if track_clicks {
        let public_url = &ctx.config.list.public_url;
        let tracked = crate::clicks::track(
            &p.store,
            &p.keys,
            begun.campaign.id,
            &p.rendered,
            public_url,
        )
        .await?;
        ctx.info(format!(
            "counting clicks on {} link(s) through {}/c/ (per link, not per person)",
            tracked.links,
            public_url.trim_end_matches('/')
        ));
        Arc::new(tracked.edition)
    } else {
        Arc::clone(&p.rendered)
    };
    let personaliser = campaign_personaliser(
        ctx,
        rendered,
        p.sender.clone(),
        p.keys.clone(),
        (p.list.id, begun.campaign.id),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(Arc::clone(&stop))?;
    let total = p.store.delivery_counts(begun.campaign.id).await?.total();
    let mut progress = Reporter::new(ctx.quiet, total);
    let result = delivery::run(
        Run {
            store: &p.store,
            lease: &begun.lease,
            list_id: p.list.id,
            personaliser: Arc::new(personaliser),
            transport: relay,
            settings,
            stop,
        },
        &mut progress,
    )
    .await;
    progress.finish();
    Ok((begun.campaign, result?))
}

/// What `begin` found, for the operator.
fn tell_begun(
    ctx: &Context,
    begun: &Begun,
    list: &crate::store::List,
    relay: &Relay,
    skip_uncertain: bool,
) {
    let id = begun.campaign.id;
    if begun.need_smtputf8 > 0 {
        ctx.warn(format!(
            "{} recipient(s) of list {} have an address with a non-ASCII local part, which needs \
             a relay that announces SMTPUTF8 (RFC 6531); {} does not, so their deliveries will fail at once",
            begun.need_smtputf8,
            list.name,
            relay.describe()
        ));
    }
    match begun.created {
        Some(n) => ctx.info(format!("campaign #{id} created: {n} recipient(s)")),
        None => ctx.info(format!(
            "resuming campaign #{id} ({})",
            begun.campaign.status
        )),
    }
    if begun.orphaned > 0 {
        ctx.info(format!(
            "{} recipient(s) were being sent to when the last sender stopped: now uncertain",
            begun.orphaned
        ));
    }
    if let Some((requeued, blocked)) = begun.retried {
        ctx.info(format!(
            "{requeued} failed deliver(y/ies) queued again{}",
            if blocked > 0 {
                format!("; {blocked} stay failed because the address is blocklisted (lift with `bulletin subscribers unblock`)")
            } else {
                String::new()
            }
        ));
    }
    if begun.uncertain > 0 {
        let what = if skip_uncertain {
            "marked skipped (--skip-uncertain)"
        } else {
            "will be sent again (pass --skip-uncertain to skip them)"
        };
        ctx.info(format!(
            "{} recipient(s) are uncertain (the relay may have their message): {what}",
            begun.uncertain
        ));
    }
}

/// Ctrl-C, SIGTERM (systemd stop, `timeout`, `kill`) and SIGHUP (the terminal went away) all
/// ask the run to stop claiming, finish and record the messages in flight, and leave the
/// campaign paused. A second signal ends the process at once; the rows still in flight are
/// then uncertain, as after a crash.
fn stop_on_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            let code = tokio::select! {
                _ = interrupt.recv() => 130,
                _ = term.recv() => 143,
                _ = hangup.recv() => 129,
            };
            received += 1;
            if received > 1 {
                std::process::exit(code);
            }
            eprintln!(
                "\nstopping after the messages in flight (signal again to stop at once, leaving them uncertain)…"
            );
            stop.store(true, Ordering::Relaxed);
        }
    });
    Ok(())
}

/// Builds every message of the audience and reports counts, size and how long the send will
/// take (see `delivery::estimate`); writes nothing.
async fn dry_run(ctx: &Context, p: &Prepared, settings: &Settings) -> anyhow::Result<Outcome> {
    let (store, list, audience) = (&p.store, &p.list, p.audience);
    let personaliser = Personaliser::new(
        Arc::clone(&p.rendered),
        p.sender.clone(),
        p.keys.clone(),
        &ctx.config.list.public_url,
        list.id,
        0,
    );
    let filter = SubscriberFilter {
        list_id: Some(list.id),
        subscription: Some(SubscriptionStatus::Confirmed),
        subscriber: Some(crate::store::SubscriberStatus::Active),
    };
    let started = Instant::now();
    let (mut count, mut bytes, mut largest) = (0u64, 0u64, 0usize);
    let mut by_language: std::collections::BTreeMap<String, u64> = Default::default();
    let mut after = 0;
    let now = time::OffsetDateTime::now_utc();
    loop {
        let page = store.subscribers_page(&filter, after, 2_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for s in &page {
            let built = personaliser.build(
                &RecipientData {
                    subscriber_id: s.id,
                    delivery_id: 0,
                    email: &s.email,
                    name: &s.name,
                    language: s.language.as_deref(),
                    attributes: &s.attributes,
                    token_nonce: "dry-run",
                },
                now,
            )?;
            count += 1;
            bytes += built.bytes.len() as u64;
            largest = largest.max(built.bytes.len());
            *by_language.entry(built.language).or_default() += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let international = store.audience_needing_smtputf8(list.id).await?;
    let timing = store.last_send_timing().await?;
    let estimate = Estimate::new(count, settings.rate, settings.hourly_cap, timing.as_ref());
    if international > 0 {
        ctx.warn(format!(
            "{international} recipient(s) have an address with a non-ASCII local part: they need a relay that \
             announces SMTPUTF8 (RFC 6531), or their deliveries fail"
        ));
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "dry_run": true, "list": list.name, "audience": audience, "messages": count,
            "bytes": bytes, "largest": largest, "languages": by_language, "seconds": seconds,
            "need_smtputf8": international, "estimate": estimate, "measured_on": timing,
        }))?;
    } else {
        let langs: Vec<String> = by_language
            .iter()
            .map(|(l, n)| format!("{l}: {n}"))
            .collect();
        outln!(
            "dry run: {count} message(s) for list {} ({}), {:.1} MB in all, largest {:.0} KB, built in {:.2} s; nothing delivered or recorded",
            list.name,
            langs.join(", "),
            bytes as f64 / 1e6,
            largest as f64 / 1024.0,
            seconds
        )?;
        outln!("{}", estimate.describe(timing.as_ref()))?;
    }
    Ok(Outcome::Success)
}

/// A progress line on a terminal; off a terminal (a log, a cron mail) a line every 30 seconds
/// at most, and one whenever the run's state changes (it starts stopping).
struct Reporter {
    quiet: bool,
    terminal: bool,
    total: i64,
    started: Instant,
    last: Instant,
    stopping: bool,
}

impl Reporter {
    fn new(quiet: bool, total: i64) -> Self {
        Self {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            total,
            started: Instant::now(),
            last: Instant::now(),
            stopping: false,
        }
    }

    fn finish(&self) {
        if self.terminal && !self.quiet {
            eprintln!();
        }
    }
}

impl Progress for Reporter {
    fn update(&mut self, r: &RunReport, in_flight: usize) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(30)
        };
        let changed = r.stopped.is_some() != self.stopping;
        self.stopping = r.stopped.is_some();
        if self.quiet || (self.last.elapsed() < every && !changed) {
            return;
        }
        self.last = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = r.sent as f64 / elapsed;
        let left = (self.total as f64 - (r.sent + r.failed + r.skipped) as f64).max(0.0);
        let eta = if rate > 0.0 { left / rate } else { 0.0 };
        let line = format!(
            "sent {} / {}, failed {}, retrying {}, in flight {in_flight}, {rate:.0}/s, ETA {eta:.0} s",
            r.sent, self.total, r.failed, r.retried
        );
        if self.terminal {
            eprint!("\r{line}   ");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }
}

/// The personaliser of a campaign's messages: signed with `[dkim]` and with `[bounces]`
/// return paths when configured. `ids` are the list's and the campaign's.
pub(super) fn campaign_personaliser(
    ctx: &Context,
    rendered: Arc<render::RenderedEdition>,
    sender: Sender,
    keys: Keys,
    ids: (i64, i64),
) -> anyhow::Result<Personaliser> {
    let mut personaliser = Personaliser::new(
        rendered,
        sender,
        keys,
        &ctx.config.list.public_url,
        ids.0,
        ids.1,
    );
    if let Some(signer) = crate::mail::dkim::Signer::from_config(&ctx.config)? {
        personaliser = personaliser.with_dkim(signer);
    }
    if let Some(b) = &ctx.config.bounces {
        personaliser = personaliser.with_bounces(&b.local_part, &b.domain);
    }
    Ok(personaliser)
}

/// Mail that is sent links its pictures and documents where `serve` serves them: the
/// edition's folder in the archive folder.
fn archive_publish(ctx: &Context) -> super::compose::Publish<'_> {
    super::compose::Publish {
        out: super::compose::Out::Under(&ctx.config.server.archive_dir),
        base_url: ctx.config.assets.base_url.as_deref(),
    }
}
