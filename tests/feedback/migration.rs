//! Migration 0007 rebuilds `deliveries` (SQLite cannot widen a CHECK in place); the attempt
//! log references it with ON DELETE CASCADE, so a careless rebuild would empty the log.

use std::path::Path;

use bulletin_testkit::project::sqlite_only;
use bulletin_testkit::smtp::SmtpServer;

use crate::project;

#[test]
fn migration_0007_keeps_every_delivery_and_every_attempt() {
    if sqlite_only("SQLite's rebuild of deliveries in its migration 0007") {
        return;
    }
    let p = project(
        &["kay@example.com", "lou@example.com"],
        Path::new("unused"),
        "",
    );
    let server = SmtpServer::start(p.path());
    crate::send(&p, &server.url());
    let attempts = p.strings(
        "SELECT delivery_id || ':' || attempt || ':' || outcome || ':' || reply
         FROM delivery_attempts ORDER BY id",
    );
    let deliveries =
        p.strings("SELECT id || ':' || status || ':' || message_id FROM deliveries ORDER BY id");
    assert_eq!(attempts.len(), 2);
    // Back to the schema before 0007, keeping the data: then any command applies it again.
    p.execute(
        "DROP TABLE feedback;
         DELETE FROM _sqlx_migrations WHERE version = 7;",
    );
    p.ok(&["lists", "list"]);
    assert_eq!(
        p.scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 7"),
        1,
        "0007 ran again"
    );
    assert_eq!(
        p.strings(
            "SELECT delivery_id || ':' || attempt || ':' || outcome || ':' || reply
             FROM delivery_attempts ORDER BY id",
        ),
        attempts
    );
    assert_eq!(
        p.strings("SELECT id || ':' || status || ':' || message_id FROM deliveries ORDER BY id"),
        deliveries
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
}
