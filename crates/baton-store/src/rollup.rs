//! What every backend's service-graph rollups share: the changes a write
//! batch makes to them, and the spans they are kept at.
//!
//! A backend keeps, for each graph [`Element`], the sum of the
//! contributions of the traces starting in each minute, hour and day
//! (`span` 60, 3600 or 86400 seconds, `bucket` the start divided by it).
//! Each batch adds the contributions of its traces' new summaries and
//! subtracts those of their previous summaries, so the rollups always equal
//! the sum over the current summaries. A range is read as whole days in its
//! middle, whole hours next to them and minutes at its ends ([`cover`]): a
//! 30-day graph reads about 30 rows per element, not 43,200.

use std::collections::{BTreeMap, HashMap};

use baton_query::TraceSummary;
use baton_query::graph::{Element, Stats, contributions};

/// The spans rollups are kept at, seconds, shortest first.
pub(crate) const SPANS: [i64; 3] = [60, 3_600, 86_400];

/// The changes one write batch makes to the rollups.
#[derive(Default)]
pub(crate) struct BatchRollups {
    /// By partition, minute and element.
    deltas: HashMap<(i64, i64, Element), Stats>,
}

/// A rollup row's key: partition (day), span, bucket, element.
pub(crate) type RollupKey = (i64, i64, i64, Element);

impl BatchRollups {
    /// Adds (`sign` 1) or subtracts (-1) the contribution of a summary of a
    /// trace stored in partition `day`.
    pub(crate) fn add(&mut self, day: i64, summary: &TraceSummary, sign: i64) {
        let minute = (summary.start_time / 60.0).floor() as i64;
        for (element, stats) in contributions(summary) {
            self.deltas.entry((day, minute, element)).or_default().merge(&stats, sign);
        }
    }

    /// The changes to every span's rows, those that change nothing left out.
    pub(crate) fn into_rows(self) -> BTreeMap<RollupKey, Stats> {
        let mut rows: BTreeMap<RollupKey, Stats> = BTreeMap::new();
        for ((day, minute, element), stats) in self.deltas.into_iter().filter(|(_, stats)| !stats.is_empty()) {
            for span in SPANS {
                rows.entry((day, span, (minute * 60).div_euclid(span), element.clone())).or_default().merge(&stats, 1);
            }
        }
        rows
    }
}

/// `[from, to)` (whole minutes) as few rollup rows as can cover it:
/// `(span, first bucket, last bucket)` runs, the longest spans in the middle.
pub(crate) fn cover(from: i64, to: i64) -> Vec<(i64, i64, i64)> {
    let mut runs = Vec::new();
    let mut pieces = vec![(from, to)];
    for span in SPANS.iter().rev() {
        let mut rest = Vec::new();
        for (low, high) in pieces {
            let (first, last) = (low.div_euclid(*span) + i64::from(low.rem_euclid(*span) != 0), high.div_euclid(*span));
            if first < last {
                runs.push((*span, first, last - 1));
                rest.extend([(low, first * span), (last * span, high)].into_iter().filter(|(a, b)| a < b));
            } else {
                rest.push((low, high));
            }
        }
        pieces = rest;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_covered_by_days_then_hours_then_minutes() {
        let day = 86_400;
        // 23:58 on day 0 to 01:03 on day 3.
        let (from, to) = (day - 120, 3 * day + 3_780);
        let runs = cover(from, to);
        assert_eq!(runs, [(86_400, 1, 2), (3_600, 72, 72), (60, 1_438, 1_439), (60, 4_380, 4_382)]);
        let covered: i64 = runs.iter().map(|(span, low, high)| span * (high - low + 1)).sum();
        assert_eq!(covered, to - from);
        assert_eq!(cover(600, 660), [(60, 10, 10)]);
        assert_eq!(cover(0, 7 * day), [(86_400, 0, 6)]);
    }
}
