//! Integration tests of the foundation: the real `bulletin` binary against real SQLite files
//! in temporary folders (or PostgreSQL databases, see `backend`). One test binary, a module
//! per feature (as mdBook's testsuite does), so the crate is linked once.

mod addresses;
mod backend;
mod config;
mod copy;
mod export;
mod help;
mod import;
mod lists;
mod names;
mod pipes;
mod postgres;
mod secrets;
mod sizes;
mod store;
mod subscribers;

use bulletin_testkit::project as support;
