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
pub(crate) use crate::diagnostic::{closest, line_of};

/// What can go wrong while reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named explicitly (flag or `BULLETIN_CONFIG`) does not exist or cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong, with the fix where one is known.
        message: String,
    },
    /// A key that bulletin does not know.
    #[error("{path}:{line}: unknown key `{key}` in {section}{hint}")]
    UnknownKey {
        /// The file.
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
        /// The file.
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
        /// The file.
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
        /// The file.
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
    /// `sqlite://path` (relative paths are taken from the configuration file's folder).
    pub url: String,
    /// How long a command waits for another process's write lock before giving up.
    pub busy_timeout_ms: u64,
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
    ("database", &["url", "busy_timeout_ms"]),
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
];

/// Environment variables that are not `BULLETIN_<SECTION>_<KEY>` but still belong to us.
const OTHER_ENV: &[&str] = &[
    "BULLETIN_CONFIG",
    "BULLETIN_SMTP_PASSWORD",
    "BULLETIN_SECRET",
    "BULLETIN_LOG",
];

impl Config {
    /// Reads the configuration.
    ///
    /// `explicit` is the `--config` flag or `BULLETIN_CONFIG`: that file must exist. Without it,
    /// `./bulletin.toml` is read when present, and defaults apply when it is not. `env` is the
    /// process environment (passed in so that tests need not mutate the real one).
    pub fn load(
        explicit: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let default = PathBuf::from("bulletin.toml");
                default.exists().then_some(default)
            }
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
        config.resolve_paths();
        config.validate()?;
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

    /// Applies `BULLETIN_<SECTION>_<KEY>` overrides; returns warnings for unknown variables.
    fn apply_env(&mut self, env: &[(String, String)]) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("BULLETIN_") else {
                continue;
            };
            let invalid = |message: String| ConfigError::Invalid {
                origin: name.clone(),
                message,
            };
            let number = |v: &str| -> Result<u64, ConfigError> {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("`{v}` is not a whole number")))
            };
            if let Some(key) = env_key(rest) {
                self.from_env.insert(key);
            }
            match rest {
                "CONFIG" | "LOG" => {}
                "DATABASE_URL" => self.database.url = value.clone(),
                "DATABASE_BUSY_TIMEOUT_MS" => self.database.busy_timeout_ms = number(value)?,
                "LIST_NAME" => self.list.name = value.clone(),
                "LIST_ID" => self.list.id = value.clone(),
                "LIST_FROM" => self.list.from = value.clone(),
                "LIST_REPLY_TO" => self.list.reply_to = Some(value.clone()),
                "LIST_POSTAL_ADDRESS" => self.list.postal_address = Some(value.clone()),
                "LIST_PUBLIC_URL" => self.list.public_url = value.clone(),
                "SMTP_URL" => self.smtp.url = value.clone(),
                "SMTP_USERNAME" => self.smtp.username = Some(value.clone()),
                "SMTP_PASSWORD" => self.smtp.password = Some(secret_from_env(name, value)?),
                "SMTP_PASSWORD_FILE" => self.smtp.password_file = Some(value.into()),
                "SMTP_POOL" => {
                    self.smtp.pool =
                        u32::try_from(number(value)?).map_err(|_| invalid("too large".into()))?;
                }
                "SMTP_RATE" => {
                    self.smtp.rate = value
                        .trim()
                        .parse()
                        .map_err(|_| invalid(format!("`{value}` is not a number")))?;
                }
                "SMTP_HOURLY_CAP" => {
                    self.smtp.hourly_cap =
                        u32::try_from(number(value)?).map_err(|_| invalid("too large".into()))?;
                }
                "SMTP_RETRY_BASE_MS" => self.smtp.retry_base_ms = number(value)?,
                "SMTP_LEASE_SECS" => self.smtp.lease_secs = number(value)?,
                "SMTP_CONNECT_TIMEOUT_SECS" => self.smtp.connect_timeout_secs = number(value)?,
                "SMTP_GREETING_TIMEOUT_SECS" => self.smtp.greeting_timeout_secs = number(value)?,
                "SMTP_MAIL_TIMEOUT_SECS" => self.smtp.mail_timeout_secs = number(value)?,
                "SMTP_RCPT_TIMEOUT_SECS" => self.smtp.rcpt_timeout_secs = number(value)?,
                "SMTP_DATA_TIMEOUT_SECS" => self.smtp.data_timeout_secs = number(value)?,
                "SMTP_DATA_BLOCK_TIMEOUT_SECS" => {
                    self.smtp.data_block_timeout_secs = number(value)?;
                }
                "SMTP_DATA_END_TIMEOUT_SECS" => self.smtp.data_end_timeout_secs = number(value)?,
                "SMTP_MAX_ATTEMPTS" => {
                    self.smtp.max_attempts =
                        u32::try_from(number(value)?).map_err(|_| invalid("too large".into()))?;
                }
                "DKIM_DOMAIN" | "DKIM_SELECTOR" | "DKIM_KEY_FILE" => {
                    let dkim = self.dkim.get_or_insert_with(|| DkimConfig {
                        domain: String::new(),
                        selector: String::new(),
                        key_file: PathBuf::new(),
                    });
                    match rest {
                        "DKIM_DOMAIN" => dkim.domain = value.clone(),
                        "DKIM_SELECTOR" => dkim.selector = value.clone(),
                        _ => dkim.key_file = value.into(),
                    }
                }
                "SERVER_LISTEN" => self.server.listen = value.clone(),
                "SECRET" => self.server.secret = Some(secret_from_env(name, value)?),
                "SERVER_SECRET_FILE" => self.server.secret_file = Some(value.into()),
                // A path list, like PATH: `old.key:older.key`.
                "SERVER_PREVIOUS_SECRET_FILES" => {
                    self.server.previous_secret_files = std::env::split_paths(value).collect();
                }
                "SERVER_ARCHIVE_DIR" => self.server.archive_dir = value.into(),
                "SERVER_CONFIRM_TTL_HOURS" => self.server.confirm_ttl_hours = number(value)?,
                "SERVER_SUBSCRIBE_LIMIT_PER_HOUR" => {
                    self.server.subscribe_limit_per_hour =
                        u32::try_from(number(value)?).map_err(|_| invalid("too large".into()))?;
                }
                "SERVER_CONFIRM_COOLDOWN_MINUTES" => {
                    self.server.confirm_cooldown_minutes = number(value)?;
                }
                "SERVER_HEADER_TIMEOUT_SECS" => self.server.header_timeout_secs = number(value)?,
                "SERVER_BODY_TIMEOUT_SECS" => self.server.body_timeout_secs = number(value)?,
                "SERVER_MAX_CONNECTIONS" => {
                    self.server.max_connections =
                        u32::try_from(number(value)?).map_err(|_| invalid("too large".into()))?;
                }
                "SERVER_CLIENT_IP_HEADER" => {
                    self.server.client_ip_header =
                        Some(value.clone()).filter(|v| !v.trim().is_empty());
                }
                _ => warnings.push(unknown_env_warning(name)),
            }
        }
        Ok(warnings)
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
        if let Some(p) = self.server.secret_file.as_mut() {
            fix(p);
        }
        self.server.previous_secret_files.iter_mut().for_each(fix);
        fix(&mut self.server.archive_dir);
        if let Some(d) = self.dkim.as_mut() {
            fix(&mut d.key_file);
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

    /// The database URL: no credentials (checked first, so that no message prints them), and
    /// a scheme the store supports.
    fn validate_database(&self, origin: String) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        };
        let db = &self.database.url;
        if has_userinfo(db) {
            return Err(invalid(format!(
                "`{}` holds a user name or password; bulletin never takes credentials in a URL, \
                 where they end up in logs and error messages (and a sqlite:// file needs none): \
                 remove them",
                redact_url(db)
            )));
        }
        if !db.starts_with("sqlite:") {
            return Err(invalid(if db.starts_with("postgres") {
                format!(
                    "`{db}`: PostgreSQL is not supported yet; use a sqlite:// URL such as sqlite://bulletin.db"
                )
            } else {
                format!("`{db}` is not a database URL; use sqlite://bulletin.db")
            }));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |section: &str, key: &str, message: String| ConfigError::Invalid {
            origin: self.origin(section, key),
            message,
        };
        self.validate_database(self.origin("database", "url"))?;
        // Credentials first, so that no later message can print them.
        if has_userinfo(&self.smtp.url) {
            return Err(invalid(
                "smtp",
                "url",
                format!(
                    "`{}` holds a user name or password; bulletin never takes credentials in a \
                     URL, where they end up in logs and error messages: set [smtp] username, and \
                     the password in BULLETIN_SMTP_PASSWORD or a file named by [smtp] password_file",
                    redact_url(&self.smtp.url)
                ),
            ));
        }
        let smtp = &self.smtp.url;
        if !(smtp.starts_with("smtp://") || smtp.starts_with("smtps://")) {
            return Err(invalid(
                "smtp",
                "url",
                format!(
                    "`{smtp}` must start with smtp:// or smtps:// (e.g. smtp://127.0.0.1:2525)"
                ),
            ));
        }
        if self.smtp.pool == 0 {
            return Err(invalid("smtp", "pool", "must be at least 1".into()));
        }
        if !(self.smtp.rate.is_finite() && self.smtp.rate >= 0.0) {
            return Err(invalid(
                "smtp",
                "rate",
                "must be 0 (no limit) or a positive number of messages per second".into(),
            ));
        }
        for (key, value) in [
            ("lease_secs", self.smtp.lease_secs),
            ("connect_timeout_secs", self.smtp.connect_timeout_secs),
            ("greeting_timeout_secs", self.smtp.greeting_timeout_secs),
            ("mail_timeout_secs", self.smtp.mail_timeout_secs),
            ("rcpt_timeout_secs", self.smtp.rcpt_timeout_secs),
            ("data_timeout_secs", self.smtp.data_timeout_secs),
            ("data_block_timeout_secs", self.smtp.data_block_timeout_secs),
            ("data_end_timeout_secs", self.smtp.data_end_timeout_secs),
        ] {
            if value == 0 {
                return Err(invalid("smtp", key, "must be at least 1 (seconds)".into()));
            }
        }
        if self.smtp.max_attempts == 0 {
            return Err(invalid("smtp", "max_attempts", "must be at least 1".into()));
        }
        let url = &self.list.public_url;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(
                "list",
                "public_url",
                format!("`{url}` must be an absolute http(s) URL, e.g. https://news.example.org"),
            ));
        }
        for (key, value) in [("name", &self.list.name), ("id", &self.list.id)] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(invalid(
                    "list",
                    key,
                    "must be non-empty text on one line (it goes into mail headers)".into(),
                ));
            }
        }
        if self.server.confirm_ttl_hours == 0 {
            return Err(invalid(
                "server",
                "confirm_ttl_hours",
                "must be at least 1 (168 = 7 days is usual)".into(),
            ));
        }
        for (key, value, hint) in [
            ("header_timeout_secs", self.server.header_timeout_secs, "10"),
            ("body_timeout_secs", self.server.body_timeout_secs, "10"),
            (
                "max_connections",
                u64::from(self.server.max_connections),
                "512",
            ),
        ] {
            if value == 0 {
                return Err(invalid(
                    "server",
                    key,
                    format!("must be at least 1 ({hint} is usual)"),
                ));
            }
        }
        if let Some(d) = &self.dkim {
            for (key, empty) in [
                ("domain", d.domain.is_empty()),
                ("selector", d.selector.is_empty()),
                ("key_file", d.key_file.as_os_str().is_empty()),
            ] {
                if empty {
                    return Err(invalid(
                        "dkim",
                        key,
                        "is required when DKIM signing is configured".into(),
                    ));
                }
            }
        }
        Ok(())
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

/// A secret from the environment; one that is empty or only whitespace is refused rather
/// than used (an `export X= ` by mistake would otherwise sign links with nothing).
fn secret_from_env(name: &str, value: &str) -> Result<Secret, ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::Invalid {
            origin: name.to_string(),
            message: "is set but empty or only whitespace; set the secret itself, or unset the \
                      variable"
                .into(),
        });
    }
    Ok(Secret::new(value))
}

/// `section.key` for a `BULLETIN_SECTION_KEY` variable name (after `BULLETIN_`), when it
/// names a key of the file.
fn env_key(rest: &str) -> Option<String> {
    KNOWN_KEYS.iter().find_map(|(section, keys)| {
        let key = rest
            .strip_prefix(&section.to_uppercase())?
            .strip_prefix('_')?;
        keys.iter()
            .find(|k| k.to_uppercase() == key)
            .map(|k| format!("{section}.{k}"))
    })
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

fn unknown_env_warning(name: &str) -> String {
    let mut known: Vec<String> = OTHER_ENV.iter().map(|s| s.to_string()).collect();
    for (section, keys) in KNOWN_KEYS {
        for key in *keys {
            known.push(format!("BULLETIN_{}_{}", section, key).to_uppercase());
        }
    }
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    match closest(name, &refs) {
        Some(best) => {
            format!("environment variable {name} is not used by bulletin; did you mean {best}?")
        }
        None => format!("environment variable {name} is not used by bulletin"),
    }
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
