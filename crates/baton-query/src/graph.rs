//! The service graph: nodes (services, inferred services and the client)
//! and edges (calls between them), each with request statistics, as X-Ray's
//! `GetServiceGraph` returns them.
//!
//! A trace contributes, from its [`Visit`]s (the same derivation `service()`
//! and `edge()` filters run on, so map and search never disagree):
//! - for each visit, one request to the visited node: its flags and
//!   response time, and the trace's duration;
//! - for each visit with a caller, one request on the edge from the caller:
//!   timed and classed by the caller's `aws`/`remote` subsegment when there
//!   is one (the caller's view), else by the visit itself;
//! - for each visit with no caller, one request on the edge from the client.
//!
//! Statistics are sums, so a store can keep them per minute, add a trace's
//! contribution when it is written and subtract the contribution of the
//! trace's previous summary when it changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ServiceId, TraceSummary, Visit};

/// A node of the service graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Node {
    /// Whoever sent the requests that have no caller in their trace.
    Client,
    /// A service that sent segments, or (`inferred`) one known only from
    /// the calls to it.
    Service {
        /// Name, type and account.
        id: ServiceId,
        /// Known only from calls to it.
        inferred: bool,
    },
}

/// A node or an edge: what statistics are kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Element {
    /// Requests a node handled.
    Node(Node),
    /// Calls from the first node to the second.
    Edge(Node, Node),
}

/// Request statistics, X-Ray's `ServiceStatistics`/`EdgeStatistics` with
/// the histograms. Counts are signed so that a contribution can be
/// subtracted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests.
    pub total: i64,
    /// Requests that succeeded.
    pub ok: i64,
    /// 4xx requests, 429 included.
    pub error: i64,
    /// 429 requests.
    pub throttle: i64,
    /// 5xx requests.
    pub fault: i64,
    /// The sum of the response times, seconds.
    pub total_response_time: f64,
    /// Response times.
    pub response_times: Histogram,
    /// Trace durations.
    pub durations: Histogram,
}

impl Stats {
    /// Adds one request with these flags and times.
    fn record(
        &mut self,
        (error, fault, throttle): (bool, bool, bool),
        response_time: Option<f64>,
        duration: Option<f64>,
    ) {
        self.total += 1;
        if fault {
            self.fault += 1;
        } else if error || throttle {
            self.error += 1;
            self.throttle += i64::from(throttle);
        } else if response_time.is_some() {
            self.ok += 1;
        }
        if let Some(response_time) = response_time {
            self.total_response_time += response_time;
            self.response_times.add(response_time, 1);
        }
        if let Some(duration) = duration {
            self.durations.add(duration, 1);
        }
    }

    /// Adds `other` times `sign` (1 to add, -1 to subtract).
    pub fn merge(&mut self, other: &Stats, sign: i64) {
        self.total += sign * other.total;
        self.ok += sign * other.ok;
        self.error += sign * other.error;
        self.throttle += sign * other.throttle;
        self.fault += sign * other.fault;
        self.total_response_time += sign as f64 * other.total_response_time;
        self.response_times.merge(&other.response_times, sign);
        self.durations.merge(&other.durations, sign);
    }

    /// Whether every count is zero (a contribution and its subtraction);
    /// the response-time sum is then zero but for rounding.
    pub fn is_empty(&self) -> bool {
        [self.total, self.ok, self.error, self.throttle, self.fault].iter().all(|count| *count == 0)
            && self.response_times.0.is_empty()
            && self.durations.0.is_empty()
    }
}

/// Counts of seconds values in buckets of two significant digits (0.12,
/// 0.13, …, 1.2, 1.3, …), from 0.1 ms to 10^6 s: fine enough to draw, and
/// small enough to keep per minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram(pub BTreeMap<u16, i64>);

/// The lowest power of ten a histogram bucket starts at.
const LOWEST_EXPONENT: i32 = -4;
/// The highest power of ten a histogram bucket starts at.
const HIGHEST_EXPONENT: i32 = 5;

impl Histogram {
    /// Adds `count` values of `seconds`.
    pub fn add(&mut self, seconds: f64, count: i64) {
        let bucket = Histogram::bucket(seconds);
        let slot = self.0.entry(bucket).or_insert(0);
        *slot += count;
        if *slot == 0 {
            self.0.remove(&bucket);
        }
    }

    fn merge(&mut self, other: &Histogram, sign: i64) {
        for (bucket, count) in &other.0 {
            let slot = self.0.entry(*bucket).or_insert(0);
            *slot += sign * count;
            if *slot == 0 {
                self.0.remove(bucket);
            }
        }
    }

    /// The bucket of a value: 0 for zero and below, then 90 a decade.
    fn bucket(seconds: f64) -> u16 {
        // A hair above the value, so that a bucket's own (rounded) value
        // falls in it despite binary fractions.
        let seconds = seconds * (1.0 + 1e-9);
        if seconds.is_nan() || seconds < 10f64.powi(LOWEST_EXPONENT) {
            return 0;
        }
        let mut exponent = seconds.log10().floor() as i32;
        if seconds < 10f64.powi(exponent) {
            exponent -= 1;
        } else if seconds >= 10f64.powi(exponent + 1) {
            exponent += 1;
        }
        let exponent = exponent.clamp(LOWEST_EXPONENT, HIGHEST_EXPONENT);
        let digits = ((seconds / 10f64.powi(exponent - 1)).floor() as i32).clamp(10, 99);
        ((exponent - LOWEST_EXPONENT) * 90 + digits - 10 + 1) as u16
    }

    /// The value a bucket stands for: its lower bound.
    pub fn value(bucket: u16) -> f64 {
        if bucket == 0 {
            return 0.0;
        }
        let index = i32::from(bucket) - 1;
        let (exponent, digits) = (index / 90 + LOWEST_EXPONENT, index % 90 + 10);
        // Rounded so that 0.12 prints as 0.12, not 0.12000000000000001.
        let value = f64::from(digits) * 10f64.powi(exponent - 1);
        let scale = 10f64.powi(1 - exponent);
        (value * scale).round() / scale
    }

    /// `(value, count)` pairs, ascending, the counts positive.
    pub fn entries(&self) -> impl Iterator<Item = (f64, i64)> + '_ {
        self.0.iter().filter(|(_, count)| **count > 0).map(|(bucket, count)| (Histogram::value(*bucket), *count))
    }
}

/// The periods of `period` seconds (whole minutes, at least one) from the
/// start of `range`, or the whole range, widened to whole minutes: the
/// spans graph statistics are summed over.
pub fn periods((start, end): (f64, f64), period: Option<u64>) -> Vec<(f64, f64)> {
    let first = (start / 60.0).floor() as i64 * 60;
    let last = ((end / 60.0).ceil() as i64 * 60).max(first + 60);
    let step = period.map_or(last - first, |period| (period as i64 / 60 * 60).max(60));
    let mut periods = Vec::new();
    let mut from = first;
    while from < last {
        let to = (from + step).min(last);
        periods.push((from as f64, to as f64));
        from = to;
    }
    periods
}

/// What one trace adds to the graph's statistics.
pub fn contributions(summary: &TraceSummary) -> BTreeMap<Element, Stats> {
    let mut added: BTreeMap<Element, Stats> = BTreeMap::new();
    let node = |index: u32, inferred: bool| {
        summary.service_ids.get(index as usize).map(|id| Node::Service { id: id.clone(), inferred })
    };
    for visit in &summary.visits {
        let Some(visited) = node(visit.service, visit.inferred) else { continue };
        let flags = (visit.error, visit.fault, visit.throttle);
        added.entry(Element::Node(visited.clone())).or_default().record(flags, visit.response_time, summary.duration);
        let (source, (flags, response_time)) = match visit.caller.and_then(|caller| node(caller, false)) {
            Some(caller) => (caller, call_view(visit)),
            None => (Node::Client, (flags, visit.response_time)),
        };
        added.entry(Element::Edge(source, visited)).or_default().record(flags, response_time, None);
    }
    added
}

/// A visit as its caller saw it: by the caller's subsegment when there is one.
fn call_view(visit: &Visit) -> ((bool, bool, bool), Option<f64>) {
    match &visit.call {
        Some(call) => ((call.error, call.fault, call.throttle), call.response_time),
        None => ((visit.error, visit.fault, visit.throttle), visit.response_time),
    }
}

#[cfg(test)]
mod tests;
