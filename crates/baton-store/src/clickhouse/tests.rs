//! The conformance suite on a running ClickHouse, each check in a fresh
//! database: active when `BATON_CLICKHOUSE_URL` names the server's HTTP
//! interface (and `BATON_CLICKHOUSE_CLUSTER` a cluster of its, to test the
//! `Distributed` schema), skipped with a notice otherwise.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::conformance::{self, ClockHarness, Harness};

/// The variable naming the server the tests run against.
const URL_VARIABLE: &str = "BATON_CLICKHOUSE_URL";
/// The variable naming a cluster of that server, if any.
const CLUSTER_VARIABLE: &str = "BATON_CLICKHOUSE_CLUSTER";

/// The configuration of a fresh database on the test server, if there is one.
fn test_config() -> Option<ClickHouseConfig> {
    static DATABASES: AtomicUsize = AtomicUsize::new(0);
    let Some(url) = std::env::var(URL_VARIABLE).ok().filter(|url| !url.is_empty()) else {
        eprintln!("skipped: {URL_VARIABLE} names no ClickHouse server to run the ClickHouse backend's checks on");
        return None;
    };
    let number = DATABASES.fetch_add(1, Ordering::Relaxed);
    let nonce = (time::now() * 1000.0) as u64 % 1_000_000_000;
    Some(ClickHouseConfig {
        database: format!("baton_test_{}_{nonce}_{number}", std::process::id()),
        cluster: std::env::var(CLUSTER_VARIABLE).ok().filter(|cluster| !cluster.is_empty()),
        ..ClickHouseConfig::new(url)
    })
}

/// Drops a test database.
fn drop_database(config: &ClickHouseConfig) {
    let client = Client::new(&config.url, None, None, false);
    let on_cluster = config.cluster.as_ref().map(|cluster| format!(" ON CLUSTER `{cluster}`")).unwrap_or_default();
    if let Err(error) = client.query(&format!("DROP DATABASE IF EXISTS `{}`{on_cluster}", config.database)) {
        eprintln!("cannot drop the test database {}: {error}", config.database);
    }
}

/// A test database, dropped with this.
struct Database(ClickHouseConfig);

impl Drop for Database {
    fn drop(&mut self) {
        drop_database(&self.0);
    }
}

/// A store in its own database, with a clock tests can move by days.
fn harness() -> Option<Box<dyn Harness>> {
    let config = test_config()?;
    let database = Database(config.clone());
    Some(ClockHarness::boxed(database, move |clock| {
        ClickHouseStore::open_with(&config, ClickHouseOptions { clock, ..ClickHouseOptions::default() })
            .expect("open the store")
    }))
}

conformance::suite!(harness());

fn document(trace: TraceId, id: u64, start: f64) -> Document {
    let json = format!(
        r#"{{"name":"n","id":"{id:016x}","trace_id":"{trace}","start_time":{start},"end_time":{}}}"#,
        start + 1.0
    );
    Document::parse(json.as_bytes()).expect("valid")
}

#[test]
fn reopening_applies_no_migration_again() {
    let Some(config) = test_config() else { return };
    let store = ClickHouseStore::open(&config).expect("open");
    let client = &store.client;
    let target = &store.target;
    assert!(migrations::migrate(client, target).expect("migrate again").is_empty(), "every migration is recorded");
    let answer = client
        .query(&format!("SELECT count() FROM `{}`.baton_migrations FORMAT TabSeparated", config.database))
        .expect("count");
    let expected = migrations::MIGRATIONS.iter().filter(|m| target.cluster.is_some() || !m.cluster_only()).count();
    assert_eq!(String::from_utf8_lossy(&answer).trim(), expected.to_string());
    drop(store);
    drop_database(&config);
}

#[test]
fn a_write_failing_part_way_completes_before_the_next() {
    let Some(config) = test_config() else { return };
    let store = ClickHouseStore::open(&config).expect("open");
    let now = time::now();
    let trace: TraceId = format!("1-{:08x}-0000000000000000000000a1", now as u32).parse().expect("id");
    store.write(&[document(trace, 1, now)], Durability::Synced).expect("write");
    // The rollups insert fails (after the documents and summaries are in):
    // its table is gone for a moment.
    let graph_table = format!("`{}`.graph{}", config.database, store.target.local());
    let hidden = format!("`{}`.graph_hidden", config.database);
    let rename = |from: &str, to: &str| {
        store.client.query(&format!("RENAME TABLE {from} TO {to}")).expect("rename");
    };
    if store.target.cluster.is_some() {
        // Renaming on every node is not this test's business.
        drop(store);
        drop_database(&config);
        return;
    }
    rename(&graph_table, &hidden);
    let result = store.write(&[document(trace, 2, now - 1.0)], Durability::Synced);
    assert!(matches!(result, Err(Error::ClickHouse(_))), "{result:?}");
    rename(&hidden, &graph_table);
    // The next write sends what was left first.
    let other: TraceId = format!("1-{:08x}-0000000000000000000000a2", now as u32).parse().expect("id");
    store.write(&[document(other, 1, now)], Durability::Synced).expect("write after the failure");
    let page = store
        .summaries(&SummaryQuery {
            start: now - 10.0,
            end: now + 10.0,
            time_range: TimeRange::Event,
            after: None,
            limit: 10,
            filter: None,
        })
        .expect("summaries");
    let revisions: Vec<(TraceId, u32)> = page.summaries.iter().map(|summary| (summary.id, summary.revision)).collect();
    assert_eq!(revisions.len(), 2, "{revisions:?}");
    assert!(revisions.contains(&(trace, 2)), "the failed batch's summary is current: {revisions:?}");
    let graph = store.graph((now - 60.0, now + 60.0), None).expect("graph");
    let totals: i64 = graph[0].elements.values().map(|stats| stats.total).sum();
    let expected: i64 = page
        .summaries
        .iter()
        .flat_map(|summary| graph::contributions(summary).into_values())
        .map(|stats| stats.total)
        .sum();
    assert_eq!(totals, expected, "each trace counted once, as its current summary: {:?}", graph[0].elements);
    drop(store);
    drop_database(&config);
}

#[test]
fn a_bad_database_name_is_refused() {
    let config = ClickHouseConfig { database: "x; DROP".into(), ..ClickHouseConfig::new("http://127.0.0.1:1") };
    let Err(error) = ClickHouseStore::open(&config) else { panic!("opened") };
    assert!(error.to_string().contains("not a plain identifier"), "{error}");
}

#[test]
fn a_server_that_is_down_is_an_error_not_a_hang() {
    // Port 1 on loopback: nothing listens there.
    let Err(error) = ClickHouseStore::open(&ClickHouseConfig::new("http://127.0.0.1:1")) else { panic!("opened") };
    assert!(matches!(error, Error::ClickHouse(_)), "{error}");
}
