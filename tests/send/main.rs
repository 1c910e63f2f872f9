//! Integration tests of `send` and `campaigns`: the real binary, a real SQLite file, and a
//! real SMTP server process (aiosmtpd, installed by `.ci/run`) receiving into a Maildir.

#[path = "../foundation/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "../support/dkim.rs"]
mod dkim_support;

mod campaigns;
mod dkim;
mod hardening;
mod report;
mod smtp;
mod smtp_server;
mod unsubscribe;
