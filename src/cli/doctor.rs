//! `bulletin doctor`: check the sending setup before the first send, and say how to fix
//! what is wrong.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::compose::{Out, Publish, ThemeArgs, identity, load_and_render, templates_dir};
use super::output::outln;
use super::{Context, Outcome};
use crate::doctor::{self, DoctorError, Options, Report};
use crate::mail::{RecipientData, Sender};
use crate::token::Keys;

/// Where to look and what to compare with.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Ask this name server (IP:PORT, over UDP and TCP) instead of the system's resolvers
    #[arg(long, value_name = "IP:PORT", env = "BULLETIN_DOCTOR_NAMESERVER")]
    nameserver: Option<SocketAddr>,
    /// The relay's public sending address, when [smtp] url names a relay on this machine or a
    /// private network (SPF is judged on the address receivers see); repeat for several
    #[arg(long = "egress-ip", value_name = "ADDRESS")]
    egress_ip: Vec<IpAddr>,
    /// Trust only the CA certificate(s) in this PEM file for public_url (a private CA)
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Compare the relay's SIZE with the largest message of this edition, built as `send`
    /// builds it (every language, signed, with its headers)
    #[arg(long, value_name = "EDITION_DIR", value_hint = clap::ValueHint::DirPath, conflicts_with = "message_size")]
    edition: Option<PathBuf>,
    /// The size in bytes the relay must accept [default: 1048576, a typical newsletter]
    #[arg(long, value_name = "BYTES")]
    message_size: Option<u64>,
    /// Seconds to wait for each DNS attempt, the relay's replies and /healthz
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
    #[command(flatten)]
    theme: ThemeArgs,
}

/// Runs the checks: exit 0 when nothing is a problem (warnings alone included), 1 otherwise.
pub(crate) async fn run(ctx: &Context, args: DoctorArgs) -> anyhow::Result<Outcome> {
    let (message_size, message_size_source) = match (&args.edition, args.message_size) {
        (Some(dir), _) => {
            let (size, language) = largest_message(ctx, dir, args.theme.templates.as_deref())?;
            (
                size,
                format!(
                    "the largest message of {} (its `{language}` variant)",
                    dir.display()
                ),
            )
        }
        (None, Some(n)) => (n, "the size given with --message-size".to_string()),
        (None, None) => (
            doctor::TYPICAL_MESSAGE_SIZE,
            "a typical newsletter message".to_string(),
        ),
    };
    let options = Options {
        nameserver: args.nameserver,
        egress: args.egress_ip,
        ca_file: args.ca_file,
        message_size,
        message_size_source,
        dns_timeout: Duration::from_secs(args.timeout),
        network_timeout: Duration::from_secs(args.timeout * 2),
    };
    let report = doctor::run(&ctx.config, &options).await?;
    if ctx.json {
        ctx.print_json(&report)?;
    } else {
        print_report(&report)?;
    }
    ctx.info(format!(
        "{} check(s): {} problem(s), {} warning(s); DNS answered by {}",
        report.findings.len(),
        report.problems,
        report.warnings,
        report.resolver
    ));
    if report.problems > 0 {
        return Err(DoctorError::Problems(report.problems).into());
    }
    Ok(Outcome::Success)
}

/// One line per check (status, check, what was found), then the evidence and the fix.
fn print_report(report: &Report) -> anyhow::Result<()> {
    for f in &report.findings {
        let word = f.status.word();
        outln!("{word:<8} {:<15} {}", f.check, f.summary)?;
        if let Some(e) = &f.evidence {
            outln!("{:<24} found: {e}", "")?;
        }
        if let Some(fix) = &f.fix {
            outln!("{:<24} fix:   {fix}", "")?;
        }
    }
    Ok(())
}

/// The size of the largest message `send` would build from `edition` (one per language, for a
/// sample recipient, DKIM-signed and with its return path as configured), and its language.
/// The pictures and documents are published into a temporary folder, removed afterwards:
/// their names, and so the links in the message, are the ones `send` publishes.
fn largest_message(
    ctx: &Context,
    edition: &Path,
    templates: Option<&Path>,
) -> anyhow::Result<(u64, String)> {
    let templates = templates_dir(ctx, templates)?;
    let scratch = std::env::temp_dir().join(format!("bulletin-doctor-{}", std::process::id()));
    let rendered = load_and_render(
        edition,
        &templates,
        &identity(ctx),
        Publish {
            out: Out::Exactly(&scratch),
            base_url: ctx.config.assets.base_url.as_deref(),
        },
        None,
    );
    let _ = std::fs::remove_dir_all(&scratch);
    let (_, _, rendered) = rendered?;
    let sender = Sender::from_config(&ctx.config)?;
    // A stand-in key: the links' tokens have the same length whatever the secret.
    let keys = Keys::new(
        &crate::config::Secret::new(format!("doctor-size-{}", "x".repeat(32))),
        &[],
    )?;
    let languages: Vec<String> = rendered.variants.keys().cloned().collect();
    let personaliser =
        super::send::campaign_personaliser(ctx, Arc::new(rendered), sender, keys, (1, 1))?;
    let mut largest = (0, String::new());
    for language in languages {
        let built = personaliser.build(
            &RecipientData {
                subscriber_id: 1,
                delivery_id: 1,
                // A long address, so that the estimate errs on the large side.
                email: "a.rather.long.subscriber.name@subscribers.example.org",
                name: "A Rather Long Subscriber Name",
                language: Some(&language),
                attributes: "{}",
                token_nonce: "doctor-size-estimate",
            },
            time::OffsetDateTime::now_utc(),
        )?;
        let size = u64::try_from(built.bytes.len()).unwrap_or(u64::MAX);
        if size > largest.0 {
            largest = (size, language);
        }
    }
    Ok(largest)
}
