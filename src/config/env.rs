//! `BULLETIN_<SECTION>_<KEY>` environment variables: each overrides one key of the file, and
//! one that bulletin does not use is a warning with the closest variable it does use.
//!
//! The environment is also the only place besides a `*_file` for secrets, which is why the
//! two secret variables have no key of the file to override.

use std::path::PathBuf;

use super::{BouncesConfig, Config, ConfigError, DkimConfig, KNOWN_KEYS, Secret};
use crate::diagnostic::closest;

/// Environment variables that are not `BULLETIN_<SECTION>_<KEY>` but still belong to us.
const OTHER_ENV: &[&str] = &[
    "BULLETIN_CONFIG",
    "BULLETIN_SMTP_PASSWORD",
    "BULLETIN_SECRET",
    "BULLETIN_LOG",
    "BULLETIN_BOUNCES_IMAP_PASSWORD",
    // `bulletin doctor --nameserver`.
    "BULLETIN_DOCTOR_NAMESERVER",
];

impl Config {
    /// Applies `BULLETIN_<SECTION>_<KEY>` overrides; returns warnings for unknown variables.
    pub(super) fn apply_env(
        &mut self,
        env: &[(String, String)],
    ) -> Result<Vec<String>, ConfigError> {
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
                "CONFIG" | "LOG" | "DOCTOR_NAMESERVER" => {}
                "DATABASE_URL" => self.database.url = value.clone(),
                "DATABASE_BUSY_TIMEOUT_MS" => self.database.busy_timeout_ms = number(value)?,
                "DATABASE_PASSWORD" => self.database.password = Some(secret_from_env(name, value)?),
                "DATABASE_PASSWORD_FILE" => self.database.password_file = Some(value.into()),
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
                "BOUNCES_DOMAIN"
                | "BOUNCES_LOCAL_PART"
                | "BOUNCES_SOFT_LIMIT"
                | "BOUNCES_MAILDIR"
                | "BOUNCES_MBOX"
                | "BOUNCES_IMAP_URL"
                | "BOUNCES_IMAP_USERNAME"
                | "BOUNCES_IMAP_PASSWORD_FILE"
                | "BOUNCES_IMAP_PASSWORD" => {
                    let b = self.bounces.get_or_insert_with(|| BouncesConfig {
                        domain: String::new(),
                        local_part: "bounces".into(),
                        soft_limit: 3,
                        maildir: None,
                        mbox: None,
                        imap_url: None,
                        imap_username: None,
                        imap_password_file: None,
                        imap_password: None,
                    });
                    match rest {
                        "BOUNCES_DOMAIN" => b.domain = value.clone(),
                        "BOUNCES_LOCAL_PART" => b.local_part = value.clone(),
                        "BOUNCES_SOFT_LIMIT" => {
                            b.soft_limit = u32::try_from(number(value)?)
                                .map_err(|_| invalid("too large".into()))?;
                        }
                        "BOUNCES_MAILDIR" => b.maildir = Some(value.into()),
                        "BOUNCES_MBOX" => b.mbox = Some(value.into()),
                        "BOUNCES_IMAP_URL" => b.imap_url = Some(value.clone()),
                        "BOUNCES_IMAP_USERNAME" => b.imap_username = Some(value.clone()),
                        "BOUNCES_IMAP_PASSWORD_FILE" => {
                            b.imap_password_file = Some(value.into());
                        }
                        _ => b.imap_password = Some(secret_from_env(name, value)?),
                    }
                }
                _ => warnings.push(unknown_env_warning(name)),
            }
        }
        Ok(warnings)
    }
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
