//! The ClickHouse schema: numbered SQL files (`migrations/clickhouse/`),
//! one statement each, applied in order and recorded in the database's
//! `baton_migrations` table, so that opening a store again applies only
//! what is new.
//!
//! A file may use `{db}` (the database), `{local}` (`_local` on a cluster,
//! where the tables holding rows are each node's local tables, else
//! nothing), `{on_cluster}` (` ON CLUSTER name`, or nothing) and `{cluster}`.
//! Files named `*_distributed` create the `Distributed` table over a local
//! table and apply only on a cluster. Every statement is idempotent
//! (`IF NOT EXISTS`), because the record of what was applied is kept by the
//! node Baton talks to: a Baton talking to another node of the cluster
//! applies them again, harmlessly.

use super::http::Client;
use super::rows::RowBinary;
use crate::Error;

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub(super) struct Migration {
    /// The file name without `.sql`: `NNNN_what`.
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

macro_rules! migrations {
    ($($name:literal),* $(,)?) => {
        [$(Migration { name: $name, sql: include_str!(concat!("../../migrations/clickhouse/", $name, ".sql")) }),*]
    };
}

/// Every migration, in the order they apply.
pub(super) const MIGRATIONS: [Migration; 14] = migrations![
    "0001_segments",
    "0002_segments_distributed",
    "0003_summaries",
    "0004_summaries_distributed",
    "0005_trace_starts",
    "0006_trace_starts_distributed",
    "0007_graph",
    "0008_graph_distributed",
    "0009_logs",
    "0010_logs_distributed",
    "0011_groups",
    "0012_groups_distributed",
    "0013_sampling_rules",
    "0014_sampling_rules_distributed",
];

impl Migration {
    /// The number the file name starts with.
    pub(super) fn number(&self) -> u32 {
        self.name.split('_').next().and_then(|number| number.parse().ok()).expect("a migration is named NNNN_what")
    }

    /// Whether it creates a `Distributed` table, for clusters only.
    pub(super) fn cluster_only(&self) -> bool {
        self.name.ends_with("_distributed")
    }
}

/// Where a schema lives: a database, on one server or on a cluster.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// The database name (letters, digits and `_`).
    pub(super) database: String,
    /// The cluster name (as `remote_servers` names it), if any.
    pub(super) cluster: Option<String>,
}

impl Target {
    /// `ON CLUSTER name` with a leading space, or nothing.
    pub(super) fn on_cluster(&self) -> String {
        self.cluster.as_ref().map(|cluster| format!(" ON CLUSTER `{cluster}`")).unwrap_or_default()
    }

    /// The suffix of the tables that hold rows.
    pub(super) fn local(&self) -> &'static str {
        if self.cluster.is_some() { "_local" } else { "" }
    }

    /// A statement with its placeholders replaced.
    pub(super) fn render(&self, sql: &str) -> String {
        sql.replace("{db}", &format!("`{}`", self.database))
            .replace("{local}", self.local())
            .replace("{on_cluster}", &self.on_cluster())
            .replace("{cluster}", &format!("`{}`", self.cluster.as_deref().unwrap_or("")))
    }
}

/// Creates the database if needed and applies the migrations not applied
/// yet, in order; returns the names of those applied now.
pub(super) fn migrate(client: &Client, target: &Target) -> Result<Vec<&'static str>, Error> {
    let db = format!("`{}`", target.database);
    client.query(&format!("CREATE DATABASE IF NOT EXISTS {db}{}", target.on_cluster()))?;
    client.query(&format!(
        "CREATE TABLE IF NOT EXISTS {db}.baton_migrations{} (number UInt32, name String, applied_at UInt64)
         ENGINE = ReplacingMergeTree ORDER BY number",
        target.on_cluster()
    ))?;
    let answer = client.query(&format!("SELECT DISTINCT number FROM {db}.baton_migrations FORMAT TabSeparated"))?;
    let applied: Vec<u32> =
        String::from_utf8_lossy(&answer).lines().filter_map(|line| line.trim().parse().ok()).collect();
    let mut done = Vec::new();
    for migration in pending(&applied, target.cluster.is_some()) {
        client.query(&target.render(migration.sql))?;
        let mut row = RowBinary::default();
        row.row().u32(migration.number()).string(migration.name).u64(baton_model::time::now() as u64);
        client.insert(
            &format!("INSERT INTO {db}.baton_migrations (number, name, applied_at) FORMAT RowBinary"),
            row.bytes(),
        )?;
        tracing::info!(migration = migration.name, database = %target.database, "applied a ClickHouse migration");
        done.push(migration.name);
    }
    Ok(done)
}

/// The migrations to apply, in order, given the numbers already applied.
fn pending(applied: &[u32], cluster: bool) -> impl Iterator<Item = &'static Migration> + '_ {
    MIGRATIONS
        .iter()
        .filter(move |migration| cluster || !migration.cluster_only())
        .filter(move |migration| !applied.contains(&migration.number()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_one_statement_each() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.number() as usize, index + 1, "{} is out of order", migration.name);
            let code: String = migration
                .sql
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(!code.contains(';'), "{} holds more than one statement", migration.name);
            assert!(code.contains("IF NOT EXISTS"), "{} is not idempotent", migration.name);
            assert!(code.contains("{on_cluster}"), "{} does not apply on every node", migration.name);
            if migration.cluster_only() {
                assert!(code.contains("ENGINE = Distributed("), "{}", migration.name);
            } else {
                assert!(code.contains("{local}"), "{} must create a local table on a cluster", migration.name);
            }
        }
    }

    #[test]
    fn every_table_is_distributed_on_a_cluster() {
        let local: Vec<&Migration> = MIGRATIONS.iter().filter(|migration| !migration.cluster_only()).collect();
        let distributed: Vec<&Migration> = MIGRATIONS.iter().filter(|migration| migration.cluster_only()).collect();
        assert_eq!(local.len(), distributed.len());
        for (table, over) in local.iter().zip(distributed) {
            assert_eq!(over.number(), table.number() + 1, "{} follows its table", over.name);
            assert_eq!(over.name, format!("{:04}_{}_distributed", over.number(), &table.name[5..]));
        }
    }

    #[test]
    fn placeholders_render_for_one_server_and_for_a_cluster() {
        let single = Target { database: "baton".into(), cluster: None };
        let cluster = Target { database: "baton".into(), cluster: Some("two".into()) };
        let table = MIGRATIONS[0].sql;
        let rendered = single.render(table);
        assert!(rendered.contains("CREATE TABLE IF NOT EXISTS `baton`.segments ("), "{rendered}");
        let rendered = cluster.render(table);
        assert!(
            rendered.contains("CREATE TABLE IF NOT EXISTS `baton`.segments_local ON CLUSTER `two` ("),
            "{rendered}"
        );
        let rendered = cluster.render(MIGRATIONS[1].sql);
        assert!(
            rendered.contains("`baton`.segments ON CLUSTER `two` AS `baton`.segments_local")
                && rendered.contains("Distributed(`two`, `baton`, segments_local, cityHash64(trace))"),
            "{rendered}"
        );
        for migration in MIGRATIONS {
            assert!(!cluster.render(migration.sql).contains('{'), "{} has an unknown placeholder", migration.name);
        }
    }

    #[test]
    fn only_new_migrations_apply_and_distributed_ones_on_clusters_only() {
        let names = |applied: &[u32], cluster| pending(applied, cluster).map(|m| m.number()).collect::<Vec<_>>();
        assert_eq!(names(&[], false), [1, 3, 5, 7, 9, 11, 13]);
        assert_eq!(names(&[], true), (1..=14).collect::<Vec<_>>());
        assert_eq!(names(&[1, 3, 5], false), [7, 9, 11, 13]);
        assert!(names(&(1..=14).collect::<Vec<_>>(), true).is_empty());
    }
}
