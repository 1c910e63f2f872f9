//! The per-client limit on subscription requests: each one can make us send a mail, so one
//! client must not be able to make us send many (to one victim, or to thousands).
//!
//! A fixed one-hour window per client address, counted in the database
//! (`Store::count_form_request`), so that several `serve` instances behind a load balancer
//! share one count and a restart does not reset it. IPv6 clients are counted per /64, because
//! one host usually holds a whole /64 and could otherwise take a fresh address for every
//! request.

use std::net::IpAddr;
use std::time::Duration;

use crate::store::{Store, StoreError};

const WINDOW: Duration = Duration::from_secs(3600);

/// The limit on requests per client and window.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_window: u32,
}

impl RateLimiter {
    /// At most `per_hour` requests per client and hour; 0 disables the form entirely.
    pub(crate) fn new(per_hour: u32) -> Self {
        Self {
            per_window: per_hour,
        }
    }

    /// Counts one request from `ip` and says whether it is within the limit.
    pub(crate) async fn allow(&self, store: &Store, ip: IpAddr) -> Result<bool, StoreError> {
        if self.per_window == 0 {
            return Ok(false);
        }
        let count = store
            .count_form_request(&bucket(ip).to_string(), WINDOW)
            .await?;
        Ok(count <= self.per_window)
    }
}

/// The unit counted: the address for IPv4, its /64 for IPv6.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let b = |s: &str| bucket(s.parse().expect("ip")).to_string();
        assert_eq!(b("2001:db8::1"), b("2001:db8::ffff:2"));
        assert_ne!(b("2001:db8::1"), b("2001:db8:0:1::1"));
        assert_eq!(b("::ffff:192.0.2.1"), "192.0.2.1");
        assert_ne!(b("192.0.2.1"), b("192.0.2.2"));
    }

    #[tokio::test]
    async fn limit_per_client_and_window_in_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let store = Store::open(&url, 5_000).await.expect("store");
        let limiter = RateLimiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(limiter.allow(&store, a).await.expect("count"));
        assert!(limiter.allow(&store, a).await.expect("count"));
        assert!(!limiter.allow(&store, a).await.expect("count"));
        assert!(limiter.allow(&store, b).await.expect("count"));
        // A window that began more than an hour ago is over: the next request starts anew.
        sqlx::query("UPDATE form_rate_windows SET window_start = '2000-01-01T00:00:00.000Z'")
            .execute(store.pool())
            .await
            .expect("age the windows");
        assert!(limiter.allow(&store, a).await.expect("count"));
        assert!(!RateLimiter::new(0).allow(&store, b).await.expect("count"));
    }
}
