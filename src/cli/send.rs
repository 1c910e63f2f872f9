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
    /// Do not send now: record the campaign as scheduled for this time, which a `bulletin
    /// worker` starts when it comes. RFC 3339 with an offset (2026-12-05T09:00+01:00), or a
    /// local time (2026-12-05T09:00) with --tz
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with_all = ["dry_run", "now", "outbox", "skip_uncertain", "retry_failed"]
    )]
    pub at: Option<String>,
    /// The time zone of --at, an IANA name (Europe/Paris); the built-in time zone database is
    /// used, so the machine needs none
    #[arg(long, value_name = "ZONE", requires = "at")]
    pub tz: Option<String>,
    /// Start a campaign that `--at` scheduled for this edition and list now, rather than
    /// refuse before its time
    #[arg(long)]
    pub now: bool,
    /// Which templates to use (`--templates`, else the project's `templates/`, else the built-in theme).
    #[command(flatten)]
    pub theme: ThemeArgs,
}

/// What a send needs, checked before anything is recorded.
pub(super) struct Prepared {
    pub(super) rendered: Arc<render::RenderedEdition>,
    pub(super) sender: Sender,
    pub(super) store: Store,
    pub(super) list: crate::store::List,
    pub(super) audience: i64,
    pub(super) keys: Keys,
    pub(super) default_subject: String,
    /// The campaign counts clicks (the edition's or the list's `track_clicks`).
    pub(super) track_clicks: bool,
}

/// Renders the edition (refusing lint errors), finds the list and its audience, and checks
/// the secret and the DKIM key: every input mistake stops the send before a campaign exists.
async fn prepare(ctx: &Context, args: &SendArgs) -> anyhow::Result<Prepared> {
    let store = ctx.store().await?;
    prepare_edition(
        ctx,
        store,
        &args.edition,
        &args.list,
        args.theme.templates.as_deref(),
    )
    .await
}

/// [`prepare`] for an edition folder and a list name (a worker's, from the campaign).
pub(super) async fn prepare_edition(
    ctx: &Context,
    store: Store,
    edition_dir: &std::path::Path,
    list_name: &str,
    templates: Option<&std::path::Path>,
) -> anyhow::Result<Prepared> {
    let templates = templates_dir(ctx, templates)?;
    let (edition, _, rendered) = super::compose::load_and_render(
        edition_dir,
        &templates,
        &identity(ctx),
        archive_publish(ctx),
        None,
    )?;
    if rendered.lint.errors() > 0 {
        return Err(UsageError(format!(
            "{} does not compose cleanly ({} lint error(s)); run `bulletin compose {}` to see them",
            edition_dir.display(),
            rendered.lint.errors(),
            edition_dir.display()
        ))
        .into());
    }
    let sender = Sender::from_config(&ctx.config)?;
    let list = store.list_named(list_name).await?;
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
    // A time that cannot be used is refused before the edition is even rendered.
    let when = match &args.at {
        Some(at) => Some(schedule_time(at, args.tz.as_deref())?),
        None => None,
    };
    let p = prepare(ctx, &args).await?;
    if let Some(when) = when {
        return schedule(ctx, &args, &p, &when).await;
    }
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

/// A `--at` time, checked: (UTC instant, the zone to show it in).
pub(crate) struct ScheduleTime {
    at: jiff::Timestamp,
    zone: String,
}

/// Parses `--at` (with `--tz`): RFC 3339 with an offset, or a civil time in an IANA zone.
/// A time that is not in the future is refused.
fn schedule_time(at: &str, tz: Option<&str>) -> Result<ScheduleTime, UsageError> {
    let bad = |why: String| {
        UsageError(format!(
            "--at {at}: {why}; write RFC 3339 with an offset (--at 2026-12-05T09:00+01:00) \
             or a local time with a zone (--at 2026-12-05T09:00 --tz Europe/Paris)"
        ))
    };
    let (instant, zone) = match tz {
        Some(name) => {
            let zone = jiff::tz::TimeZone::get(name).map_err(|e| {
                UsageError(format!(
                    "--tz {name}: not a known time zone ({e}); use an IANA name such as Europe/Paris or America/New_York"
                ))
            })?;
            // A civil time is read in the zone; one that carries its own offset is taken as
            // that instant, and the zone only says how to show it.
            let instant = match at.parse::<jiff::civil::DateTime>() {
                Ok(civil) => civil
                    .to_zoned(zone)
                    .map_err(|e| bad(e.to_string()))?
                    .timestamp(),
                Err(_) => at
                    .parse::<jiff::Timestamp>()
                    .map_err(|e| bad(e.to_string()))?,
            };
            (instant, name.to_string())
        }
        None => {
            let instant = at.parse::<jiff::Timestamp>().map_err(|e| {
                bad(if at.parse::<jiff::civil::DateTime>().is_ok() {
                    "no offset and no --tz, so the time is ambiguous".to_string()
                } else {
                    e.to_string()
                })
            })?;
            // The offset as written (`+01:00`, `Z`), for listings.
            let offset = at
                .rfind(['+', '-', 'Z', 'z'])
                .filter(|i| *i > 10)
                .map_or("UTC", |i| &at[i..]);
            (instant, offset.to_string())
        }
    };
    if instant <= jiff::Timestamp::now() {
        return Err(UsageError(format!(
            "--at {at} is in the past ({} UTC); give a time to come, or send now without --at",
            instant.strftime("%Y-%m-%d %H:%M:%S")
        )));
    }
    Ok(ScheduleTime { at: instant, zone })
}

/// How listings show a schedule: in UTC and in the zone it was given in.
pub(crate) fn describe_schedule(at: &str, zone: Option<&str>) -> String {
    let Ok(instant) = at.parse::<jiff::Timestamp>() else {
        return at.to_string();
    };
    // Seconds only when the time has them (a test's "in 2 s"); people schedule in minutes.
    let clock = if instant.as_second() % 60 == 0 {
        "%Y-%m-%d %H:%M"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let utc = format!("{} UTC", instant.strftime(clock));
    let local = match zone {
        Some(name) if name != "UTC" && name != "Z" && name != "z" => {
            let tz = jiff::tz::TimeZone::get(name)
                .ok()
                .or_else(|| parse_offset(name).map(jiff::tz::TimeZone::fixed));
            tz.map(|tz| format!(" ({} {name})", instant.to_zoned(tz).strftime(clock)))
        }
        _ => None,
    };
    format!("{utc}{}", local.unwrap_or_default())
}

/// `+01:00` or `-0530` as an offset.
fn parse_offset(text: &str) -> Option<jiff::tz::Offset> {
    let sign = match text.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// `send --at`: everything `send` checks was checked by `prepare`; records the campaign as
/// scheduled and sends nothing.
async fn schedule(
    ctx: &Context,
    args: &SendArgs,
    p: &Prepared,
    when: &ScheduleTime,
) -> anyhow::Result<Outcome> {
    let settings = Settings::from_config(&ctx.config, args.concurrency, args.rate);
    let path = edition_path(ctx, &args.edition);
    let at = crate::store::timestamp(
        time::OffsetDateTime::from_unix_timestamp_nanos(when.at.as_nanosecond())
            .context("the --at time is out of range")?,
    );
    let campaign = p
        .store
        .schedule_campaign(
            &p.list,
            &crate::store::NewCampaign {
                slug: &p.rendered.slug,
                content_hash: &p.rendered.content_hash,
                subject: &p.default_subject,
                edition_path: Some(&path),
                caps: caps_of(&settings),
            },
            &crate::store::Scheduled {
                at: at.clone(),
                zone: when.zone.clone(),
            },
        )
        .await?;
    let shown = describe_schedule(&at, Some(&when.zone));
    if ctx.json {
        ctx.print_json(
            &serde_json::json!({ "campaign": campaign.id, "scheduled_at": at, "zone": when.zone }),
        )?;
    } else if !ctx.quiet {
        let _ = outln!(
            "campaign #{} scheduled for {shown}: {} subscriber(s) of {} now; a `bulletin worker` starts it then \
             (`bulletin campaigns cancel {}` to call it off)",
            campaign.id,
            p.audience,
            p.list.name,
            campaign.id
        );
    }
    p.store.clone().close().await;
    Ok(Outcome::Success)
}

/// The campaign caps a new campaign records: `[smtp] rate`/`hourly_cap`, `--rate` first.
pub(crate) fn caps_of(settings: &Settings) -> crate::store::Caps {
    crate::store::Caps {
        rate: settings.rate.max(0.0),
        hourly_cap: i64::from(settings.hourly_cap),
    }
}

/// The stricter of two limits where 0 means none.
pub(crate) fn stricter<T: PartialOrd + Default + Copy>(a: T, b: T) -> T {
    let none = T::default();
    match (a > none, b > none) {
        (true, true) => {
            if a < b {
                a
            } else {
                b
            }
        }
        (true, false) => a,
        _ => b,
    }
}

/// Where the edition is, as recorded for workers: relative to the project folder when inside
/// it (every worker host runs in a copy of the same project folder), else absolute.
fn edition_path(ctx: &Context, edition: &std::path::Path) -> String {
    let full = std::fs::canonicalize(edition).unwrap_or_else(|_| edition.to_path_buf());
    let project = ctx
        .config
        .source
        .as_ref()
        .and_then(|f| f.parent())
        .and_then(|d| std::fs::canonicalize(d).ok());
    match project.as_ref().and_then(|d| full.strip_prefix(d).ok()) {
        Some(relative) => relative.display().to_string(),
        None => full.display().to_string(),
    }
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
    let path = edition_path(ctx, &args.edition);
    let key = CampaignKey {
        slug: &p.rendered.slug,
        content_hash: &p.rendered.content_hash,
        subject: &p.default_subject,
        edition_path: Some(&path),
        caps: caps_of(settings),
    };
    let options = BeginOptions {
        retry_failed: args.retry_failed,
        skip_uncertain: args.skip_uncertain,
        lease_ttl: settings.lease_ttl,
        start_now: args.now,
    };
    let begun = delivery::begin(&p.store, relay.as_ref(), &p.list, key, options).await?;
    // Resumed: the campaign's own caps hold too (the stricter wins); `send` is its only
    // sender, so it paces them alone.
    let mut settings = settings.clone();
    settings.rate = stricter(settings.rate, begun.campaign.rate);
    settings.hourly_cap = stricter(
        settings.hourly_cap,
        u32::try_from(begun.campaign.hourly_cap).unwrap_or(u32::MAX),
    );
    let settings = &settings;
    tell_begun(ctx, &begun, &p.list, relay.as_ref(), args.skip_uncertain);
    let personaliser = personaliser_for(ctx, p, begun.campaign.id, begun.created.is_some()).await?;
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
            shared_caps: None,
            worker_cap: None,
        },
        &mut progress,
    )
    .await;
    progress.finish();
    Ok((begun.campaign, result?))
}

/// The personaliser of campaign `campaign_id` (`created` now, or resumed): click counting as
/// the campaign began, DKIM and bounce return paths as configured.
pub(super) async fn personaliser_for(
    ctx: &Context,
    p: &Prepared,
    campaign_id: i64,
    created: bool,
) -> anyhow::Result<Personaliser> {
    let track_clicks = if created {
        p.track_clicks
    } else {
        // Resumed: as it began (its links are recorded or not), so that every message of a
        // campaign is alike; a changed setting applies to the next campaign.
        {
            let began_counting = p.store.counts_clicks(campaign_id).await?;
            if began_counting != p.track_clicks {
                ctx.info(format!(
                    "campaign #{} began {} clicks and goes on that way; the changed setting applies to the next campaign",
                    campaign_id,
                    if began_counting { "counting" } else { "without counting" }
                ));
            }
            began_counting
        }
    };
    let rendered = if track_clicks {
        let public_url = &ctx.config.list.public_url;
        let tracked =
            crate::clicks::track(&p.store, &p.keys, campaign_id, &p.rendered, public_url).await?;
        ctx.info(format!(
            "counting clicks on {} link(s) through {}/c/ (per link, not per person)",
            tracked.links,
            public_url.trim_end_matches('/')
        ));
        Arc::new(tracked.edition)
    } else {
        Arc::clone(&p.rendered)
    };
    campaign_personaliser(
        ctx,
        rendered,
        p.sender.clone(),
        p.keys.clone(),
        (p.list.id, campaign_id),
    )
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
pub(super) fn stop_on_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
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
