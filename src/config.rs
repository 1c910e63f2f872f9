//! `bulletin.toml` and its `BULLETIN_*` environment overrides, read and validated once at start.
//!
//! The file is optional: without one, every value falls back to a default that works on a fresh
//! machine (a SQLite file `bulletin.db` in the working directory, SMTP on loopback port 2525).
//! Unknown keys are errors, not warnings, because a misspelt `rate` silently ignored is how a
//! relay gets flooded; the error names the file, the line, the section and the closest known key.
//!
//! Secrets (the SMTP password, the token secret) never live in the file: they come from the
//! environment or from a `*_file` path, are held in [`Secret`], and print as `[redacted]`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

// `render` and `store` take these from here; they live in `diagnostic`.
use crate::diagnostic::{SourceFile, unknown_field};

mod env;
mod validate;
pub(crate) use crate::diagnostic::{closest, line_of};

/// What can go wrong while reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named explicitly (flag or `BULLETIN_CONFIG`) does not exist or cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The configuration file that holds the value.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The configuration file that holds the value.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong, with the fix where one is known.
        message: String,
    },
    /// A key that bulletin does not know.
    #[error("{path}:{line}: unknown key `{key}` in {section}{hint}")]
    UnknownKey {
        /// The configuration file that holds the value.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// `[smtp]`, or "the top level".
        section: String,
        /// "; did you mean `x`?" and the list of valid keys.
        hint: String,
    },
    /// A `[section]` that bulletin does not know.
    #[error("{path}:{line}: unknown section [{section}]{hint}")]
    UnknownSection {
        /// The configuration file that holds the value.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// The section as written.
        section: String,
        /// "; did you mean [x]?" and the list of sections.
        hint: String,
    },
    /// A value that parses but makes no sense (a URL of the wrong scheme, a zero pool, ...).
    #[error("{origin}: {message}")]
    Invalid {
        /// `bulletin.toml [smtp] url`, or `BULLETIN_SMTP_URL`.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A secret was written into the file, where it would end up in backups and repositories.
    #[error(
        "{path}: `{key}` must not be written in the configuration file; \
         set the environment variable {env} or point `{key}_file` at a file instead"
    )]
    SecretInFile {
        /// The configuration file that holds the value.
        path: PathBuf,
        /// `password` or `secret`.
        key: &'static str,
        /// The environment variable to use instead.
        env: &'static str,
    },
    /// A secret file could not be read.
    #[error("cannot read {what} from {path}: {source}")]
    SecretFile {
        /// Which secret.
        what: &'static str,
        /// The configuration file that holds the value.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (an AUTH command, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole configuration, after the file, the environment and the defaults were merged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The identity of the newsletter.
    pub list: ListConfig,
    /// Where subscribers and campaigns are stored.
    pub database: DatabaseConfig,
    /// The relay that delivers mail.
    pub smtp: SmtpConfig,
    /// DKIM signing; absent means messages go out unsigned.
    pub dkim: Option<DkimConfig>,
    /// The public web service (`bulletin serve`).
    pub server: ServerConfig,
    /// Where the published pictures and documents of editions are reached.
    pub assets: AssetsConfig,
    /// The return path and what `bulletin bounces` does; absent means messages go out with
    /// the `From` address as their envelope sender, as before.
    pub bounces: Option<BouncesConfig>,
    /// The file this came from, `None` when no file was found and defaults apply.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// `section.key` of each value an environment variable set, so that an error about it
    /// names the variable rather than a file that does not hold it.
    #[serde(skip)]
    from_env: std::collections::BTreeSet<String>,
}

/// `[list]`: who the newsletter is from, shown in headers and every footer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListConfig {
    /// Human name of the newsletter.
    pub name: String,
    /// The `List-Id` (RFC 2919), a domain-like identifier.
    pub id: String,
    /// The `From` header: `Name <address>`.
    pub from: String,
    /// The `Reply-To` address, if replies should go elsewhere.
    pub reply_to: Option<String>,
    /// Postal address printed in every footer (required by CAN-SPAM and similar laws).
    pub postal_address: Option<String>,
    /// Base URL of unsubscribe, confirm and archive links.
    pub public_url: String,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (relative paths are taken from the configuration file's folder), or
    /// `postgres://user@host:port/database?sslmode=verify-full` (a user name, never a password).
    pub url: String,
    /// How long a command waits for another process's write lock before giving up.
    pub busy_timeout_ms: u64,
    /// File holding the PostgreSQL password (`BULLETIN_DATABASE_PASSWORD` wins).
    pub password_file: Option<PathBuf>,
    /// From `BULLETIN_DATABASE_PASSWORD`; never read from the file.
    #[serde(skip)]
    pub password: Option<Secret>,
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// `smtp://host:port`, `smtps://host:465`, `smtp://host:587?tls=required`.
    pub url: String,
    /// AUTH user name.
    pub username: Option<String>,
    /// File holding the AUTH password (the environment variable wins).
    pub password_file: Option<PathBuf>,
    /// Connections kept open to the relay.
    pub pool: u32,
    /// Messages per second; 0 means as fast as the relay accepts.
    pub rate: f64,
    /// At most this many messages an hour; 0 means no cap.
    pub hourly_cap: u32,
    /// Attempts per message before a transient failure becomes final.
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds; doubled at each further attempt.
    pub retry_base_ms: u64,
    /// Seconds a sender's lease on a campaign lasts without renewal (renewed every quarter of
    /// it); a second `send` of the same campaign is refused while the lease stands.
    pub lease_secs: u64,
    /// Seconds to wait for the TCP connection (and implicit TLS).
    pub connect_timeout_secs: u64,
    /// Seconds to wait for the greeting and the EHLO reply (RFC 5321 §4.5.3.2: 5 minutes).
    pub greeting_timeout_secs: u64,
    /// Seconds to wait for the MAIL FROM reply (5 minutes).
    pub mail_timeout_secs: u64,
    /// Seconds to wait for the RCPT TO reply (5 minutes).
    pub rcpt_timeout_secs: u64,
    /// Seconds to wait for the DATA reply (2 minutes).
    pub data_timeout_secs: u64,
    /// Seconds a block of the message may take to be written (3 minutes).
    pub data_block_timeout_secs: u64,
    /// Seconds to wait for the reply to the final dot (10 minutes).
    pub data_end_timeout_secs: u64,
    /// The password, from `BULLETIN_SMTP_PASSWORD` (never from the file).
    #[serde(skip)]
    pub password: Option<Secret>,
}

/// `[dkim]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    /// PEM file: RSA (PKCS#1 or PKCS#8) or Ed25519.
    pub key_file: PathBuf,
}

/// `[assets]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssetsConfig {
    /// The URL the files of `<out>/<slug>/assets/` are uploaded to, when they are hosted
    /// elsewhere than `bulletin serve` (a CDN, a bucket); unset means
    /// `{public_url}/archive/{slug}/assets`.
    pub base_url: Option<String>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// File holding the token secret (the environment variable wins).
    pub secret_file: Option<PathBuf>,
    /// Earlier secrets' files, still accepted so that links already in inboxes keep working.
    pub previous_secret_files: Vec<PathBuf>,
    /// Folder that `compose` wrote into: `/archive/` serves `<slug>/<lang>/archive.html` from it.
    pub archive_dir: PathBuf,
    /// How long a confirmation link stays valid (double opt-in), in hours.
    pub confirm_ttl_hours: u64,
    /// Subscription requests accepted per client address and hour (each sends a mail).
    pub subscribe_limit_per_hour: u32,
    /// Header a trusted reverse proxy sets to the client's address (`X-Real-IP`, or
    /// `X-Forwarded-For`, of which the last entry is used); unset means the peer address.
    pub client_ip_header: Option<String>,
    /// At most one confirmation mail per recipient address in this many minutes, whoever
    /// asks (kept in the database, so it holds across restarts); 0 disables it.
    pub confirm_cooldown_minutes: u64,
    /// Seconds a connection may take to send a request's head, counted from its opening or
    /// from the previous response: also how long an idle keep-alive connection stays open.
    pub header_timeout_secs: u64,
    /// Seconds a request may take to send its body.
    pub body_timeout_secs: u64,
    /// Connections served at once; more wait in the listen queue until one closes.
    pub max_connections: u32,
    /// The token secret, from `BULLETIN_SECRET` (never from the file).
    #[serde(skip)]
    pub secret: Option<Secret>,
}

/// `[bounces]`: VERP return path and the bounce policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// The domain of the envelope sender, whose mail reaches the bounce mailbox.
    pub domain: String,
    /// The part before `+` in `bounces+{token}@{domain}`.
    #[serde(default = "default_bounce_local_part")]
    pub local_part: String,
    /// Soft bounces in a row, across campaigns, that blocklist an address.
    #[serde(default = "default_soft_limit")]
    pub soft_limit: u32,
    /// The bounce mailbox as a Maildir folder (`bulletin bounces` reads it by default).
    pub maildir: Option<PathBuf>,
    /// The bounce mailbox as an mbox file.
    pub mbox: Option<PathBuf>,
    /// The bounce mailbox over IMAP: `imaps://host/MAILBOX` (plain `imap://` only to a
    /// loopback address).
    pub imap_url: Option<String>,
    /// The IMAP user name.
    pub imap_username: Option<String>,
    /// File holding the IMAP password (`BULLETIN_BOUNCES_IMAP_PASSWORD` wins).
    pub imap_password_file: Option<PathBuf>,
    /// The IMAP password, from `BULLETIN_BOUNCES_IMAP_PASSWORD` (never from the file).
    #[serde(skip)]
    pub imap_password: Option<Secret>,
}

fn default_bounce_local_part() -> String {
    "bounces".into()
}

fn default_soft_limit() -> u32 {
    3
}

impl Default for ListConfig {
    fn default() -> Self {
        Self {
            name: "Newsletter".into(),
            // Reserved example domains: valid, and obviously placeholders to replace.
            id: "newsletter.example.org".into(),
            from: "Newsletter <newsletter@example.org>".into(),
            reply_to: None,
            postal_address: None,
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://bulletin.db".into(),
            busy_timeout_ms: 5_000,
            password_file: None,
            password: None,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            url: "smtp://127.0.0.1:2525".into(),
            username: None,
            password_file: None,
            pool: 8,
            rate: 0.0,
            hourly_cap: 0,
            max_attempts: 5,
            retry_base_ms: 60_000,
            lease_secs: 60,
            connect_timeout_secs: 30,
            greeting_timeout_secs: 300,
            mail_timeout_secs: 300,
            rcpt_timeout_secs: 300,
            data_timeout_secs: 120,
            data_block_timeout_secs: 180,
            data_end_timeout_secs: 600,
            password: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            secret_file: None,
            previous_secret_files: Vec::new(),
            archive_dir: PathBuf::from("out"),
            confirm_ttl_hours: 168,
            subscribe_limit_per_hour: 10,
            client_ip_header: None,
            confirm_cooldown_minutes: 15,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            max_connections: 512,
            secret: None,
        }
    }
}

/// Every key the file may hold, by section; the source of "did you mean" hints for both the
/// file and the environment.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "list",
        &[
            "name",
            "id",
            "from",
            "reply_to",
            "postal_address",
            "public_url",
        ],
    ),
    ("database", &["url", "busy_timeout_ms", "password_file"]),
    (
        "smtp",
        &[
            "url",
            "username",
            "password_file",
            "pool",
            "rate",
            "hourly_cap",
            "max_attempts",
            "retry_base_ms",
            "lease_secs",
            "connect_timeout_secs",
            "greeting_timeout_secs",
            "mail_timeout_secs",
            "rcpt_timeout_secs",
            "data_timeout_secs",
            "data_block_timeout_secs",
            "data_end_timeout_secs",
        ],
    ),
    ("dkim", &["domain", "selector", "key_file"]),
    (
        "bounces",
        &[
            "domain",
            "local_part",
            "soft_limit",
            "maildir",
            "mbox",
            "imap_url",
            "imap_username",
            "imap_password_file",
        ],
    ),
    (
        "server",
        &[
            "listen",
            "secret_file",
            "previous_secret_files",
            "archive_dir",
            "confirm_ttl_hours",
            "subscribe_limit_per_hour",
            "client_ip_header",
            "confirm_cooldown_minutes",
            "header_timeout_secs",
            "body_timeout_secs",
            "max_connections",
        ],
    ),
    ("assets", &["base_url"]),
];

impl Config {
    /// Reads the configuration.
    ///
    /// `explicit` is the `--config` flag or `BULLETIN_CONFIG`: that file must exist. Without it,
    /// the project is found as git and cargo find theirs: the nearest `bulletin.toml` in the
    /// working folder or a folder above it; defaults apply when there is none (and
    /// [`Config::source`] says so). `env` is the process environment (passed in so that tests
    /// need not mutate the real one).
    pub fn load(
        explicit: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => find_project_file(),
        };
        let mut config = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                let mut c = Self::parse(&text, p)?;
                c.source = Some(p.clone());
                c
            }
            None => Self::default(),
        };
        let warnings = config.apply_env(env)?;
        // Checked as written, before relative paths are joined to the file's folder: joined,
        // `sqlite://user:pw@host/x.db` would become a path and its credentials go unnoticed.
        config.validate()?;
        config.resolve_paths();
        Ok((config, warnings))
    }

    /// Parses the text of a configuration file; `path` is used in messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // Secrets get their own message before serde would call them merely "unknown".
        let file = SourceFile::new(path, text);
        let table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(&e, file))?;
        for (section, key, env) in [
            ("smtp", "password", "BULLETIN_SMTP_PASSWORD"),
            ("server", "secret", "BULLETIN_SECRET"),
            ("bounces", "imap_password", "BULLETIN_BOUNCES_IMAP_PASSWORD"),
        ] {
            let holds = table
                .get(section)
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key(key));
            if holds {
                return Err(ConfigError::SecretInFile {
                    path: path.to_path_buf(),
                    key,
                    env,
                });
            }
        }
        toml::from_str(text)
            .map_err(|e| unknown_key_error(&e, file).unwrap_or_else(|| syntax_error(&e, file)))
    }

    /// Relative paths in the file are relative to the file, so that `bulletin -c /etc/x.toml`
    /// run from cron finds the same database as when run from the file's folder.
    fn resolve_paths(&mut self) {
        let Some(dir) = self.source.as_ref().and_then(|p| p.parent()) else {
            return;
        };
        if dir.as_os_str().is_empty() {
            return;
        }
        if let Some(rest) = self.database.url.strip_prefix("sqlite://") {
            let (file, query) = rest
                .split_once('?')
                .map_or((rest, None), |(f, q)| (f, Some(q)));
            if !file.is_empty() && file != ":memory:" && Path::new(file).is_relative() {
                let joined = dir.join(file).display().to_string();
                self.database.url = match query {
                    Some(q) => format!("sqlite://{joined}?{q}"),
                    None => format!("sqlite://{joined}"),
                };
            }
        }
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(p) = self.smtp.password_file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.database.password_file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.server.secret_file.as_mut() {
            fix(p);
        }
        self.server.previous_secret_files.iter_mut().for_each(fix);
        fix(&mut self.server.archive_dir);
        if let Some(d) = self.dkim.as_mut() {
            fix(&mut d.key_file);
        }
        if let Some(b) = self.bounces.as_mut() {
            b.maildir
                .iter_mut()
                .chain(b.mbox.iter_mut())
                .chain(b.imap_password_file.iter_mut())
                .for_each(fix);
        }
    }

    /// Where a value came from, for messages: the environment variable that set it, else the
    /// file and key, or the defaults.
    fn origin(&self, section: &str, key: &str) -> String {
        if self.from_env.contains(&format!("{section}.{key}")) {
            return format!("BULLETIN_{section}_{key}").to_uppercase();
        }
        match &self.source {
            Some(p) => format!("{} [{section}] {key}", p.display()),
            None => format!("[{section}] {key}"),
        }
    }

    /// Replaces the database URL with the one given by `--database`, checked as the file's.
    pub fn override_database_url(&mut self, url: &str) -> Result<(), ConfigError> {
        self.database.url = url.to_string();
        self.validate_database("--database (or BULLETIN_DATABASE_URL)".into())
    }

    /// The URL the store connects with: `[database] url`, with the PostgreSQL password
    /// (`BULLETIN_DATABASE_PASSWORD`, else `password_file`) put in. Never print it: the store
    /// names the database by the URL without its password.
    pub fn database_connect_url(&self) -> Result<String, ConfigError> {
        let url = &self.database.url;
        if url.starts_with("sqlite:") {
            return Ok(url.clone());
        }
        let password = match &self.database.password {
            Some(p) => Some(p.clone()),
            None => read_secret_file(
                self.database.password_file.as_deref(),
                "the database password",
            )?,
        };
        let Some(password) = password else {
            return Ok(url.clone());
        };
        let invalid = |message: String| ConfigError::Invalid {
            origin: self.origin("database", "url"),
            message,
        };
        let mut parsed =
            url::Url::parse(url).map_err(|e| invalid(format!("`{url}` is not a URL: {e}")))?;
        if parsed.username().is_empty() {
            return Err(invalid(format!(
                "`{url}` names no user, but a password is set; write the user into the URL \
                 (postgres://USER@host/database)"
            )));
        }
        parsed
            .set_password(Some(password.expose()))
            .map_err(|()| invalid(format!("`{url}` cannot carry a password")))?;
        Ok(parsed.to_string())
    }

    /// The SMTP password: `BULLETIN_SMTP_PASSWORD`, else the contents of `password_file`.
    pub fn smtp_password(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(p) = &self.smtp.password {
            return Ok(Some(p.clone()));
        }
        read_secret_file(self.smtp.password_file.as_deref(), "the SMTP password")
    }

    /// The relay's user name and password, when `[smtp] username` is set; a user name without
    /// a password is an error rather than an anonymous attempt.
    pub fn smtp_credentials(&self) -> Result<Option<(String, Secret)>, ConfigError> {
        let Some(user) = &self.smtp.username else {
            return Ok(None);
        };
        let password = self.smtp_password()?.ok_or_else(|| ConfigError::Invalid {
            origin: "[smtp] username".into(),
            message: format!(
                "is `{user}` but no password is set: set BULLETIN_SMTP_PASSWORD or [smtp] password_file"
            ),
        })?;
        Ok(Some((user.clone(), password)))
    }

    /// The token secret: `BULLETIN_SECRET`, else the contents of `secret_file`.
    pub fn token_secret(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(s) = &self.server.secret {
            return Ok(Some(s.clone()));
        }
        read_secret_file(self.server.secret_file.as_deref(), "the token secret")
    }

    /// The IMAP password of the bounce mailbox: `BULLETIN_BOUNCES_IMAP_PASSWORD`, else the
    /// contents of `[bounces] imap_password_file`.
    pub fn bounces_imap_password(&self) -> Result<Option<Secret>, ConfigError> {
        let Some(b) = &self.bounces else {
            return Ok(None);
        };
        if let Some(p) = &b.imap_password {
            return Ok(Some(p.clone()));
        }
        read_secret_file(b.imap_password_file.as_deref(), "the IMAP password")
    }

    /// Earlier token secrets, from `previous_secret_files`, still accepted after a rotation.
    pub fn previous_token_secrets(&self) -> Result<Vec<Secret>, ConfigError> {
        let mut out = Vec::new();
        for path in &self.server.previous_secret_files {
            if let Some(s) = read_secret_file(Some(path), "a previous token secret")? {
                out.push(s);
            }
        }
        Ok(out)
    }
}

fn read_secret_file(
    path: Option<&Path>,
    what: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    // Files written with `echo` end in a newline that is not part of the secret.
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.trim().is_empty() {
        return Err(ConfigError::Invalid {
            origin: path.display().to_string(),
            message: format!(
                "is empty or holds only whitespace; write {what} into it (e.g. `openssl rand -hex 32`)"
            ),
        });
    }
    Ok(Some(Secret::new(secret)))
}

/// The `user:password@` part of a URL's authority, if it has one.
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://").map(|i| i + 3)?;
    let authority_len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    let at = url[start..start + authority_len].rfind('@')?;
    Some((start, start + at))
}

/// Whether `url` carries a password (`user:password@`).
fn has_password(url: &str) -> bool {
    userinfo(url).is_some_and(|(start, at)| url[start..at].contains(':'))
}

/// Whether `url` carries a user name or password.
fn has_userinfo(url: &str) -> bool {
    userinfo(url).is_some()
}

/// `url` with its user name and password replaced, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match userinfo(url) {
        Some((start, at)) => format!("{}[redacted]{}", &url[..start], &url[at..]),
        None => url.to_string(),
    }
}

fn syntax_error(e: &toml::de::Error, file: SourceFile<'_>) -> ConfigError {
    ConfigError::Syntax {
        path: file.path.to_path_buf(),
        line: file.toml_line(e),
        message: format!(
            "{}; see the README's Configuration section, or run `bulletin init` in an empty \
             folder for a commented example",
            e.message().trim()
        ),
    }
}

/// Turns serde's "unknown field `x`, expected ..." into a message with a suggestion.
fn unknown_key_error(e: &toml::de::Error, file: SourceFile<'_>) -> Option<ConfigError> {
    let key = unknown_field(e.message())?.to_string();
    let offset = e.span().map_or(0, |s| s.start);
    let line = file.line(offset);
    let section = file.toml_table_at(offset).filter(|s| !s.is_empty());
    let names: Vec<&str> = KNOWN_KEYS.iter().map(|(s, _)| *s).collect();
    if section.is_none() && file.is_toml_header(offset) {
        let hint = closest(&key, &names)
            .map(|best| format!("; did you mean [{best}]?"))
            .unwrap_or_default();
        let all: Vec<String> = names.iter().map(|n| format!("[{n}]")).collect();
        return Some(ConfigError::UnknownSection {
            path: file.path.to_path_buf(),
            line,
            section: key,
            hint: format!("{hint} (the sections are {})", all.join(", ")),
        });
    }
    let candidates: Vec<&str> = match section {
        None => names,
        Some(s) => KNOWN_KEYS
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, keys)| keys.to_vec())
            .unwrap_or_default(),
    };
    let hint = match closest(&key, &candidates) {
        Some(best) => format!(
            "; did you mean `{best}`? (valid keys: {})",
            candidates.join(", ")
        ),
        None => format!("; valid keys: {}", candidates.join(", ")),
    };
    Some(ConfigError::UnknownKey {
        path: file.path.to_path_buf(),
        line,
        key,
        section: section.map_or_else(|| "the top level".to_string(), |s| format!("[{s}]")),
        hint,
    })
}

/// The nearest `bulletin.toml` in the working folder or one above it. Relative paths in it
/// resolve against its own folder, so a command run from `editions/` uses the project's
/// database, not a new one there.
fn find_project_file() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    here.ancestors()
        .map(|dir| dir.join("bulletin.toml"))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_names_line_section_and_suggestion() {
        let text = "[list]\nname = \"x\"\n\n[smtp]\nurl = \"smtp://127.0.0.1:25\"\nrte = 5\n";
        let err = Config::parse(text, Path::new("b.toml")).expect_err("typo must fail");
        let msg = err.to_string();
        assert!(
            msg.starts_with("b.toml:6: unknown key `rte` in [smtp]"),
            "{msg}"
        );
        assert!(msg.contains("did you mean `rate`?"), "{msg}");
    }

    #[test]
    fn secrets_in_file_are_refused_and_never_printed() {
        let text = "[smtp]\npassword = \"hunter2\"\n";
        let err = Config::parse(text, Path::new("b.toml")).expect_err("secret in file");
        assert!(!err.to_string().contains("hunter2"));
        assert!(err.to_string().contains("BULLETIN_SMTP_PASSWORD"));

        let env = vec![("BULLETIN_SMTP_PASSWORD".to_string(), "hunter2".to_string())];
        let mut c = Config::default();
        c.apply_env(&env).expect("valid env");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(
            c.smtp.password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
    }

    #[test]
    fn env_overrides_and_unknown_env_hint() {
        let env = vec![
            ("BULLETIN_SMTP_POOL".to_string(), "3".to_string()),
            ("BULLETIN_SMTP_POLL".to_string(), "3".to_string()),
        ];
        let mut c = Config::default();
        let warnings = c.apply_env(&env).expect("valid env");
        assert_eq!(c.smtp.pool, 3);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("did you mean BULLETIN_SMTP_POOL?"),
            "{warnings:?}"
        );

        let bad = vec![("BULLETIN_SMTP_POOL".to_string(), "many".to_string())];
        let err = Config::default().apply_env(&bad).expect_err("not a number");
        assert!(err.to_string().starts_with("BULLETIN_SMTP_POOL:"), "{err}");
    }

    #[test]
    fn relative_database_path_follows_the_file() {
        let mut c = Config::parse(
            "[database]\nurl = \"sqlite://data/b.db?mode=rwc\"\n",
            Path::new("x"),
        )
        .expect("valid");
        c.source = Some(PathBuf::from("/etc/bulletin/bulletin.toml"));
        c.resolve_paths();
        assert_eq!(c.database.url, "sqlite:///etc/bulletin/data/b.db?mode=rwc");
    }

    #[test]
    fn wrong_type_names_line() {
        let err =
            Config::parse("[smtp]\npool = \"eight\"\n", Path::new("b.toml")).expect_err("type");
        assert!(err.to_string().starts_with("b.toml:2:"), "{err}");
    }
}
