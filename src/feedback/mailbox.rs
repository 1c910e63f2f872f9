//! Where bounces are read from: a Maildir folder, an mbox file or an IMAP mailbox
//! ([`super::imap`]).
//!
//! A Maildir message that was handled is moved to `cur/` with the Seen flag (`:2,S`), as a
//! mail program would after reading it, so that a person looking at the mailbox sees what is
//! left to read; nothing is ever deleted. An mbox file is only read: rewriting it would race
//! with the mail system appending to it. What makes a second run do nothing twice, for both,
//! is the database: every handled message's SHA-256 is recorded, and a message already
//! recorded is skipped.

use std::path::{Path, PathBuf};

use super::FeedbackError;

/// A bounce mailbox.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Maildir folder (with `new/`, `cur/` and `tmp/`).
    Maildir(PathBuf),
    /// An mbox file.
    Mbox(PathBuf),
    /// An IMAP mailbox.
    Imap(super::imap::ImapSource),
}

/// One message read from a source.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where it was read, for the report and the `feedback` row.
    pub origin: String,
    /// The message.
    pub bytes: Vec<u8>,
    /// The Maildir file, to move once handled.
    file: Option<PathBuf>,
    /// The IMAP UID, to flag once handled.
    uid: Option<u32>,
}

impl Item {
    /// A message fetched over IMAP.
    pub(super) fn from_imap(origin: String, bytes: Vec<u8>, uid: u32) -> Self {
        Self {
            origin,
            bytes,
            file: None,
            uid: Some(uid),
        }
    }

    /// SHA-256 of the message, in hex: the same message read again has the same key.
    pub fn key(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.bytes);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Source {
    /// The source, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Maildir(p) => format!("Maildir {}", p.display()),
            Self::Mbox(p) => format!("mbox {}", p.display()),
            Self::Imap(i) => i.describe(),
        }
    }

    /// Every message in the source, oldest name first.
    pub async fn read(&self) -> Result<Vec<Item>, FeedbackError> {
        match self {
            Self::Maildir(dir) => read_maildir(dir),
            Self::Mbox(file) => read_mbox(file),
            Self::Imap(i) => i.read().await,
        }
    }

    /// Marks handled messages as read (Maildir, IMAP); nothing for an mbox.
    pub async fn mark_handled(&self, items: &[&Item]) -> Result<(), FeedbackError> {
        match self {
            Self::Maildir(dir) => items.iter().try_for_each(|item| mark_maildir(dir, item)),
            Self::Mbox(_) => Ok(()),
            Self::Imap(i) => {
                let uids: Vec<u32> = items.iter().filter_map(|item| item.uid).collect();
                i.mark_handled(&uids).await
            }
        }
    }
}

/// Moves a handled Maildir message to `cur/` with the Seen flag.
fn mark_maildir(dir: &Path, item: &Item) -> Result<(), FeedbackError> {
    let Some(file) = &item.file else {
        return Ok(());
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (unique, flags) = name.split_once(":2,").unwrap_or((&name, ""));
    let mut flags: Vec<char> = flags.chars().filter(char::is_ascii_alphabetic).collect();
    if !flags.contains(&'S') {
        flags.push('S');
    }
    flags.sort_unstable();
    let flags: String = flags.into_iter().collect();
    let target = dir.join("cur").join(format!("{unique}:2,{flags}"));
    if &target == file {
        return Ok(());
    }
    std::fs::rename(file, &target).map_err(|source| FeedbackError::Io {
        path: file.clone(),
        source,
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FeedbackError + '_ {
    move |source| FeedbackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_maildir(dir: &Path) -> Result<Vec<Item>, FeedbackError> {
    if !dir.join("new").is_dir() || !dir.join("cur").is_dir() {
        return Err(FeedbackError::NotMaildir(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        let folder = dir.join(sub);
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let path = entry.map_err(io(&folder))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            Ok(Item {
                origin: format!("maildir:{}", path.display()),
                bytes,
                file: Some(path),
                uid: None,
            })
        })
        .collect()
}

fn read_mbox(file: &Path) -> Result<Vec<Item>, FeedbackError> {
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(io(file))?);
    mail_parser::mailbox::mbox::MessageIterator::new(reader)
        .enumerate()
        .map(|(i, message)| {
            let message = message.map_err(io(file))?;
            Ok(Item {
                origin: format!("mbox:{}#{}", file.display(), i + 1),
                bytes: message.unwrap_contents(),
                file: None,
                uid: None,
            })
        })
        .collect()
}
