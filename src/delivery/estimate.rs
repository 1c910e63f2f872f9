//! How long a send will take, said before it starts (`send --dry-run`): from the configured
//! rate, the relay's speed measured on the last campaign, and the hourly cap.
//!
//! The relay's speed is taken from what it did, not from a trial: a calibration send would
//! have to deliver real messages to somebody, and a NOOP round trip says nothing about how fast
//! a relay takes 60 KB messages. Without a previous campaign the estimate says so and gives the
//! configured rate's figure, or none when there is no limit.

use std::time::Duration;

use serde::Serialize;

use crate::store::SendTiming as Measured;

/// What the estimate is based on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// `[smtp] rate` (or `--rate`), slower than anything measured.
    ConfiguredRate,
    /// The speed the relay took the last finished campaign at.
    Measured,
    /// Nothing limits the rate and nothing was measured yet: no duration can be given.
    Unknown,
}

/// The expected duration of a send, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Messages to send.
    pub messages: u64,
    /// Messages per second the estimate assumes; `None` when unknown.
    pub rate: Option<f64>,
    /// Where that rate comes from.
    pub basis: Basis,
    /// Seconds the whole send takes, hourly cap included; `None` when the rate is unknown.
    pub seconds: Option<f64>,
    /// Seconds it would take without the hourly cap (equal to `seconds` when the cap does not
    /// bite).
    pub uncapped_seconds: Option<f64>,
    /// Hours (rolling windows) the hourly cap spreads the send over; 1 when it does not bite.
    pub hourly_windows: u64,
}

impl Estimate {
    /// Estimates sending `messages` at `configured_rate` per second (0 = no limit) under
    /// `hourly_cap` per rolling hour (0 = none), with the relay's speed `measured` on an
    /// earlier campaign when there was one.
    pub fn new(
        messages: u64,
        configured_rate: f64,
        hourly_cap: u32,
        measured: Option<&Measured>,
    ) -> Self {
        let measured_rate = measured.and_then(Measured::rate);
        let (rate, basis) = match (configured_rate > 0.0, measured_rate) {
            (true, Some(m)) if m < configured_rate => (Some(m), Basis::Measured),
            (true, _) => (Some(configured_rate), Basis::ConfiguredRate),
            (false, Some(m)) => (Some(m), Basis::Measured),
            (false, None) => (None, Basis::Unknown),
        };
        let cap = u64::from(hourly_cap);
        let hourly_windows = if cap == 0 || messages <= cap {
            1
        } else {
            messages.div_ceil(cap)
        };
        let uncapped_seconds = rate.map(|r| messages as f64 / r);
        let seconds = rate.map(|r| {
            if hourly_windows == 1 {
                messages as f64 / r
            } else {
                // The pacer lets `cap` messages through per rolling hour: each window after
                // the first opens an hour after the previous one did, and the last one holds
                // what is left. A window the rate cannot fill within the hour makes the cap
                // moot for it, so each window lasts at least the time its messages take.
                let full = (hourly_windows - 1) as f64;
                let per_window = (cap as f64 / r).max(3_600.0);
                let last = messages - (hourly_windows - 1) * cap;
                full * per_window + last as f64 / r
            }
        });
        Estimate {
            messages,
            rate,
            basis,
            seconds,
            uncapped_seconds,
            hourly_windows,
        }
    }

    /// One line for a person: the duration and what it rests on.
    pub fn describe(&self, measured: Option<&Measured>) -> String {
        let Some(seconds) = self.seconds else {
            return "duration: unknown until a first campaign is sent (no [smtp] rate limit, so \
                    the relay sets the pace; the next dry run estimates from that campaign)"
                .to_string();
        };
        let rate = self.rate.unwrap_or_default();
        let basis = match (self.basis, measured) {
            (Basis::Measured, Some(m)) => {
                format!("the relay's speed on campaign {}", m.campaign_id)
            }
            _ => "[smtp] rate".to_string(),
        };
        let mut line = format!(
            "duration: about {} at {} msg/s ({basis})",
            human(Duration::from_secs_f64(seconds)),
            rate_text(rate)
        );
        if self.hourly_windows > 1 {
            line.push_str(&format!(
                "; the hourly cap spreads it over {} hours (without it: {})",
                self.hourly_windows,
                human(Duration::from_secs_f64(
                    self.uncapped_seconds.unwrap_or_default()
                ))
            ));
        }
        line
    }
}

fn rate_text(rate: f64) -> String {
    if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

/// "2 h 05 min", "4 min 10 s", "12 s".
fn human(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => {
            let minutes = (s + 30) / 60;
            format!("{} h {:02} min", minutes / 60, minutes % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAST: Measured = Measured {
        campaign_id: 7,
        messages: 12_000,
        seconds: 100.0,
    };

    #[test]
    fn the_slower_of_the_configured_rate_and_the_measured_speed_sets_the_pace() {
        let e = Estimate::new(6_000, 10.0, 0, Some(&LAST));
        assert_eq!((e.basis, e.seconds), (Basis::ConfiguredRate, Some(600.0)));
        let e = Estimate::new(6_000, 500.0, 0, Some(&LAST));
        assert_eq!((e.basis, e.seconds), (Basis::Measured, Some(50.0)));
        let e = Estimate::new(6_000, 0.0, 0, Some(&LAST));
        assert_eq!((e.basis, e.seconds), (Basis::Measured, Some(50.0)));
        let e = Estimate::new(6_000, 0.0, 0, None);
        assert_eq!((e.basis, e.seconds), (Basis::Unknown, None));
        assert!(e.describe(None).contains("unknown until a first campaign"));
    }

    #[test]
    fn a_campaign_too_small_to_time_is_not_a_measurement() {
        let tiny = Measured {
            campaign_id: 1,
            messages: 3,
            seconds: 0.2,
        };
        assert_eq!(
            Estimate::new(100, 0.0, 0, Some(&tiny)).basis,
            Basis::Unknown
        );
    }

    #[test]
    fn the_hourly_cap_adds_an_hour_per_full_window() {
        // 25,000 at 100/s under 10,000/h: two full windows of an hour, then 5,000 in 50 s.
        let e = Estimate::new(25_000, 100.0, 10_000, None);
        assert_eq!(e.hourly_windows, 3);
        assert_eq!(e.seconds, Some(2.0 * 3_600.0 + 50.0));
        assert_eq!(e.uncapped_seconds, Some(250.0));
        let line = e.describe(None);
        assert!(
            line.contains("about 2 h 01 min at 100 msg/s ([smtp] rate)")
                && line.contains("spreads it over 3 hours (without it: 4 min 10 s)"),
            "{line}"
        );
        // A cap the rate cannot reach within the hour changes nothing.
        let slow = Estimate::new(20_000, 2.0, 10_000, None);
        assert_eq!(slow.seconds, Some(10_000.0 / 2.0 + 10_000.0 / 2.0));
        // Under the cap: one window.
        assert_eq!(Estimate::new(900, 1.0, 1_000, None).hourly_windows, 1);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(12)), "12 s");
        assert_eq!(human(Duration::from_secs(250)), "4 min 10 s");
        assert_eq!(human(Duration::from_secs(7_500)), "2 h 05 min");
        assert_eq!(human(Duration::from_secs(7_199)), "2 h 00 min");
    }
}
