//! The time window of a view, as the URL gives it: `range=1h` (the last
//! hour) or `start=…&end=…` (epoch seconds, or UTC times as the picker's
//! `datetime-local` fields send them).

use std::fmt;

use baton_model::time;

/// The ranges the picker offers, with their length in seconds.
pub(crate) const RANGES: [(&str, f64); 9] = [
    ("5m", 300.0),
    ("15m", 900.0),
    ("1h", 3_600.0),
    ("3h", 10_800.0),
    ("6h", 21_600.0),
    ("12h", 43_200.0),
    ("1d", 86_400.0),
    ("7d", 604_800.0),
    ("30d", 2_592_000.0),
];

/// The window a page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindow {
    /// Epoch seconds.
    pub start: f64,
    /// Epoch seconds.
    pub end: f64,
    /// The picker's range (`1h`), when the window is one; else custom.
    pub range: Option<&'static str>,
}

/// A window the URL asks for that cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError(String);

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TimeWindow {
    /// The window of the query parameters `range`, `start` and `end`, at
    /// `now`; the last hour when none is given.
    pub fn from_query(
        range: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        now: f64,
    ) -> Result<Self, WindowError> {
        let seconds = |name: &str, text: &str| {
            text.parse::<f64>()
                .ok()
                .or_else(|| time::parse_iso(text))
                // A browser leaves out the seconds when they are zero.
                .or_else(|| time::parse_iso(&format!("{text}:00")))
                .filter(|value| value.is_finite() && *value >= 0.0)
                .ok_or_else(|| WindowError(format!("{name} must be epoch seconds or a UTC time, got {text:?}")))
        };
        match (range, start, end) {
            (_, Some(start), Some(end)) => {
                let (start, end) = (seconds("start", start)?, seconds("end", end)?);
                if end <= start {
                    return Err(WindowError("end must be after start".into()));
                }
                Ok(TimeWindow { start, end, range: None })
            }
            (None, None, None) => Ok(TimeWindow::last("1h", now)),
            (Some(range), None, None) => {
                RANGES.iter().find(|(name, _)| *name == range).map(|(name, _)| TimeWindow::last(name, now)).ok_or_else(
                    || {
                        let known: Vec<&str> = RANGES.iter().map(|(name, _)| *name).collect();
                        WindowError(format!("range must be one of {}, got {range:?}", known.join(", ")))
                    },
                )
            }
            _ => Err(WindowError("give both start and end, or a range".into())),
        }
    }

    fn last(range: &'static str, now: f64) -> TimeWindow {
        let seconds = RANGES.iter().find(|(name, _)| *name == range).map_or(3_600.0, |(_, seconds)| *seconds);
        TimeWindow { start: now - seconds, end: now, range: Some(range) }
    }

    /// The window as query parameters, to carry it into links.
    pub fn query(&self) -> String {
        match self.range {
            Some(range) => format!("range={range}"),
            None => format!("start={}&end={}", self.start, self.end),
        }
    }

    /// The window's length in minutes (at least one).
    pub fn minutes(&self) -> f64 {
        ((self.end - self.start) / 60.0).max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_come_from_a_range_or_start_and_end() {
        let now = 10_000.0;
        assert_eq!(
            TimeWindow::from_query(None, None, None, now),
            Ok(TimeWindow { start: 6_400.0, end: now, range: Some("1h") })
        );
        assert_eq!(TimeWindow::from_query(Some("5m"), None, None, now).unwrap().start, 9_700.0);
        let custom = TimeWindow::from_query(None, Some("100"), Some("200.5"), now).unwrap();
        assert_eq!((custom.start, custom.end, custom.query()), (100.0, 200.5, "start=100&end=200.5".to_owned()));
        assert_eq!(TimeWindow::from_query(Some("6h"), None, None, now).unwrap().query(), "range=6h");
        let picked = TimeWindow::from_query(None, Some("1970-01-01T00:01"), Some("1970-01-01T00:02:30"), now).unwrap();
        assert_eq!((picked.start, picked.end), (60.0, 150.0));
        for (range, start, end) in [
            (Some("2h"), None, None),
            (None, Some("5"), None),
            (None, Some("9"), Some("3")),
            (None, Some("x"), Some("3")),
        ] {
            assert!(TimeWindow::from_query(range, start, end, now).is_err(), "{range:?} {start:?} {end:?}");
        }
    }
}
