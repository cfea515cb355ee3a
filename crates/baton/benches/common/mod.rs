//! What the benchmarks share: the real `baton serve` (release build) in a
//! temp dir, its metrics and its memory, and a ClickHouse started by
//! scripts/clickhouse.

// Each benchmark compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `baton serve`, stopped by [`Server::stop`].
pub(crate) struct Server {
    child: Child,
    /// The lines it printed when ready, one per listener.
    pub(crate) ready: Vec<String>,
    /// The HTTP base URL of `--listen`.
    pub(crate) endpoint: String,
    /// The UDP address of `--listen`.
    pub(crate) udp: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on free loopback ports with `args` added.
    pub(crate) fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["serve", "--listen", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0"])
            .args(["--log", "warn", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting baton serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready: Vec<String> = lines.by_ref().take(4).map(|line| line.expect("utf-8")).collect();
        // Keep reading stdout so that the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let addr = address(&ready, "udp");
        Server { child, endpoint: format!("http://{addr}"), udp: addr, ready, _dir: dir }
    }

    /// The sum of a metric's samples.
    pub(crate) fn metric(&self, agent: &ureq::Agent, name: &str) -> f64 {
        let text = agent
            .get(format!("{}/metrics", self.endpoint))
            .call()
            .expect("metrics")
            .body_mut()
            .read_to_string()
            .expect("metrics body");
        text.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The server's peak resident memory.
    pub(crate) fn peak_rss_mb(&self) -> f64 {
        self.status_mb("VmHWM:")
    }

    /// The CPU time the server's live threads have run, in seconds: the
    /// first field of each `/proc/PID/task/TID/schedstat`, in nanoseconds.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).expect("the server's threads");
        let nanoseconds: u64 = tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
            .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        nanoseconds as f64 / 1e9
    }

    /// The server's resident memory now: `(anonymous, mapped files)` in MB.
    pub(crate) fn rss_split_mb(&self) -> (f64, f64) {
        (self.status_mb("RssAnon:"), self.status_mb("RssFile:"))
    }

    /// A memory field of the server's `/proc/PID/status`, in MB.
    fn status_mb(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|line| line.starts_with(field))
            .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Waits until the store has written `expected` documents, or until the
    /// count stops moving for 2 s; returns the count.
    pub(crate) fn wait_for_written(&self, agent: &ureq::Agent, expected: f64) -> f64 {
        let mut last = -1.0;
        let mut unchanged_since = Instant::now();
        loop {
            let written = self.metric(agent, "baton_store_documents_written_total");
            if written >= expected {
                return written;
            }
            if written != last {
                last = written;
                unchanged_since = Instant::now();
            } else if unchanged_since.elapsed() > Duration::from_secs(2) {
                return written;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The address in the ready line `listening <kind> <address> …`.
pub(crate) fn address(ready: &[String], kind: &str) -> String {
    let line = ready.iter().find(|line| line.split_whitespace().nth(1) == Some(kind));
    let line = line.unwrap_or_else(|| panic!("no `listening {kind}` line in {ready:?}"));
    line.split_whitespace().nth(2).expect("an address").to_owned()
}

/// Datagrams the kernel dropped because a socket's receive buffer was full
/// (all sockets of the machine: run the bench alone).
pub(crate) fn kernel_udp_drops() -> f64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return f64::NAN };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Debian's ClickHouse on loopback in a temp dir (scripts/clickhouse),
/// stopped and removed when dropped.
pub(crate) struct ClickHouse {
    /// Its HTTP interface, for `--clickhouse-url`.
    pub(crate) url: String,
    dir: tempfile::TempDir,
}

impl ClickHouse {
    pub(crate) fn start() -> ClickHouse {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = Command::new("python3")
            .arg(clickhouse_script())
            .arg("start")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/clickhouse (python3 and Debian's clickhouse-server are needed)");
        assert!(output.status.success(), "scripts/clickhouse start failed");
        let url = String::from_utf8(output.stdout).expect("utf-8").lines().next().expect("a URL").to_owned();
        ClickHouse { url, dir }
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = Command::new("python3").arg(clickhouse_script()).arg("stop").arg(self.dir.path()).status();
    }
}

fn clickhouse_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/clickhouse")
}
