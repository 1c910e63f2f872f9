//! The import's connection: the pool's `Any` connection on SQLite, a native `PgConnection`
//! on PostgreSQL.
//!
//! Why two kinds: on PostgreSQL the bulk of a batch (new subscribers, their subscriptions and
//! events) is written with `COPY … FROM STDIN`, a sub-protocol that sqlx's `Any` driver cannot
//! speak, and the COPY must run inside the same transaction as the batch's lookups and
//! updates, so the whole batch runs on the native connection. The few statements both
//! backends share (lookups, updates) are bound through [`Arg`] and run on either kind, so
//! they are written once.

use sqlx::postgres::PgConnection;
use sqlx::{AnyConnection, Executor};

use crate::store::Backend;

/// One bound value of a shared statement.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    /// An integer.
    Int(i64),
    /// A text.
    Text(&'a str),
    /// A text or NULL.
    OptText(Option<&'a str>),
}

/// The connection a batch runs on (inside its transaction).
pub(super) enum Conn<'c> {
    /// SQLite, through the pool's driver.
    Any(&'c mut AnyConnection),
    /// PostgreSQL, native (for COPY).
    Pg(&'c mut PgConnection),
}

/// `sqlx::query(sql)` with `args` bound, for a driver whose types take them all.
macro_rules! bound {
    ($sql:expr, $args:expr) => {{
        let mut q = sqlx::query($sql);
        for arg in $args {
            q = match *arg {
                Arg::Int(n) => q.bind(n),
                Arg::Text(t) => q.bind(t),
                Arg::OptText(t) => q.bind(t),
            };
        }
        q
    }};
}

/// The same for `sqlx::query_scalar`.
macro_rules! bound_scalar {
    ($ty:ty, $sql:expr, $args:expr) => {{
        let mut q = sqlx::query_scalar::<_, $ty>($sql);
        for arg in $args {
            q = match *arg {
                Arg::Int(n) => q.bind(n),
                Arg::Text(t) => q.bind(t),
                Arg::OptText(t) => q.bind(t),
            };
        }
        q
    }};
}

impl Conn<'_> {
    /// Which server.
    pub(super) fn backend(&self) -> Backend {
        match self {
            Conn::Any(c) => Backend::of(c),
            Conn::Pg(_) => Backend::Postgres,
        }
    }

    /// Runs a statement.
    pub(super) async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<(), sqlx::Error> {
        match self {
            Conn::Any(c) => c.execute(bound!(sql, args)).await.map(|_| ()),
            Conn::Pg(c) => c.execute(bound!(sql, args)).await.map(|_| ()),
        }
    }

    /// The one text a query returns.
    pub(super) async fn text(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<String, sqlx::Error> {
        match self {
            Conn::Any(c) => bound_scalar!(String, sql, args).fetch_one(&mut **c).await,
            Conn::Pg(c) => bound_scalar!(String, sql, args).fetch_one(&mut **c).await,
        }
    }

    /// The integers a query returns (a `BIGINT` column on PostgreSQL).
    pub(super) async fn ints(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<i64>, sqlx::Error> {
        match self {
            Conn::Any(c) => bound_scalar!(i64, sql, args).fetch_all(&mut **c).await,
            Conn::Pg(c) => bound_scalar!(i64, sql, args).fetch_all(&mut **c).await,
        }
    }

    /// The one integer a query returns.
    pub(super) async fn int(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<i64, sqlx::Error> {
        match self {
            Conn::Any(c) => bound_scalar!(i64, sql, args).fetch_one(&mut **c).await,
            Conn::Pg(c) => bound_scalar!(i64, sql, args).fetch_one(&mut **c).await,
        }
    }
}
