//! `bulletin doctor`: check the sending setup before the first send, and say how to fix
//! what is wrong.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::output::outln;
use super::{Context, Outcome};
use crate::doctor::{self, DoctorError, Options, Report};

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
    /// The size in bytes the relay must accept [default: 1048576, a typical newsletter]
    #[arg(long, value_name = "BYTES")]
    message_size: Option<u64>,
    /// Seconds to wait for each DNS attempt, the relay's replies and /healthz
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
}

/// Runs the checks: exit 0 when nothing is a problem (warnings alone included), 1 otherwise.
pub(crate) async fn run(ctx: &Context, args: DoctorArgs) -> anyhow::Result<Outcome> {
    let (message_size, message_size_source) = match args.message_size {
        Some(n) => (n, "the size given with --message-size".to_string()),
        None => (
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
