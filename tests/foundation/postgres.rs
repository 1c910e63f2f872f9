//! What only a PostgreSQL store has: a server reached over TLS (`sslmode`, `sslrootcert`), a
//! password that comes from a file or the environment and is never printed, and the errors a
//! server gives (a wrong password, a refused plain connection, a certificate for another
//! name), each named with its fix.
//!
//! They run in the PostgreSQL pass of `./test.sh`, against the throw-away server it starts with
//! TLS on and a password role (`BULLETIN_TEST_POSTGRES_TLS_CA`,
//! `BULLETIN_TEST_POSTGRES_PASSWORD_FILE`); the SQLite pass has no server to ask.

use std::path::Path;
use std::process::Command;

use bulletin_testkit::backend::{self, Backend};

/// The role `./test.sh` creates with a password, allowed in over TLS only.
const ROLE: &str = "bulletin_pw";

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: ./test.sh starts a PostgreSQL server with TLS and a password role and sets it")
    })
}

/// The test server's port, from the admin URL.
fn port() -> String {
    let url = backend::admin_url();
    let after = url.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
    after.split('/').next().unwrap_or_default().to_string()
}

/// The binary in `dir` with no `BULLETIN_*` variable but `env`.
fn bulletin(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulletin"));
    cmd.current_dir(dir);
    for key in bulletin_testkit::bulletin_vars() {
        cmd.env_remove(key);
    }
    let out = cmd
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("bulletin runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn tls_with_a_verified_certificate_and_a_password_from_a_file_or_the_environment() {
    if Backend::current() != Backend::Postgres {
        eprintln!("a PostgreSQL server's TLS and passwords: runs in the PostgreSQL pass");
        return;
    }
    let ca = required("BULLETIN_TEST_POSTGRES_TLS_CA");
    let password_file = required("BULLETIN_TEST_POSTGRES_PASSWORD_FILE");
    let password = std::fs::read_to_string(&password_file).expect("password file");
    let password = password.trim();
    let database = bulletin_testkit::block_on(backend::create_database());
    // The role owns its database, as an operator's `createdb -O bulletin bulletin` does.
    bulletin_testkit::block_on(async {
        use sqlx::Executor;
        let mut admin = backend::admin_connection().await;
        admin
            .execute(format!("ALTER DATABASE {database} OWNER TO {ROLE}").as_str())
            .await
            .expect("owner");
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let port = port();
    let url = |host: &str, mode: &str| {
        format!("postgres://{ROLE}@{host}:{port}/{database}?sslmode={mode}&sslrootcert={ca}")
    };
    let verified = url("localhost", "verify-full");
    std::fs::write(dir.path().join("db-password"), format!("{password}\n")).expect("write");
    std::fs::write(
        dir.path().join("bulletin.toml"),
        format!("[database]\nurl = \"{verified}\"\npassword_file = \"db-password\"\n"),
    )
    .expect("config");

    // The password from the file, over TLS with the certificate checked against its CA.
    let (code, out) = bulletin(dir.path(), &[], &["lists", "add", "news"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = bulletin(dir.path(), &[], &["-v", "lists", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("news"), "{out}");
    assert!(!out.contains(password), "the password was printed: {out}");

    // The environment wins over the file; a wrong one is refused by the server, named as
    // such with both places to fix it, and never shown.
    let wrong = "not-the-password-at-all";
    let (code, out) = bulletin(
        dir.path(),
        &[("BULLETIN_DATABASE_PASSWORD", wrong)],
        &["lists", "list"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused the user name or password")
            && out.contains("BULLETIN_DATABASE_PASSWORD")
            && out.contains("password_file"),
        "{out}"
    );
    assert!(!out.contains(wrong) && !out.contains(password), "{out}");

    // A certificate for another name: verify-full refuses 127.0.0.1 (the certificate says
    // localhost), before any password is sent.
    let (code, out) = bulletin(
        dir.path(),
        &[("BULLETIN_DATABASE_URL", &url("127.0.0.1", "verify-full"))],
        &["lists", "list"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("sslmode"), "{out}");
    assert!(!out.contains(password), "{out}");

    // Without TLS the server does not let this role in at all (pg_hba: hostssl only).
    let (code, out) = bulletin(
        dir.path(),
        &[("BULLETIN_DATABASE_URL", &url("localhost", "disable"))],
        &["lists", "list"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains(password), "{out}");

    // A password written into the URL is refused before any connection, and not echoed.
    let with_password = verified.replace(&format!("{ROLE}@"), &format!("{ROLE}:{password}@"));
    let (code, out) = bulletin(
        dir.path(),
        &[("BULLETIN_DATABASE_URL", &with_password)],
        &["lists", "list"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains(password), "the password was printed: {out}");
    assert!(out.contains("BULLETIN_DATABASE_PASSWORD"), "{out}");
}

#[test]
fn a_database_that_does_not_exist_is_named_with_the_fix() {
    if Backend::current() != Backend::Postgres {
        eprintln!("a PostgreSQL server's errors: runs in the PostgreSQL pass");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bulletin.toml"), "").expect("config");
    let url = backend::with_database(&backend::admin_url(), "no_such_database_here");
    let (code, out) = bulletin(
        dir.path(),
        &[("BULLETIN_DATABASE_URL", &url)],
        &["lists", "list"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("createdb"), "{out}");
    // serve on a server that is not there: named, with what to check.
    let (code, out) = bulletin(
        dir.path(),
        &[(
            "BULLETIN_DATABASE_URL",
            "postgres://127.0.0.1:9/bulletin?user=nobody&connect_timeout=2",
        )],
        &["lists", "list"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("reachable"), "{out}");
}
