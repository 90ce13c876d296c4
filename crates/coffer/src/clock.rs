//! Time, from a clock the caller can replace, so that tests can travel decades.

use std::sync::Mutex;

use time::{Date, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Today's date in UTC.
    fn today(&self) -> Date {
        self.now().date()
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that shows whatever time it was last set to.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock stopped at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        FixedClock(Mutex::new(at))
    }

    /// Moves the clock to `at` (backwards too).
    pub fn set(&self, at: OffsetDateTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The text forms of time, in one place: instants are RFC 3339 (`2026-11-27T10:00:00+08:00`),
/// dates ISO 8601 (`2026-11-27`). Every document, request and record Coffer reads or writes uses
/// these.
pub mod text {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    use time::{Date, OffsetDateTime};

    /// An RFC 3339 instant.
    pub fn parse_instant(text: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(text, &Rfc3339).ok()
    }

    /// An ISO date (`YYYY-MM-DD`).
    pub fn parse_date(text: &str) -> Option<Date> {
        Date::parse(text, &Iso8601::DATE).ok()
    }

    /// An RFC 3339 instant, or an ISO date meaning its midnight UTC.
    pub fn parse_instant_or_date(text: &str) -> Option<OffsetDateTime> {
        parse_instant(text).or_else(|| parse_date(text).map(|d| d.midnight().assume_utc()))
    }

    /// An instant as RFC 3339.
    pub fn instant(t: OffsetDateTime) -> String {
        t.format(&Rfc3339).unwrap_or_default()
    }

    /// A date as ISO 8601 (`YYYY-MM-DD`).
    pub fn date(d: Date) -> String {
        d.format(&Iso8601::DATE).unwrap_or_default()
    }
}
