//! The subscription form's per-client limit, counted in the database so that every `serve`
//! instance on one store counts together (and a restart does not forget).
//!
//! One atomic upsert per request: it starts a new window when the client's last one is over,
//! else adds one to it, and returns the count. Both backends run it as a single statement
//! that locks the client's row, so two instances counting the same client at once never lose
//! a request.

use std::time::Duration;

use super::{Store, StoreError, now, timestamp};

impl Store {
    /// Counts one request from `client` (an address bucket, hashed before it is stored) and
    /// returns how many it has made in its current window of `window`, this one included.
    /// Windows that ended are deleted on the way.
    pub async fn count_form_request(
        &self,
        client: &str,
        window: Duration,
    ) -> Result<u32, StoreError> {
        let now_text = now();
        let cutoff = timestamp(
            time::OffsetDateTime::now_utc()
                - time::Duration::try_from(window).unwrap_or(time::Duration::HOUR),
        );
        let key = client_hash(client);
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO form_rate_windows (client_hash, window_start, requests) VALUES ($1, $2, 1)
             ON CONFLICT (client_hash) DO UPDATE SET
                 requests = CASE WHEN form_rate_windows.window_start <= $3 THEN 1
                                 ELSE form_rate_windows.requests + 1 END,
                 window_start = CASE WHEN form_rate_windows.window_start <= $3 THEN $2
                                     ELSE form_rate_windows.window_start END
             RETURNING requests",
        )
        .bind(&key)
        .bind(&now_text)
        .bind(&cutoff)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.classify(e))?;
        // Other clients' ended windows: nothing to count any more, and an address (even
        // hashed) is not kept longer than it is needed.
        sqlx::query("DELETE FROM form_rate_windows WHERE window_start <= $1")
            .bind(&cutoff)
            .execute(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }
}

/// The stored form of a client bucket: a SHA-256, so the table holds no address in clear.
fn client_hash(client: &str) -> String {
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    hasher.update(b"bulletin-form-client:");
    hasher.update(client.as_bytes());
    let mut out = String::with_capacity(64);
    super::subscribers::push_lower_hex(hasher.finish().as_ref(), &mut out);
    out
}
