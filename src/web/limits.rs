//! The per-client limit on subscription requests: each one can make us send a mail, so one
//! client must not be able to make us send many (to one victim, or to thousands).
//!
//! A fixed one-hour window per client address, in memory: simple, and enough for one process
//! behind a proxy. IPv6 clients are counted per /64, because one host usually holds a whole
//! /64 and could otherwise take a fresh address for every request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3600);
/// Above this many tracked clients, expired windows are swept before inserting.
const SWEEP_AT: usize = 10_000;

/// Counts requests per client and window.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_window: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    /// At most `per_hour` requests per client and hour; 0 disables the form entirely.
    pub(crate) fn new(per_hour: u32) -> Self {
        Self {
            per_window: per_hour,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `ip` and says whether it is within the limit.
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let key = bucket(ip);
        // A panic while holding the lock leaves a map of counters that is still valid.
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.per_window
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
    fn limit_per_client_and_window() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(limiter.allow(a, t0));
        assert!(limiter.allow(a, t0));
        assert!(!limiter.allow(a, t0));
        assert!(limiter.allow(b, t0));
        assert!(limiter.allow(a, t0 + WINDOW));
    }

    #[test]
    fn ipv6_counts_per_64() {
        let limiter = RateLimiter::new(1);
        let t0 = Instant::now();
        assert!(limiter.allow("2001:db8::1".parse().expect("ip"), t0));
        assert!(!limiter.allow("2001:db8::ffff:2".parse().expect("ip"), t0));
        assert!(limiter.allow("2001:db8:0:1::1".parse().expect("ip"), t0));
    }
}
