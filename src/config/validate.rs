//! Checks of values that parse but make no sense: a URL of the wrong scheme or with
//! credentials in it, a zero pool or timeout, an empty list name, half a DKIM setup.
//!
//! Each message names where the value came from (the file's key or the environment
//! variable that set it), because that is where it has to be fixed.

use super::{Config, ConfigError, has_password, has_userinfo, redact_url};

impl Config {
    /// The database URL: no password (checked first, so that no message prints it; a
    /// PostgreSQL URL may name its user), and a scheme the store supports.
    pub(super) fn validate_database(&self, origin: String) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        };
        let db = &self.database.url;
        let postgres = db.starts_with("postgres://") || db.starts_with("postgresql://");
        if postgres && has_password(db) {
            return Err(invalid(format!(
                "`{}` holds a password; bulletin never takes one in a URL, where it ends up in \
                 logs and error messages: keep the user name and set BULLETIN_DATABASE_PASSWORD \
                 or [database] password_file",
                redact_url(db)
            )));
        }
        if !postgres && has_userinfo(db) {
            return Err(invalid(format!(
                "`{}` holds a user name or password; bulletin never takes credentials in a URL, \
                 where they end up in logs and error messages (and a sqlite:// file needs none): \
                 remove them",
                redact_url(db)
            )));
        }
        if !db.starts_with("sqlite:") && !postgres {
            return Err(invalid(format!(
                "`{db}` is not a database URL; use sqlite://bulletin.db or postgres://USER@HOST/DATABASE"
            )));
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        if let Some(url) = &self.assets.base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(
                    "assets",
                    "base_url",
                    format!(
                        "`{url}` must be an absolute http(s) URL, e.g. https://cdn.example.org/news"
                    ),
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
        if let Some(b) = &self.bounces {
            self.validate_bounces(b)?;
        }
        Ok(())
    }

    /// `[bounces]`: the envelope sender built from it must be an address every relay takes.
    fn validate_bounces(&self, b: &super::BouncesConfig) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: self.origin("bounces", key),
            message,
        };
        let domain_ok = b.domain.contains('.')
            && b.domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !domain_ok {
            return Err(invalid(
                "domain",
                format!(
                    "`{}` is not a domain; name the domain whose mail reaches the bounce mailbox, \
                     e.g. bounces.example.org",
                    b.domain
                ),
            ));
        }
        let local_ok = !b.local_part.is_empty()
            && b.local_part.len() <= 16
            && b.local_part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !local_ok {
            return Err(invalid(
                "local_part",
                format!(
                    "`{}` must be 1 to 16 letters, digits, `-`, `_` or `.` (the token follows a `+`)",
                    b.local_part
                ),
            ));
        }
        if b.soft_limit == 0 {
            return Err(invalid(
                "soft_limit",
                "must be at least 1 (3 is usual)".into(),
            ));
        }
        Ok(())
    }
}
