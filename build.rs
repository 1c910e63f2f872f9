//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time but does not tell Cargo to watch them, so a new migration
//! would otherwise be missing from an incremental build (the one a developer just made).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
