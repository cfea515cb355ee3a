//! Service-graph rollups of the embedded store ([`crate::rollup`]): per
//! partition, a `graph_YYYYMMDD (span, bucket, element, stats)` table, each
//! batch's changes written in its transaction.

use std::collections::BTreeMap;

use baton_query::graph::{self, Element, Stats};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Partition, table};
use crate::Error;
use crate::rollup::{BatchRollups, cover};
use crate::store::GraphPeriod;

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

/// Applies a batch's changes to every span's rows.
pub(super) fn write(rollups: BatchRollups, connection: &Connection) -> Result<(), Error> {
    for ((day, span, bucket, element), delta) in rollups.into_rows() {
        let element = postcard::to_stdvec(&element).map_err(|error| Error::Corrupt(error.to_string()))?;
        let graph = table("graph", day);
        let mut read = connection
            .prepare_cached(&format!("SELECT stats FROM {graph} WHERE span = ?1 AND bucket = ?2 AND element = ?3"))?;
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
