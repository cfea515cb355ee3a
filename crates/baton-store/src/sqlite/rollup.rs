//! Service-graph rollups of the embedded store: per partition, a
//! `graph_YYYYMMDD (span, bucket, element, stats)` table holding, for each
//! graph [`Element`], the sum of the contributions of the traces starting in
//! each minute, hour and day (`span` 60, 3600 or 86400 seconds, `bucket` the
//! start divided by it).
//!
//! Each batch adds the contributions of its traces' new summaries and
//! subtracts those of their previous summaries, in the same transaction,
//! so the rollups always equal the sum over the current summaries. A range
//! is read as whole days in its middle, whole hours next to them and minutes
//! at its ends: a 30-day graph reads about 30 rows per element, not 43,200.

use std::collections::{BTreeMap, HashMap};

use baton_query::TraceSummary;
use baton_query::graph::{self, Element, Stats, contributions};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Partition, table};
use crate::Error;
use crate::store::GraphPeriod;

/// The spans rollups are kept at, seconds, shortest first.
const SPANS: [i64; 3] = [60, 3_600, 86_400];

/// The SQL creating the rollup table of `day`.
pub(super) fn create_sql(day: i64) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
             span INTEGER NOT NULL,
             bucket INTEGER NOT NULL,
             element BLOB NOT NULL,
             stats BLOB NOT NULL,
             PRIMARY KEY (span, bucket, element)
         ) WITHOUT ROWID;",
        table("graph", day)
    )
}

/// The changes one write batch makes to the rollups.
#[derive(Default)]
pub(super) struct BatchRollups {
    /// By partition, minute and element.
    deltas: HashMap<(i64, i64, Element), Stats>,
}

impl BatchRollups {
    /// Adds (`sign` 1) or subtracts (-1) the contribution of a summary of a
    /// trace stored in partition `day`.
    pub(super) fn add(&mut self, day: i64, summary: &TraceSummary, sign: i64) {
        let minute = (summary.start_time / 60.0).floor() as i64;
        for (element, stats) in contributions(summary) {
            self.deltas.entry((day, minute, element)).or_default().merge(&stats, sign);
        }
    }

    /// Applies the changes to every span's rows.
    pub(super) fn write(self, connection: &Connection) -> Result<(), Error> {
        let mut rows: BTreeMap<(i64, i64, i64, Vec<u8>), Stats> = BTreeMap::new();
        for ((day, minute, element), stats) in self.deltas.into_iter().filter(|(_, stats)| !stats.is_empty()) {
            let key = postcard::to_stdvec(&element).map_err(|error| Error::Corrupt(error.to_string()))?;
            for span in SPANS {
                rows.entry((day, span, (minute * 60).div_euclid(span), key.clone())).or_default().merge(&stats, 1);
            }
        }
        for ((day, span, bucket, element), delta) in rows {
            let graph = table("graph", day);
            let mut read = connection.prepare_cached(&format!(
                "SELECT stats FROM {graph} WHERE span = ?1 AND bucket = ?2 AND element = ?3"
            ))?;
            let mut stats: Stats =
                match read.query_row(params![span, bucket, element], |row| row.get::<_, Vec<u8>>(0)).optional()? {
                    Some(bytes) => decode(&bytes)?,
                    None => Stats::default(),
                };
            stats.merge(&delta, 1);
            if stats.is_empty() {
                connection
                    .prepare_cached(&format!("DELETE FROM {graph} WHERE span = ?1 AND bucket = ?2 AND element = ?3"))?
                    .execute(params![span, bucket, element])?;
            } else {
                let bytes = postcard::to_stdvec(&stats).map_err(|error| Error::Corrupt(error.to_string()))?;
                connection
                    .prepare_cached(&format!(
                        "INSERT OR REPLACE INTO {graph} (span, bucket, element, stats) VALUES (?1, ?2, ?3, ?4)"
                    ))?
                    .execute(params![span, bucket, element, bytes])?;
            }
        }
        Ok(())
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|error| Error::Corrupt(error.to_string()))
}

/// The rollups of the traces starting in each of [`graph::periods`].
pub(super) fn read(
    connection: &Connection,
    partitions: &[Partition],
    (start, end): (f64, f64),
    period: Option<u64>,
) -> Result<Vec<GraphPeriod>, Error> {
    let mut periods = Vec::new();
    for (from, to) in graph::periods((start, end), period) {
        let (from, to) = (from as i64, to as i64);
        let overlapping: Vec<&Partition> = partitions
            .iter()
            .filter(|partition| partition.max_start >= from as f64 && partition.min_start < to as f64)
            .collect();
        let mut elements: BTreeMap<Element, Stats> = BTreeMap::new();
        for (span, low, high) in cover(from, to) {
            for partition in &overlapping {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT element, stats FROM {} WHERE span = ?1 AND bucket BETWEEN ?2 AND ?3",
                    table("graph", partition.day)
                ))?;
                let mut rows = statement.query(params![span, low, high])?;
                while let Some(row) = rows.next()? {
                    let element: Element = decode(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?)?;
                    let stats: Stats = decode(row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?)?;
                    elements.entry(element).or_default().merge(&stats, 1);
                }
            }
        }
        elements.retain(|_, stats| !stats.is_empty());
        periods.push(GraphPeriod { start: from as f64, end: to as f64, elements });
    }
    Ok(periods)
}

/// `[from, to)` (whole minutes) as few rollup rows as can cover it:
/// `(span, first bucket, last bucket)` runs, the longest spans in the middle.
fn cover(from: i64, to: i64) -> Vec<(i64, i64, i64)> {
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
