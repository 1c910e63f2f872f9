//! Integration tests of `send` and `campaigns`: the real binary, a real SQLite file, and a
//! real SMTP server process (aiosmtpd, installed by `.ci/run`) receiving into a Maildir.

mod campaigns;
mod dkim;
mod hardening;
mod hosts;
mod report;
mod schedule;
mod smtp;
mod unsubscribe;
mod worker_caps;
mod workers;

use bulletin_testkit::dkim as dkim_support;
use bulletin_testkit::project as support;
use bulletin_testkit::smtp as smtp_server;
