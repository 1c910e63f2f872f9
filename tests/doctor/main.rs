//! `bulletin doctor` (issue #14 item 8) against real parts: an authoritative DNS server
//! (Debian's NSD) on a loopback port serving a zone the test writes, a relay that wants a
//! password (aiosmtpd, `tests/support/auth_smtp.py`), an HTTPS server with a certificate of a
//! private CA (`openssl s_server`), and `bulletin serve` itself. One correct setup, then one
//! broken thing at a time: each must be named, with its fix, and exit with code 1.

mod parts;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bulletin_testkit::dkim::{KeyKind, generate_key, txt_record};
use bulletin_testkit::project::Project;
use bulletin_testkit::smtp::free_port;
use serde_json::Value;

use parts::{Https, Nsd, Relay, Serve};

const PASSWORD: &str = "relay-password-0123";

/// What a setup is made of; each test changes one thing of the correct one.
struct Setup {
    /// Lines of the zone `example.test` after its SOA and NS records.
    zone: Vec<String>,
    from: String,
    /// The password bulletin is configured with (the relay wants [`PASSWORD`]).
    password: String,
    secret: bool,
    /// The relay's SIZE.
    size: u64,
    /// The relay announces SMTPUTF8.
    smtputf8: bool,
    /// The relay announces STARTTLS.
    starttls: bool,
    /// `None`: the HTTPS server's URL.
    public_url: Option<String>,
    /// Extra arguments to `doctor`.
    args: Vec<String>,
    /// The kind of the project's DKIM key.
    key: KeyKind,
    /// `--nameserver` port instead of NSD's.
    nameserver: Option<u16>,
    /// `--ca-file` instead of the test CA.
    ca_file: Option<PathBuf>,
    /// What to publish at `news._domainkey` given the record of the project's key; `None`
    /// publishes nothing there.
    dkim: DkimRecord,
}

type DkimRecord = Box<dyn Fn(&str) -> Option<String>>;

/// A started setup: the project and the processes it talks to, all stopped when dropped.
struct World {
    project: Project,
    nsd: Nsd,
    _relay: Relay,
    https: Https,
    /// The record `openssl` derives from the project's key: what the fix must say.
    dkim_record: String,
    args: Vec<String>,
}

/// The record as several quoted strings of one TXT record, as DNS panels publish long keys.
fn quoted(record: &str) -> String {
    record
        .as_bytes()
        .chunks(200)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Setup {
    fn correct() -> Self {
        Self {
            zone: vec![
                // The envelope domain's record includes the one that names the relay.
                "bounces IN TXT \"v=spf1 include:_spf.example.test -all\"".into(),
                "_spf IN TXT \"v=spf1 ip4:192.0.2.10 ip4:127.0.0.1 -all\"".into(),
                "_dmarc IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc@example.test\"".into(),
                "bounces IN MX 10 mx.example.test.".into(),
                "mx IN A 192.0.2.25".into(),
                "@ IN TXT \"v=spf1 include:_spf.example.test -all\"".into(),
            ],
            from: "News <news@example.test>".into(),
            password: PASSWORD.into(),
            secret: true,
            size: 20 * 1024 * 1024,
            smtputf8: true,
            starttls: true,
            public_url: None,
            args: Vec::new(),
            key: KeyKind::RsaPkcs8,
            nameserver: None,
            ca_file: None,
            dkim: Box::new(|ours| Some(ours.to_string())),
        }
    }

    fn without(mut self, prefix: &str) -> Self {
        let before = self.zone.len();
        self.zone.retain(|l| !l.starts_with(prefix));
        assert!(
            self.zone.len() < before,
            "no zone line starts with {prefix}"
        );
        self
    }

    fn replace(self, prefix: &str, line: &str) -> Self {
        let mut s = self.without(prefix);
        s.zone.push(line.to_string());
        s
    }

    fn start(self) -> World {
        let project = Project::new();
        let dir = project.path();
        let key = project.path().join("dkim.pem");
        generate_key(&key, self.key);
        let dkim_record = txt_record(&key, self.key);
        let mut zone = self.zone.clone();
        if let Some(record) = (self.dkim)(&dkim_record) {
            zone.push(format!("news._domainkey IN TXT {}", quoted(&record)));
        }
        let nsd = Nsd::start(&dir.join("nsd"), "example.test", &zone);
        let https = Https::start(&dir.join("https"));
        let relay = Relay::start(
            &dir.join("relay"),
            "sender",
            PASSWORD,
            self.size,
            self.smtputf8,
            self.starttls.then_some(&https),
        );
        project.write("smtp.password", &self.password);
        project.write("secret.key", "doctor-test-secret-0123456789-abcdef\n");
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("https://127.0.0.1:{}", https.port));
        project.write(
            "bulletin.toml",
            format!(
                "[list]\nname = \"News\"\nid = \"news.example.test\"\nfrom = \"{}\"\npublic_url = \"{public_url}\"\n\n\
                 [smtp]\nurl = \"smtp://127.0.0.1:{}\"\nusername = \"sender\"\npassword_file = \"smtp.password\"\n\n\
                 [dkim]\ndomain = \"example.test\"\nselector = \"news\"\nkey_file = \"dkim.pem\"\n\n\
                 [bounces]\ndomain = \"bounces.example.test\"\n\n\
                 [server]\n{}",
                self.from,
                relay.port,
                if self.secret {
                    "secret_file = \"secret.key\"\n"
                } else {
                    ""
                },
            ),
        );
        let mut args = vec![
            "--nameserver".to_string(),
            format!("127.0.0.1:{}", self.nameserver.unwrap_or(nsd.port)),
            "--egress-ip".into(),
            "127.0.0.1".into(),
            "--ca-file".into(),
            self.ca_file
                .as_ref()
                .unwrap_or(&https.ca)
                .display()
                .to_string(),
            "--timeout".into(),
            "2".into(),
        ];
        args.extend(self.args);
        World {
            project,
            nsd,
            _relay: relay,
            https,
            dkim_record,
            args,
        }
    }
}

impl World {
    /// `doctor --json`: exit code, the report, stderr.
    fn doctor(&self) -> (i32, Value, String) {
        let out = self
            .project
            .cmd()
            .arg("--json")
            .arg("doctor")
            .args(&self.args)
            .output()
            .expect("bulletin runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "doctor --json printed no report ({e}):\n{stdout}\n{stderr}\nnsd: {}",
                self.nsd.log()
            )
        });
        (out.status.code().unwrap_or(-1), report, stderr)
    }

    /// The plain report.
    fn doctor_text(&self) -> (i32, String) {
        let out = self
            .project
            .cmd()
            .arg("doctor")
            .args(&self.args)
            .output()
            .expect("bulletin runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// The finding of `check`.
fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["check"] == check))
        .unwrap_or_else(|| panic!("no finding `{check}` in {report:#}"))
}

fn status(report: &Value, check: &str) -> String {
    finding(report, check)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn fix(report: &Value, check: &str) -> String {
    finding(report, check)["fix"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Only `check` is a problem, the run exits 1, and the fix says `expected`.
fn assert_only_problem(world: &World, check: &str, expected: &[&str]) -> Value {
    let (code, report, stderr) = world.doctor();
    assert_eq!(status(&report, check), "problem", "{report:#}");
    let problems: Vec<&str> = report["findings"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|f| f["status"] == "problem")
                .filter_map(|f| f["check"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(problems, vec![check], "{report:#}");
    assert_eq!(code, 1, "a problem exits 1; stderr: {stderr}");
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
    let fix = fix(&report, check);
    for e in expected {
        assert!(
            fix.contains(e),
            "the fix of {check} must say `{e}`: {fix}\n{report:#}"
        );
    }
    report
}

#[test]
fn the_correct_setup_is_all_ok() {
    let world = Setup::correct().start();
    let (code, report, stderr) = world.doctor();
    for f in report["findings"].as_array().expect("findings") {
        assert_eq!(f["status"], "ok", "{f:#}\n{report:#}");
    }
    for check in [
        "secret",
        "relay",
        "relay-tls",
        "relay-smtputf8",
        "relay-size",
        "spf",
        "dkim",
        "dmarc",
        "bounce-domain",
        "public-url",
        "healthz",
    ] {
        finding(&report, check);
    }
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["problems"], 0, "{report:#}");
    // The evidence is the record found: the SPF include was followed to the relay's address,
    // the multi-string DKIM record was joined.
    assert!(
        finding(&report, "spf")["summary"]
            .as_str()
            .is_some_and(|s| s.contains(
                "127.0.0.1 passes by `include:_spf.example.test` in bounces.example.test's record"
            )),
        "{report:#}"
    );
    assert_eq!(
        finding(&report, "dkim")["evidence"],
        world.dkim_record.as_str(),
        "{report:#}"
    );
    assert!(
        stderr.contains(&format!("the name server 127.0.0.1:{}", world.nsd.port)),
        "{stderr}"
    );
    // The plain report: one line per check, status first.
    let (code, text) = world.doctor_text();
    assert_eq!(code, 0);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains("dkim")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "https://127.0.0.1:{}/healthz answers 200",
            world.https.port
        )),
        "{text}"
    );
}

#[test]
fn no_spf_record_gives_the_record_to_publish() {
    let world = Setup::correct().without("bounces IN TXT").start();
    assert_only_problem(
        &world,
        "spf",
        &["publish bounces.example.test. TXT \"v=spf1 ip4:127.0.0.1 -all\""],
    );
}

#[test]
fn spf_that_leaves_out_the_relay_gets_it_added() {
    let world = Setup::correct()
        .replace("_spf IN TXT", "_spf IN TXT \"v=spf1 ip4:192.0.2.10 ~all\"")
        .start();
    let report = assert_only_problem(
        &world,
        "spf",
        &[
            "publish bounces.example.test. TXT \"v=spf1 include:_spf.example.test ip4:127.0.0.1 -all\"",
        ],
    );
    assert!(
        finding(&report, "spf")["summary"]
            .as_str()
            .is_some_and(|s| s.contains("127.0.0.1 is not authorised")),
        "{report:#}"
    );
}

#[test]
fn a_broken_spf_record_is_a_permerror() {
    let world = Setup::correct()
        .replace("_spf IN TXT", "_spf IN TXT \"v=spf1 ip4:127.0.0.300 -all\"")
        .start();
    let report = assert_only_problem(&world, "spf", &["v=spf1 ip4:127.0.0.1 -all"]);
    assert!(
        finding(&report, "spf")["summary"]
            .as_str()
            .is_some_and(|s| s.contains("is broken") && s.contains("127.0.0.300")),
        "{report:#}"
    );
}

#[test]
fn a_dkim_key_that_is_not_ours_gives_ours() {
    let other = tempfile::tempdir().expect("temp");
    let key = other.path().join("other.pem");
    generate_key(&key, KeyKind::RsaPkcs8);
    let theirs = txt_record(&key, KeyKind::RsaPkcs8);
    let mut setup = Setup::correct();
    setup.dkim = Box::new(move |_| Some(theirs.clone()));
    let world = setup.start();
    let expected = format!(
        "publish news._domainkey.example.test. TXT \"{}\"",
        world.dkim_record
    );
    let report = assert_only_problem(&world, "dkim", &[&expected]);
    assert!(
        finding(&report, "dkim")["summary"]
            .as_str()
            .is_some_and(|s| s.contains("is not the public half of")),
        "{report:#}"
    );
}

#[test]
fn a_missing_or_revoked_dkim_key_is_a_problem() {
    for (published, says) in [
        (None, "no DKIM key is published"),
        (Some("v=DKIM1; k=rsa; p="), "revoked"),
    ] {
        let mut setup = Setup::correct();
        setup.dkim = Box::new(move |_| published.map(str::to_string));
        let world = setup.start();
        let expected = world.dkim_record.clone();
        let report = assert_only_problem(&world, "dkim", &[&expected]);
        assert!(
            finding(&report, "dkim")["summary"]
                .as_str()
                .is_some_and(|s| s.contains(says)),
            "{report:#}"
        );
    }
}

#[test]
fn a_dkim_key_in_testing_mode_is_a_warning() {
    let mut setup = Setup::correct();
    setup.dkim = Box::new(|ours| Some(ours.replace("k=rsa;", "k=rsa; t=y;")));
    let world = setup.start();
    let (code, report, _) = world.doctor();
    assert_eq!(status(&report, "dkim"), "warning", "{report:#}");
    assert!(
        fix(&report, "dkim").contains(&world.dkim_record),
        "{report:#}"
    );
    assert_eq!(code, 0, "a warning alone exits 0: {report:#}");
}

#[test]
fn no_dmarc_record_gives_a_starting_one() {
    let world = Setup::correct().without("_dmarc").start();
    assert_only_problem(
        &world,
        "dmarc",
        &[
            "publish _dmarc.example.test. TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.test\"",
        ],
    );
}

#[test]
fn strict_dmarc_that_nothing_aligns_with() {
    // From a subdomain, with strict alignment: d=example.test and bounces.example.test both
    // differ from mail.example.test. The record is found at the organisational domain.
    let mut setup = Setup::correct().replace(
        "_dmarc",
        "_dmarc IN TXT \"v=DMARC1; p=reject; adkim=s; aspf=s\"",
    );
    setup.from = "News <news@mail.example.test>".into();
    let world = setup.start();
    let report = assert_only_problem(
        &world,
        "dmarc",
        &["set [dkim] domain = \"mail.example.test\"", "relax"],
    );
    assert!(
        finding(&report, "dmarc")["summary"]
            .as_str()
            .is_some_and(
                |s| s.contains("_dmarc.example.test") && s.contains("neither DKIM nor SPF aligns")
            ),
        "{report:#}"
    );
}

#[test]
fn a_bounce_domain_without_mx() {
    let world = Setup::correct().without("bounces IN MX").start();
    assert_only_problem(
        &world,
        "bounce-domain",
        &[
            "publish bounces.example.test. MX 10",
            "bounces+*@bounces.example.test",
        ],
    );
}

#[test]
fn healthz_that_nobody_answers() {
    let mut setup = Setup::correct();
    setup.public_url = Some(format!("https://127.0.0.1:{}", free_port()));
    let world = setup.start();
    let report = assert_only_problem(&world, "healthz", &["start `bulletin serve`"]);
    assert_eq!(status(&report, "public-url"), "ok", "{report:#}");
}

#[test]
fn an_untrusted_certificate_names_the_ca_option() {
    let mut setup = Setup::correct();
    // The system's roots do not know the test CA.
    setup.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let world = setup.start();
    let report = assert_only_problem(&world, "healthz", &["--ca-file"]);
    assert!(
        finding(&report, "healthz")["summary"]
            .as_str()
            .is_some_and(|s| s.contains("TLS")),
        "{report:#}"
    );
}

#[test]
fn no_secret() {
    let mut setup = Setup::correct();
    setup.secret = false;
    let world = setup.start();
    assert_only_problem(
        &world,
        "secret",
        &["openssl rand -hex 32", "BULLETIN_SECRET"],
    );
}

#[test]
fn a_relay_that_refuses_our_credentials() {
    let mut setup = Setup::correct();
    setup.password = "not-the-password".into();
    let world = setup.start();
    let report = assert_only_problem(&world, "relay", &["[smtp] username (`sender`)"]);
    let relay = finding(&report, "relay");
    assert!(
        relay["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("535")),
        "{relay:#}"
    );
    for check in ["relay-tls", "relay-smtputf8", "relay-size"] {
        assert_eq!(status(&report, check), "skipped", "{report:#}");
    }
    // The password is never printed.
    assert!(!report.to_string().contains("not-the-password"));
}

#[test]
fn a_relay_without_starttls_or_smtputf8_is_warned_about() {
    let mut setup = Setup::correct();
    setup.starttls = false;
    setup.smtputf8 = false;
    let world = setup.start();
    let (code, report, _) = world.doctor();
    assert_eq!(status(&report, "relay-tls"), "warning", "{report:#}");
    assert_eq!(status(&report, "relay-smtputf8"), "warning", "{report:#}");
    assert!(
        fix(&report, "relay-smtputf8").contains("SMTPUTF8"),
        "{report:#}"
    );
    assert_eq!(report["problems"], 0, "{report:#}");
    assert_eq!(code, 0, "warnings alone exit 0: {report:#}");
}

#[test]
fn a_relay_whose_size_limit_is_too_small() {
    let mut setup = Setup::correct();
    setup.size = 500_000;
    let world = setup.start();
    let report = assert_only_problem(
        &world,
        "relay-size",
        &["ask the relay's provider to raise its limit"],
    );
    assert!(
        finding(&report, "relay-size")["summary"]
            .as_str()
            .is_some_and(|s| s.contains("up to 500000 bytes") && s.contains("1048576")),
        "{report:#}"
    );
}

#[test]
fn a_dead_name_server_is_reported_in_bounded_time() {
    let mut setup = Setup::correct();
    setup.nameserver = Some(free_port());
    let world = setup.start();
    let started = Instant::now();
    let (code, report, _) = world.doctor();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code, 1, "{report:#}");
    for check in ["spf", "dkim", "dmarc", "bounce-domain"] {
        assert_eq!(status(&report, check), "problem", "{report:#}");
        assert!(fix(&report, check).contains("--nameserver"), "{report:#}");
    }
    // What needs no DNS still passes.
    assert_eq!(status(&report, "relay"), "ok", "{report:#}");
    assert_eq!(status(&report, "healthz"), "ok", "{report:#}");
}

#[test]
fn without_egress_a_loopback_relay_is_a_warning_not_a_verdict() {
    // The relay on 127.0.0.1 is not in the record: receivers judge the public address, which
    // doctor cannot see, so it warns (exit 0) and asks for --egress-ip.
    let world = Setup::correct()
        .replace("_spf IN TXT", "_spf IN TXT \"v=spf1 ip4:192.0.2.10 -all\"")
        .start();
    let out = world
        .project
        .cmd()
        .args(["--json", "doctor", "--nameserver"])
        .arg(format!("127.0.0.1:{}", world.nsd.port))
        .arg("--ca-file")
        .arg(&world.https.ca)
        .output()
        .expect("runs");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status(&report, "spf"), "warning", "{report:#}");
    assert!(
        fix(&report, "spf").contains("<the relay's public sending address>"),
        "{report:#}"
    );
    assert!(
        finding(&report, "spf")["summary"]
            .as_str()
            .is_some_and(|s| s.contains("--egress-ip")),
        "{report:#}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "warnings alone exit 0: {report:#}"
    );
}

#[test]
fn bulletin_serve_over_plain_http_on_this_machine() {
    let port = free_port();
    let mut setup = Setup::correct();
    setup.public_url = Some(format!("http://127.0.0.1:{port}"));
    let world = setup.start();
    // serve refuses to create a database: make it with a first command.
    world.project.ok(&["lists", "add", "news"]);
    let _serve = Serve::start(&world.project, port);
    let (code, report, _) = world.doctor();
    assert_eq!(status(&report, "healthz"), "ok", "{report:#}");
    assert_eq!(status(&report, "public-url"), "warning", "{report:#}");
    assert!(
        fix(&report, "public-url").contains("TLS reverse proxy"),
        "{report:#}"
    );
    assert_eq!(code, 0, "a warning alone exits 0: {report:#}");
}

#[test]
fn a_bad_ca_file_is_an_input_error() {
    let mut setup = Setup::correct();
    setup.ca_file = Some(std::env::temp_dir().join("no-such-ca-file.pem"));
    let world = setup.start();
    let out = world
        .project
        .cmd()
        .arg("doctor")
        .args(&world.args)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca-file") && err.contains("no-such-ca-file.pem"),
        "{err}"
    );
}

#[test]
fn the_relay_size_is_compared_with_the_editions_largest_message() {
    let edition = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("editions/glo-act-special-edition")
        .display()
        .to_string();
    let mut setup = Setup::correct();
    setup.size = 10_000;
    setup.args = vec!["--edition".into(), edition.clone()];
    let world = setup.start();
    let report = assert_only_problem(&world, "relay-size", &["make the edition smaller"]);
    let summary = finding(&report, "relay-size")["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        summary.contains("the largest message of") && summary.contains("glo-act-special-edition"),
        "{summary}"
    );
    // "… but the largest message of DIR (its `xx` variant) is N bytes": N is a built message.
    let size: u64 = summary
        .rsplit(" is ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {summary}"));
    assert!(size > 10_000 && size < 1024 * 1024, "{summary}");
    drop(world);

    // A relay that takes that message is fine, though it is below the typical size.
    let mut setup = Setup::correct();
    setup.size = size + 1;
    setup.args = vec!["--edition".into(), edition];
    let world = setup.start();
    let (code, report, stderr) = world.doctor();
    assert_eq!(status(&report, "relay-size"), "ok", "{report:#}");
    assert_eq!(code, 0, "{stderr}\n{report:#}");
}

#[test]
fn a_record_too_long_for_udp_comes_over_tcp() {
    // 64 networks before the relay's address: over 1 000 bytes, more than a DNS answer over
    // UDP may carry without EDNS (512), so NSD truncates it and the resolver must ask over TCP.
    let networks: Vec<String> = (0..64).map(|i| format!("ip4:198.51.{i}.0/24")).collect();
    let record = format!("v=spf1 {} ip4:127.0.0.1 -all", networks.join(" "));
    let world = Setup::correct()
        .replace("_spf IN TXT", &format!("_spf IN TXT {}", quoted(&record)))
        .start();
    let (code, report, stderr) = world.doctor();
    assert_eq!(status(&report, "spf"), "ok", "{report:#}");
    assert_eq!(code, 0, "{stderr}\n{report:#}");
}

#[test]
fn ed25519_and_pkcs1_keys_are_matched_too() {
    for kind in [KeyKind::Ed25519, KeyKind::RsaPkcs1] {
        let mut setup = Setup::correct();
        setup.key = kind;
        let world = setup.start();
        let (code, report, stderr) = world.doctor();
        assert_eq!(status(&report, "dkim"), "ok", "{kind:?}: {report:#}");
        assert_eq!(code, 0, "{stderr}\n{report:#}");
        drop(world);

        // The other kind's key at the selector: a mismatch whose fix is our record.
        let mut setup = Setup::correct();
        setup.key = kind;
        setup.dkim = Box::new(move |_| {
            Some(if kind == KeyKind::Ed25519 {
                "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".to_string()
            } else {
                "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_string()
            })
        });
        let world = setup.start();
        let expected = world.dkim_record.clone();
        assert_only_problem(&world, "dkim", &[&expected]);
    }
}
