//! bulletin: compose newsletter editions from article records and mail them to subscriber
//! lists, one personalised message per subscriber, exactly once.
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that tests and benchmarks
//! call the same code the command line does. Modules, in the order data flows through them,
//! are described in `ARCHITECTURE.md`; each library module has its own error enum.

pub mod address;
pub mod assets;
pub mod cli;
pub mod clicks;
pub mod config;
pub mod content;
pub mod delivery;
mod diagnostic;
pub mod doctor;
pub mod feedback;
pub mod i18n;
pub mod mail;
pub mod render;
pub mod store;
pub mod subscriber_csv;
pub mod subscriber_input;
pub mod token;
pub mod web;
