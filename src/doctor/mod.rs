//! `bulletin doctor`: is this project ready for its first send? Each check looks at one part
//! of the sending setup from outside, as a receiving mail server or a subscriber's browser
//! would, and returns a [`Finding`]: ok, a warning, a problem, or skipped with the reason,
//! with the evidence (the record found) and, for anything not ok, the concrete fix computed
//! from the configuration (the exact record to publish, the key to set).
//!
//! - `secret`: the token secret that signs unsubscribe links is set.
//! - `relay`, `relay-tls`, `relay-smtputf8`, `relay-size`: the relay of `[smtp]` is reached
//!   the way `send` reaches it (the same [`SmtpRelay`], credentials included), and its EHLO
//!   reply is read.
//! - `spf`: the envelope domain's SPF record authorises the relay's address ([`spf`]).
//! - `dkim`: the key at `selector._domainkey.domain` is the public half of `[dkim] key_file`.
//! - `dmarc`: the From domain has a DMARC record and DKIM or SPF aligns with From.
//! - `bounce-domain`: the `[bounces]` domain receives mail (an MX, or the relay's address).
//! - `public-url`, `healthz`: `public_url` is HTTPS and `/healthz` under it answers 200.
//!
//! DNS goes through hickory-resolver ([`dns`]) with bounded time: a dead name server is one
//! finding, never a hang.

pub mod dns;
pub mod http;
pub mod records;
pub mod spf;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::delivery::{Session as _, SmtpRelay, SmtpTimeouts, Stage, Transport as _};
use crate::mail::Mailbox;
use dns::Dns;
use spf::SpfResult;

/// What stops `doctor` from running its checks at all (each check's own trouble is a
/// finding instead).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// The system's resolver configuration could not be read.
    #[error(
        "cannot set up DNS from /etc/resolv.conf ({0}); name a name server with --nameserver IP:PORT"
    )]
    Resolver(String),
    /// `--ca-file` is unusable.
    #[error(
        "--ca-file {path}: {why}; give a PEM file with the certificate of the CA that signed public_url's certificate"
    )]
    CaFile {
        /// The file given.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// rustls refused its own settings (does not happen with the built-in provider).
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The checks ran and found problems: the report says which.
    #[error(
        "{0} problem(s) found; fix them before the first send (each is listed above with its fix)"
    )]
    Problems(usize),
}

impl DoctorError {
    /// Whether the operator's input is at fault (exit code 2) rather than the world (1).
    pub fn is_input_error(&self) -> bool {
        matches!(self, Self::CaFile { .. })
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Could not be checked, for the reason given.
    Skipped,
    /// Works, but not as well as it should, or doctor cannot be sure.
    Warning,
    /// Will cost deliveries or break unsubscribing: fix before sending.
    Problem,
}

impl Status {
    /// The word printed in the report.
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Skipped => "skipped",
            Self::Warning => "warning",
            Self::Problem => "problem",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Which check: `spf`, `dkim`, `relay-size`, ...
    pub check: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found, in a sentence.
    pub summary: String,
    /// The record or reply it is based on, as found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// What to do, for anything not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn new(check: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Self {
            check,
            status,
            summary: summary.into(),
            evidence: None,
            fix: None,
        }
    }

    fn evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = Some(evidence.into());
        self
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which resolver answered the DNS questions.
    pub resolver: String,
    /// The findings.
    pub findings: Vec<Finding>,
    /// How many findings are problems.
    pub problems: usize,
    /// How many are warnings.
    pub warnings: usize,
}

/// What the checks need besides the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ask this name server instead of the system's resolvers.
    pub nameserver: Option<SocketAddr>,
    /// The relay's public sending addresses, when the relay itself is on a private address
    /// (SPF is judged on these instead).
    pub egress: Vec<IpAddr>,
    /// Trust only this CA for `public_url` (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The size in bytes the relay's SIZE must allow.
    pub message_size: u64,
    /// Where `message_size` comes from, for the report.
    pub message_size_source: String,
    /// Time for one DNS attempt; a lookup gets three of these in all.
    pub dns_timeout: Duration,
    /// Time for the relay's connection and each of its replies, and for `/healthz`.
    pub network_timeout: Duration,
}

/// A typical newsletter with its pictures hosted (as bulletin does) is well under this; the
/// relay's SIZE is compared with it when no edition is named.
pub const TYPICAL_MESSAGE_SIZE: u64 = 1024 * 1024;

/// Runs every check.
pub async fn run(config: &Config, options: &Options) -> Result<Report, DoctorError> {
    let dns = dns::Resolver::new(options.nameserver, options.dns_timeout)?;
    let tls = http::tls_config(options.ca_file.as_deref())?;
    let mut findings = vec![secret(config)];

    let from = Mailbox::parse(&config.list.from).map(|m| m.address.domain().to_ascii_lowercase());
    let envelope = config
        .bounces
        .as_ref()
        .map(|b| b.domain.to_ascii_lowercase())
        .or_else(|| from.clone());

    let relay = relay(config, options, &mut findings).await;
    let relay_ips = match &relay {
        Some(host) => relay_addresses(&dns, host).await,
        None => Vec::new(),
    };

    match (&envelope, &from) {
        (Some(envelope), Some(from)) => {
            findings.push(spf_finding(&dns, envelope, &relay_ips, &options.egress).await);
            findings.push(dkim_finding(&dns, config).await);
            findings.push(dmarc_finding(&dns, config, from, envelope).await);
        }
        _ => findings.push(
            Finding::new(
                "from",
                Status::Problem,
                format!("[list] from `{}` is not a usable address, so SPF, DKIM and DMARC cannot be checked", config.list.from),
            )
            .fix("set [list] from = \"Name <news@your-domain.example>\""),
        ),
    }
    findings.push(bounce_finding(&dns, config, relay.as_deref(), &relay_ips).await);
    public_url(config, tls, options.network_timeout, &mut findings).await;

    let count = |s| findings.iter().filter(|f| f.status == s).count();
    Ok(Report {
        resolver: dns.describe(),
        problems: count(Status::Problem),
        warnings: count(Status::Warning),
        findings,
    })
}

/// A check that could not be made because a DNS question went unanswered.
fn unanswered(check: &'static str, what: String, e: dns::DnsFailure) -> Finding {
    Finding::new(check, Status::Problem, what)
        .evidence(e.0)
        .fix("check that the name server answers (or pass --nameserver IP:PORT)")
}

fn secret(config: &Config) -> Finding {
    match config.token_secret() {
        Ok(Some(_)) => Finding::new(
            "secret",
            Status::Ok,
            "the token secret that signs unsubscribe links is set",
        ),
        Ok(None) => Finding::new(
            "secret",
            Status::Problem,
            "no token secret: `send` refuses to run and `serve` cannot check unsubscribe links",
        )
        .fix(
            "make one with `openssl rand -hex 32 > secret.key; chmod 600 secret.key` and set \
             [server] secret_file = \"secret.key\" (or the environment variable BULLETIN_SECRET)",
        ),
        // The message names the file and the problem, never the secret.
        Err(e) => Finding::new("secret", Status::Problem, e.to_string())
            .fix("write the secret into that file, e.g. `openssl rand -hex 32 > FILE`"),
    }
}

/// The relay's host when it could be named (even if unreachable), after the relay findings.
async fn relay(config: &Config, options: &Options, findings: &mut Vec<Finding>) -> Option<String> {
    let credentials = match config.smtp_credentials() {
        Ok(c) => c,
        Err(e) => {
            findings.push(
                Finding::new("relay", Status::Problem, e.to_string())
                    .fix("set BULLETIN_SMTP_PASSWORD or [smtp] password_file"),
            );
            skip_relay_details(findings, "the relay's credentials are incomplete");
            return None;
        }
    };
    let user = credentials.as_ref().map(|(u, _)| u.clone());
    let relay = match SmtpRelay::from_url(&config.smtp.url, credentials) {
        Ok(r) => r,
        Err(e) => {
            findings
                .push(Finding::new("relay", Status::Problem, e.to_string()).fix(
                    "set [smtp] url = \"smtp://HOST:587?tls=required\" (or smtps://HOST:465)",
                ));
            skip_relay_details(findings, "[smtp] url is not usable");
            return None;
        }
    };
    // The configured limits, but never longer than doctor's own: a relay that does not
    // answer is a finding, not a five-minute wait.
    let configured = SmtpTimeouts::from_config(config);
    let limit = options.network_timeout;
    let relay = relay.with_timeouts(SmtpTimeouts {
        connect: configured.connect.min(limit),
        greeting: configured.greeting.min(limit),
        mail: configured.mail.min(limit),
        ..configured
    });
    let host = relay.host().to_string();
    let session = match relay.open().await {
        Ok(s) => s,
        Err(e) if e.stage == Stage::Auth => {
            findings.push(
                Finding::new(
                    "relay",
                    Status::Problem,
                    format!("{} refused our credentials", relay.describe()),
                )
                .evidence(e.problem.to_string())
                .fix(format!(
                    "check [smtp] username (`{}`) and the password in BULLETIN_SMTP_PASSWORD or \
                     [smtp] password_file with the relay's provider; some relays want an \
                     application password or the submission port 587",
                    user.as_deref().unwrap_or_default()
                )),
            );
            skip_relay_details(findings, "the relay refused our credentials");
            return Some(host);
        }
        Err(e) => {
            findings.push(
                Finding::new(
                    "relay",
                    Status::Problem,
                    format!("cannot talk to {}", relay.describe()),
                )
                .evidence(e.to_string())
                .fix("check [smtp] url (host, port, smtp:// or smtps://) and that the relay runs and lets this machine connect"),
            );
            skip_relay_details(findings, "the relay could not be reached");
            return Some(host);
        }
    };
    let lines = session.ehlo_lines().to_vec();
    session.close().await;
    findings.push(
        Finding::new(
            "relay",
            Status::Ok,
            match &user {
                Some(u) => format!("{} accepted the credentials of `{u}`", relay.describe()),
                None => format!(
                    "{} answered (no credentials configured; it must authorise this machine by its address)",
                    relay.describe()
                ),
            },
        )
        .evidence(format!("EHLO: {}", lines.join(", "))),
    );
    findings.extend(ehlo_findings(&relay, &lines, options));
    Some(host)
}

fn skip_relay_details(findings: &mut Vec<Finding>, why: &str) {
    for check in ["relay-tls", "relay-smtputf8", "relay-size"] {
        findings.push(Finding::new(check, Status::Skipped, why.to_string()));
    }
}

/// What the EHLO reply says about TLS, SMTPUTF8 and SIZE.
fn ehlo_findings(relay: &SmtpRelay, lines: &[String], options: &Options) -> Vec<Finding> {
    let keyword = |k: &str| {
        lines.iter().find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(k))
        })
    };
    let loopback = is_loopback_host(relay.host());
    let tls = if relay.encrypted() {
        Finding::new(
            "relay-tls",
            Status::Ok,
            "the conversation with the relay is encrypted (TLS)",
        )
    } else if loopback {
        match keyword("STARTTLS") {
            Some(_) => Finding::new(
                "relay-tls",
                Status::Ok,
                "STARTTLS is announced; bulletin does not use it to a relay on this machine",
            ),
            None => Finding::new(
                "relay-tls",
                Status::Warning,
                "the relay does not announce STARTTLS: fine on this machine, never across a network",
            )
            .fix("if this relay forwards to the Internet, make sure it uses TLS onwards"),
        }
    } else {
        Finding::new(
            "relay-tls",
            Status::Problem,
            "[smtp] url turns TLS off (?tls=none) to a relay on another machine: the password and every message cross the network in clear text",
        )
        .fix("remove ?tls=none from [smtp] url (or use smtps://HOST:465)")
    };
    let utf8 = match keyword("SMTPUTF8") {
        Some(_) => Finding::new("relay-smtputf8", Status::Ok, "SMTPUTF8 is announced: addresses with non-ASCII local parts can be sent to"),
        None => Finding::new(
            "relay-smtputf8",
            Status::Warning,
            "the relay does not announce SMTPUTF8 (RFC 6531): subscribers whose address has a non-ASCII local part cannot be sent to (`send` counts and skips them)",
        )
        .fix("ask the relay's provider for SMTPUTF8, or accept that those subscribers are skipped"),
    };
    let need = options.message_size;
    let size = match keyword("SIZE").map(|l| l.split_whitespace().nth(1)) {
        None => Finding::new(
            "relay-size",
            Status::Warning,
            "the relay does not announce SIZE, so its limit is unknown until a message is refused",
        )
        .fix(format!("ask the relay's provider for its message size limit; {} needs {need} bytes", options.message_size_source)),
        Some(value) => match value.map(str::parse::<u64>) {
            // RFC 1870: no number, or 0, means no fixed limit.
            None | Some(Ok(0)) => Finding::new(
                "relay-size",
                Status::Ok,
                "the relay announces SIZE without a fixed limit",
            ),
            Some(Ok(limit)) if limit >= need => Finding::new(
                "relay-size",
                Status::Ok,
                format!("the relay takes messages up to {limit} bytes; {} is {need} bytes", options.message_size_source),
            ),
            Some(Ok(limit)) => Finding::new(
                "relay-size",
                Status::Problem,
                format!("the relay takes messages up to {limit} bytes, but {} is {need} bytes", options.message_size_source),
            )
            .evidence(format!("SIZE {limit}"))
            .fix("make the edition smaller (fewer or smaller pictures and documents; they are linked, but each language variant adds its text), or ask the relay's provider to raise its limit"),
            Some(Err(_)) => Finding::new(
                "relay-size",
                Status::Warning,
                format!("the relay's SIZE parameter `{}` is not a number", value.unwrap_or_default()),
            ),
        },
    };
    vec![tls, utf8, size]
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The relay's addresses: its literal address, or its name's A and AAAA records.
async fn relay_addresses(dns: &dyn Dns, host: &str) -> Vec<IpAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        return vec![ip];
    }
    if bare == "localhost" {
        return vec![IpAddr::from([127, 0, 0, 1])];
    }
    dns.ips(bare).await.unwrap_or_default()
}

/// Whether receivers on the Internet could see mail come from `ip`.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

fn spf_term(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("ip4:{a}"),
        IpAddr::V6(a) => format!("ip6:{a}"),
    }
}

async fn spf_finding(
    dns: &dyn Dns,
    envelope: &str,
    relay_ips: &[IpAddr],
    egress: &[IpAddr],
) -> Finding {
    // Addresses given with --egress-ip are the operator's word for what receivers see.
    let (addresses, judged) = if egress.is_empty() {
        let public = !relay_ips.is_empty() && relay_ips.iter().all(|ip| is_public(*ip));
        (relay_ips.to_vec(), public)
    } else {
        (egress.to_vec(), true)
    };
    let placeholder = "ip4:<the relay's public sending address>".to_string();
    let wanted: Vec<String> = if judged {
        addresses.iter().map(|ip| spf_term(*ip)).collect()
    } else {
        vec![placeholder]
    };
    let fresh = format!("v=spf1 {} -all", wanted.join(" "));
    let txt = match dns.txt(envelope).await {
        Ok(t) => t,
        Err(e) => {
            return unanswered(
                "spf",
                format!("cannot look up the SPF record of {envelope}"),
                e,
            );
        }
    };
    let found = spf::spf_records(&txt);
    let record = match found.as_slice() {
        [] => {
            return Finding::new(
                "spf",
                Status::Problem,
                format!("{envelope} (the envelope sender's domain) has no SPF record, so receivers cannot tell the relay may send for it"),
            )
            .fix(format!("publish {envelope}. TXT \"{fresh}\"{}", provider_hint(judged)));
        }
        [one] => (*one).clone(),
        _ => {
            return Finding::new(
                "spf",
                Status::Problem,
                format!("{envelope} publishes {} SPF records; receivers treat that as an error (permerror)", found.len()),
            )
            .evidence(found.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" | "))
            .fix("merge them into one TXT record starting v=spf1");
        }
    };
    if addresses.is_empty() {
        let status = match spf::parse(&record) {
            Ok(_) => Status::Warning,
            Err(_) => Status::Problem,
        };
        return Finding::new(
            "spf",
            status,
            format!("the relay's address is unknown (it could not be reached or resolved), so SPF of {envelope} was only read, not evaluated"),
        )
        .evidence(record)
        .fix("fix the relay first, or pass --egress-ip ADDRESS");
    }
    let mut failing = Vec::new();
    let mut reasons = Vec::new();
    for ip in &addresses {
        let result = spf::Evaluator::new(dns)
            .check_host(*ip, envelope.to_string())
            .await;
        match result {
            SpfResult::Pass(why) => reasons.push(format!("{ip} passes by {why}")),
            SpfResult::PermError(why) => {
                return Finding::new(
                    "spf",
                    Status::Problem,
                    format!("the SPF record of {envelope} is broken: {why}"),
                )
                .evidence(record)
                .fix(format!(
                    "correct the record; the simplest that works: {envelope}. TXT \"{fresh}\""
                ));
            }
            SpfResult::TempError(why) => {
                return Finding::new(
                    "spf",
                    Status::Problem,
                    format!("SPF of {envelope} could not be evaluated: a lookup failed ({why})"),
                )
                .evidence(record)
                .fix("check that every domain the record includes answers");
            }
            SpfResult::Unsupported(why) => {
                return Finding::new("spf", Status::Warning, why)
                    .evidence(record)
                    .fix("check the record with your provider's SPF tester");
            }
            SpfResult::None => {
                failing.push(*ip);
                reasons.push(format!("{ip}: no record"));
            }
            SpfResult::Fail(why) | SpfResult::SoftFail(why) | SpfResult::Neutral(why) => {
                failing.push(*ip);
                reasons.push(format!("{ip} is not authorised ({why})"));
            }
        }
    }
    if failing.is_empty() {
        let note = if judged {
            String::new()
        } else {
            " (judged on the relay's own address; receivers see its public sending address)"
                .to_string()
        };
        return Finding::new(
            "spf",
            Status::Ok,
            format!(
                "SPF of {envelope} authorises the relay: {}{note}",
                reasons.join("; ")
            ),
        )
        .evidence(record);
    }
    let mut fixed = record.clone();
    if judged {
        for ip in &failing {
            fixed = spf::with_term(&fixed, &spf_term(*ip));
        }
    } else {
        fixed = spf::with_term(&fixed, "ip4:<the relay's public sending address>");
    }
    let finding = Finding::new(
        "spf",
        if judged { Status::Problem } else { Status::Warning },
        if judged {
            format!("SPF of {envelope} does not authorise the relay: {}", reasons.join("; "))
        } else {
            format!(
                "the relay is on a private address ({}), which SPF does not authorise; receivers judge SPF on the relay's public sending address, which doctor cannot see from here: pass --egress-ip ADDRESS to check it",
                failing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )
        },
    )
    .evidence(record);
    finding.fix(format!(
        "publish {envelope}. TXT \"{fixed}\"{}",
        provider_hint(judged)
    ))
}

fn provider_hint(judged: bool) -> &'static str {
    if judged {
        ""
    } else {
        " (a hosted relay usually gives an include:, e.g. include:_spf.provider.example, instead of addresses)"
    }
}

async fn dkim_finding(dns: &dyn Dns, config: &Config) -> Finding {
    use base64::Engine as _;
    let Some(d) = &config.dkim else {
        return Finding::new(
            "dkim",
            Status::Warning,
            "no [dkim] section: messages go out unsigned, so DMARC rests on SPF alone and forwarding breaks it",
        )
        .fix("make a key with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem`, add [dkim] domain, selector and key_file = \"dkim.pem\", and run doctor again for the record to publish");
    };
    let signer = match crate::mail::dkim::Signer::load(&d.domain, &d.selector, &d.key_file) {
        Ok(s) => s,
        Err(e) => {
            return Finding::new("dkim", Status::Problem, e.to_string())
                .fix("point [dkim] key_file at the private key (PEM)");
        }
    };
    let (kind, ours) = signer.public_key();
    let wanted = format!(
        "v=DKIM1; k={kind}; p={}",
        base64::engine::general_purpose::STANDARD.encode(&ours)
    );
    let name = format!(
        "{}._domainkey.{}",
        d.selector,
        d.domain.trim_end_matches('.')
    );
    // A value over 255 characters must be split into strings; most DNS panels do it.
    let publish = format!(
        "publish {name}. TXT \"{wanted}\"{}",
        if wanted.len() > 255 {
            " (longer than 255 characters: as several quoted strings of one record, which DNS joins)"
        } else {
            ""
        }
    );
    let txt = match dns.txt(&name).await {
        Ok(t) => t,
        Err(e) => {
            return unanswered("dkim", format!("cannot look up the DKIM key at {name}"), e);
        }
    };
    let keys: Vec<&String> = txt
        .iter()
        .filter(|t| t.contains("p=") || t.trim_start().starts_with("v=DKIM1"))
        .collect();
    let record = match keys.as_slice() {
        [] => {
            return Finding::new(
                "dkim",
                Status::Problem,
                format!(
                    "no DKIM key is published at {name}: receivers cannot verify our signatures"
                ),
            )
            .fix(publish);
        }
        [one] => (*one).clone(),
        _ => {
            return Finding::new(
                "dkim",
                Status::Problem,
                format!(
                    "{name} holds {} key records; receivers may take any of them",
                    keys.len()
                ),
            )
            .evidence(
                keys.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
            )
            .fix(format!("keep one record: {publish}"));
        }
    };
    let published = match records::dkim_key(&record) {
        Ok(k) => k,
        Err(why) => {
            return Finding::new(
                "dkim",
                Status::Problem,
                format!("the key record at {name} is broken: {why}"),
            )
            .evidence(record)
            .fix(publish);
        }
    };
    if published.key.is_empty() {
        return Finding::new(
            "dkim",
            Status::Problem,
            format!("the key at {name} is revoked (empty p=): every signature fails"),
        )
        .evidence(record)
        .fix(format!(
            "{publish}, or choose a new [dkim] selector for the new key"
        ));
    }
    if published.kind != kind || !records::same_key(kind, &published.key, &ours) {
        return Finding::new(
            "dkim",
            Status::Problem,
            format!(
                "the key published at {name} is not the public half of {}: every signature fails",
                d.key_file.display()
            ),
        )
        .evidence(record)
        .fix(format!(
            "{publish} (or point [dkim] key_file at the key that record belongs to)"
        ));
    }
    if published.testing {
        return Finding::new(
            "dkim",
            Status::Warning,
            format!("the key at {name} matches, but t=y says the domain is testing DKIM: receivers treat signed mail as unsigned"),
        )
        .evidence(record)
        .fix(format!("remove t=y: {publish}"));
    }
    Finding::new(
        "dkim",
        Status::Ok,
        format!(
            "the key published at {name} matches {}",
            d.key_file.display()
        ),
    )
    .evidence(record)
}

async fn dmarc_finding(dns: &dyn Dns, config: &Config, from: &str, envelope: &str) -> Finding {
    let org = records::organisational(from);
    let mut names = vec![format!("_dmarc.{from}")];
    if org != from {
        names.push(format!("_dmarc.{org}"));
    }
    let start = format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{org}");
    let publish = format!(
        "publish _dmarc.{org}. TXT \"{start}\" (dmarc-reports@{org} must be a mailbox someone reads; \
         move to p=quarantine once the reports show only your own mail passing)"
    );
    let mut found = None;
    for name in &names {
        let txt = match dns.txt(name).await {
            Ok(t) => t,
            Err(e) => {
                return unanswered(
                    "dmarc",
                    format!("cannot look up the DMARC record at {name}"),
                    e,
                );
            }
        };
        let dmarc: Vec<String> = txt
            .into_iter()
            .filter(|t| t.trim_start().starts_with("v=DMARC1"))
            .collect();
        if !dmarc.is_empty() {
            found = Some((name.clone(), dmarc));
            break;
        }
    }
    let Some((name, dmarc)) = found else {
        return Finding::new(
            "dmarc",
            Status::Problem,
            format!(
                "no DMARC record at {}: Gmail and Yahoo require one of bulk senders",
                names.join(" or ")
            ),
        )
        .fix(publish);
    };
    if dmarc.len() > 1 {
        return Finding::new(
            "dmarc",
            Status::Problem,
            format!(
                "{name} holds {} DMARC records; receivers then ignore them all",
                dmarc.len()
            ),
        )
        .evidence(dmarc.join(" | "))
        .fix(format!("keep one: {publish}"));
    }
    let record = dmarc.into_iter().next().unwrap_or_default();
    let policy = match records::dmarc(&record) {
        Ok(p) => p,
        Err(why) => {
            return Finding::new(
                "dmarc",
                Status::Problem,
                format!("the DMARC record at {name} is broken: {why}"),
            )
            .evidence(record)
            .fix(publish);
        }
    };
    let dkim_domain = config.dkim.as_ref().map(|d| d.domain.to_ascii_lowercase());
    let dkim_aligned = dkim_domain
        .as_deref()
        .is_some_and(|d| records::aligned(d, from, policy.strict_dkim));
    let spf_aligned = records::aligned(envelope, from, policy.strict_spf);
    let mode = |strict: bool| if strict { "strict" } else { "relaxed" };
    let detail = format!(
        "DKIM d={} {} with From's {from} ({}), envelope {envelope} {} ({})",
        dkim_domain.as_deref().unwrap_or("(unsigned)"),
        if dkim_aligned {
            "aligns"
        } else {
            "does not align"
        },
        mode(policy.strict_dkim),
        if spf_aligned {
            "aligns"
        } else {
            "does not align"
        },
        mode(policy.strict_spf),
    );
    if !dkim_aligned && !spf_aligned {
        let mut fixes = vec![format!(
            "set [dkim] domain = \"{from}\" (and publish its key there)"
        )];
        if config.bounces.is_some() {
            fixes.push(format!(
                "or set [bounces] domain to {from} or a subdomain of {org}"
            ));
        }
        if policy.strict_dkim || policy.strict_spf {
            fixes.push("or relax the record's adkim=s/aspf=s to r".to_string());
        }
        return Finding::new(
            "dmarc",
            Status::Problem,
            format!("{name} (p={}) is there, but neither DKIM nor SPF aligns with From: {detail}; every message fails DMARC", policy.policy),
        )
        .evidence(record)
        .fix(fixes.join(", "));
    }
    let mut finding = Finding::new(
        "dmarc",
        Status::Ok,
        format!("{name} has p={}; {detail}", policy.policy),
    )
    .evidence(record);
    if !dkim_aligned {
        // SPF alone breaks on forwarding; DKIM survives it.
        finding.status = Status::Warning;
        finding = finding.fix(format!(
            "sign with an aligned DKIM domain: set [dkim] domain = \"{from}\" and publish its key"
        ));
    }
    finding
}

async fn bounce_finding(
    dns: &dyn Dns,
    config: &Config,
    relay: Option<&str>,
    relay_ips: &[IpAddr],
) -> Finding {
    let Some(b) = &config.bounces else {
        return Finding::new(
            "bounce-domain",
            Status::Skipped,
            "no [bounces] section: bounces go to the From address, and `bulletin bounces` has no return path to read",
        );
    };
    let domain = b.domain.to_ascii_lowercase();
    let exchange = relay
        .filter(|h| h.parse::<IpAddr>().is_err() && *h != "localhost")
        .map_or_else(
            || "<the host that receives your bounce mail>".to_string(),
            |h| format!("{h}."),
        );
    let fix = format!(
        "publish {domain}. MX 10 {exchange} and deliver {}+*@{domain} into the bounce mailbox",
        b.local_part
    );
    let failed = |e: dns::DnsFailure| {
        unanswered(
            "bounce-domain",
            format!("cannot look up where mail for {domain} goes"),
            e,
        )
    };
    let mx = match dns.mx(&domain).await {
        Ok(mx) => mx,
        Err(e) => return failed(e),
    };
    if !mx.is_empty() {
        let list: Vec<String> = mx.iter().map(|(p, h)| format!("MX {p} {h}")).collect();
        return Finding::new(
            "bounce-domain",
            Status::Ok,
            format!("{domain} receives mail: bounces come back"),
        )
        .evidence(list.join(", "));
    }
    let ips = match dns.ips(&domain).await {
        Ok(ips) => ips,
        Err(e) => return failed(e),
    };
    if ips.iter().any(|ip| relay_ips.contains(ip)) {
        return Finding::new(
            "bounce-domain",
            Status::Ok,
            format!("{domain} has no MX, but its address is the relay's (mail for it goes there, RFC 5321 5.1)"),
        )
        .evidence(ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
    }
    Finding::new(
        "bounce-domain",
        Status::Problem,
        format!("{domain} (the [bounces] domain) has no MX record and is not the relay's address: bounces have nowhere to go"),
    )
    .fix(fix)
}

async fn public_url(
    config: &Config,
    tls: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    limit: Duration,
    findings: &mut Vec<Finding>,
) {
    let url = config.list.public_url.trim_end_matches('/');
    let Some(target) = http::Target::parse(url) else {
        findings.push(
            Finding::new(
                "public-url",
                Status::Problem,
                format!("[list] public_url `{url}` is not a usable URL"),
            )
            .fix("set [list] public_url = \"https://news.example.org\""),
        );
        return;
    };
    findings.push(scheme_finding(url, &target));
    let health = format!("{url}/healthz");
    findings.push(match http::healthz(&target, tls, limit).await {
        Ok(200) => Finding::new("healthz", Status::Ok, format!("{health} answers 200")),
        Ok(code) => Finding::new(
            "healthz",
            Status::Problem,
            format!("{health} answers {code}, not 200: unsubscribe and confirm links will not work"),
        )
        .fix("check that `bulletin serve` runs behind that address and reaches its database (its /healthz answers 503 when it cannot)"),
        Err(why) => Finding::new(
            "healthz",
            Status::Problem,
            format!("{health} cannot be reached: {why}"),
        )
        .fix(if why.contains("TLS") || why.contains("certificate") {
            "give the proxy a certificate that browsers trust (Let's Encrypt), or pass --ca-file CA.pem when it is signed by a private CA".to_string()
        } else {
            "start `bulletin serve` (e.g. as a systemd service) and make public_url reach it".to_string()
        }),
    });
}

/// Whether `public_url` is HTTPS: one-click unsubscribe (RFC 8058) is ignored without it.
fn scheme_finding(url: &str, target: &http::Target) -> Finding {
    let https_fix = format!(
        "serve `bulletin serve` behind a TLS reverse proxy (Caddy, nginx) and set [list] public_url = \"https://{}\"",
        if target.is_loopback() {
            "news.your-domain.example"
        } else {
            target.host.as_str()
        }
    );
    if target.https {
        Finding::new("public-url", Status::Ok, format!("{url} is HTTPS"))
    } else if target.is_loopback() {
        Finding::new(
            "public-url",
            Status::Warning,
            format!("{url} is this machine over plain HTTP: fine for trying bulletin, but subscribers cannot reach it and one-click unsubscribe (RFC 8058) needs HTTPS"),
        )
        .fix(https_fix)
    } else {
        Finding::new(
            "public-url",
            Status::Problem,
            format!("{url} is plain HTTP: mailbox providers ignore one-click unsubscribe (RFC 8058) without HTTPS, and the links carry tokens in clear"),
        )
        .fix(https_fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(size: u64) -> Options {
        Options {
            nameserver: None,
            egress: Vec::new(),
            ca_file: None,
            message_size: size,
            message_size_source: "the test message".into(),
            dns_timeout: Duration::from_secs(1),
            network_timeout: Duration::from_secs(1),
        }
    }

    fn ehlo(url: &str, lines: &[&str], size: u64) -> Vec<(&'static str, Status)> {
        let relay = SmtpRelay::from_url(url, None).expect("valid relay URL");
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        ehlo_findings(&relay, &lines, &options(size))
            .into_iter()
            .map(|f| (f.check, f.status))
            .collect()
    }

    #[test]
    fn size_tls_and_smtputf8_from_the_ehlo_reply() {
        use Status::*;
        let local = "smtp://127.0.0.1:2525";
        assert_eq!(
            ehlo(local, &["SIZE 2000", "STARTTLS", "SMTPUTF8"], 1000),
            [
                ("relay-tls", Ok),
                ("relay-smtputf8", Ok),
                ("relay-size", Ok)
            ]
        );
        // RFC 1870: SIZE alone or SIZE 0 is no fixed limit; lowercase keywords count.
        assert_eq!(ehlo(local, &["size"], 10)[2], ("relay-size", Ok));
        assert_eq!(ehlo(local, &["SIZE 0"], 10)[2], ("relay-size", Ok));
        assert_eq!(ehlo(local, &["SIZE 999"], 1000)[2], ("relay-size", Problem));
        assert_eq!(ehlo(local, &[], 1000)[2], ("relay-size", Warning));
        assert_eq!(
            ehlo(local, &["SIZE many"], 1000)[2],
            ("relay-size", Warning)
        );
        // A keyword only counts as the first word of its line.
        assert_eq!(
            ehlo(local, &["X-NOT-SMTPUTF8"], 1)[1],
            ("relay-smtputf8", Warning)
        );
        assert_eq!(ehlo(local, &[], 1)[0], ("relay-tls", Warning));
        // STARTTLS required to a remote relay is encryption; turned off, a problem.
        assert_eq!(
            ehlo("smtp://relay.example:587", &[], 1)[0],
            ("relay-tls", Ok)
        );
        assert_eq!(
            ehlo("smtp://relay.example:587?tls=none", &["STARTTLS"], 1)[0],
            ("relay-tls", Problem)
        );
    }

    #[test]
    fn public_url_scheme() {
        let check = |url: &str| {
            let target = http::Target::parse(url).expect("valid URL");
            scheme_finding(url, &target)
        };
        assert_eq!(check("https://news.example.org").status, Status::Ok);
        assert_eq!(check("http://127.0.0.1:8080").status, Status::Warning);
        let plain = check("http://news.example.org");
        assert_eq!(plain.status, Status::Problem);
        assert!(
            plain
                .fix
                .is_some_and(|f| f.contains("public_url = \"https://news.example.org\"")),
        );
    }

    #[test]
    fn only_public_addresses_are_judged() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(!is_public(private.parse().expect("address")), "{private}");
        }
        for public in ["192.0.2.1", "203.0.113.7", "2001:db8::1"] {
            assert!(is_public(public.parse().expect("address")), "{public}");
        }
    }
}
