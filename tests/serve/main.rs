//! Integration tests of `bulletin serve`: the real binary on a loopback port, a real SQLite
//! file, real HTTP written byte by byte, a real SMTP server process (aiosmtpd) for the
//! confirmation mail, and a real headless Chromium clicking the buttons.
//!
//! Nothing here skips: a missing aiosmtpd or Chromium fails the test with the command that
//! installs it, because a check that silently does not run proves nothing.

mod archive;
mod assets;
mod browser;
mod clicks;
mod consent;
mod cross_stage;
mod instances;
mod journey;
mod languages;
mod list_names;
mod one_click;
mod preferences;
mod robustness;
mod subscribe;
mod support;
mod test_copy;

use bulletin_testkit::dkim as dkim_support;
