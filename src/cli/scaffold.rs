//! `bulletin init`: a new project folder with a commented configuration to edit.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use super::{Outcome, UsageError};

/// Arguments of `bulletin init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to set up (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// The configuration a new project starts with: every key, its default, and what it does.
const CONFIG_TEMPLATE: &str = r#"# bulletin configuration. Every key is optional; the values shown are examples.
# Secrets never go here: set BULLETIN_SMTP_PASSWORD and BULLETIN_SECRET in the environment,
# or point password_file / secret_file at files only the sender can read.

[list]                                            # the identity of the newsletter
name = "Our Newsletter"
id = "newsletter.example.org"                     # List-Id header (RFC 2919)
from = "Our Newsletter <newsletter@example.org>"
reply_to = "team@example.org"
postal_address = "1 Example Street, 1000 Example City"   # shown in every footer
public_url = "http://127.0.0.1:8080"              # base of unsubscribe/confirm/archive links

[database]
url = "sqlite://bulletin.db"                      # relative to this file's folder
busy_timeout_ms = 5000

[smtp]
url = "smtp://127.0.0.1:2525"                     # smtps://host:465, smtp://host:587?tls=required
# username = "newsletter"                         # password: BULLETIN_SMTP_PASSWORD or password_file
# password_file = "/run/secrets/smtp-password"
pool = 8                                          # connections
rate = 0                                          # messages per second, 0 = as fast as the relay allows
hourly_cap = 0                                    # messages per hour, 0 = no cap
max_attempts = 5                                  # per message, for temporary failures

# [dkim]
# domain = "example.org"
# selector = "news"
# key_file = "dkim.pem"                           # RSA (PKCS#1 or PKCS#8 PEM) or Ed25519

[server]
listen = "127.0.0.1:8080"                         # token secret: BULLETIN_SECRET or secret_file
"#;

const SAMPLE_CSV: &str = "email,name,lang,lists\nana.lima@example.org,Ana Lima,pt,news\n";

/// Creates the folders and files that do not exist yet; never overwrites.
pub(crate) fn init(args: &InitArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let dir = &args.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(UsageError(format!("{} exists and is not a folder", dir.display())).into());
    }
    let mut created = Vec::new();
    for sub in ["", "templates", "editions", "subscribers"] {
        let path = dir.join(sub);
        if !path.exists() {
            std::fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            if !sub.is_empty() {
                created.push(path);
            }
        }
    }
    for (name, text) in [
        ("bulletin.toml", CONFIG_TEMPLATE),
        ("subscribers/example.csv", SAMPLE_CSV),
    ] {
        let path = dir.join(name);
        if write_new(&path, text)? {
            created.push(path);
        } else if !quiet {
            eprintln!("kept existing {}", path.display());
        }
    }
    if !quiet {
        for path in &created {
            eprintln!("created {}", path.display());
        }
        eprintln!(
            "next: edit {}, then `bulletin lists add news` and `bulletin subscribers import subscribers/example.csv`",
            dir.join("bulletin.toml").display()
        );
    }
    Ok(Outcome::Success)
}

/// Writes `text` to `path` unless the file exists; true when written.
fn write_new(path: &Path, text: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_is_a_valid_configuration() {
        let c = crate::config::Config::parse(super::CONFIG_TEMPLATE, std::path::Path::new("t"))
            .expect("the scaffolded bulletin.toml must load");
        assert_eq!(c.smtp.pool, 8);
    }
}
