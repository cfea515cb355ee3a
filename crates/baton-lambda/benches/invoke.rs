//! What Baton's local Lambda platform adds to an invocation: a warm
//! invocation through `Function::invoke` (hand-out over the Runtime API, the
//! answer, the next poll, the REPORT line and the platform's segments sent)
//! against a direct call of the same handler, and what a cold start adds
//! beyond the function's own initialisation.
//!
//! The function is this binary itself, run by Baton as a `lambda_runtime`
//! custom runtime (it sees `AWS_LAMBDA_RUNTIME_API`):
//! `cargo bench -p baton-lambda --bench invoke`.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_lambda::{Code, Function, FunctionConfig, Request, Sampling, Tracing, TracingMode};
use lambda_runtime::{Context, Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Warm invocations measured, after a warm-up.
const WARM: u32 = 2000;
/// Cold starts measured.
const COLD: u32 = 20;

/// The handler both ways: it echoes the event.
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({"echo": event.payload}))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        runtime.block_on(lambda_runtime::run(service_fn(handler))).expect("the function runs");
        return;
    }
    // `cargo test --benches` runs this once to check that it works: a few of each then.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let (warm, cold) = if quick { (20, 2) } else { (WARM, COLD) };
    runtime.block_on(measure(warm, cold));
}

async fn measure(warm: u32, cold: u32) {
    // Bound and never read: the platform's segments are sent and dropped by the kernel.
    let sink = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let tracing = Arc::new(Tracing::new(sink.local_addr().expect("an address"), Sampling::Always).expect("tracing"));
    let config = FunctionConfig {
        name: "bench".into(),
        code: Code::Executable(std::env::current_exe().expect("this binary")),
        memory_mb: 128,
        timeout: Duration::from_secs(10),
        environment: BTreeMap::new(),
        tracing: TracingMode::Active,
    };
    let request = || Request { payload: br#"{"order_id":"o-42"}"#.as_slice().into(), ..Request::default() };

    let direct_calls = warm * 10;
    let started = Instant::now();
    for _ in 0..direct_calls {
        let event = LambdaEvent::new(json!({"order_id": "o-42"}), Context::default());
        std::hint::black_box(handler(event).await.expect("the handler answers"));
    }
    let direct = started.elapsed() / direct_calls;

    let function = Function::new(config.clone(), "us-east-1", Arc::clone(&tracing));
    for _ in 0..warm / 10 {
        function.invoke(request()).await.expect("an invocation");
    }
    let started = Instant::now();
    for _ in 0..warm {
        let invocation = function.invoke(request()).await.expect("an invocation");
        assert!(!invocation.function_error && !invocation.cold_start);
    }
    let through_baton = started.elapsed() / warm;

    let mut added = Vec::new();
    let mut inits = Vec::new();
    for _ in 0..cold {
        let function = Function::new(config.clone(), "us-east-1", Arc::clone(&tracing));
        let started = Instant::now();
        let invocation = function.invoke(request()).await.expect("an invocation");
        let total = started.elapsed();
        assert!(invocation.cold_start);
        let init = init_duration(&invocation.log);
        inits.push(init);
        added.push(total.saturating_sub(init).saturating_sub(through_baton));
    }
    added.sort();
    inits.sort();

    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    println!("warm invocation, echo handler ({warm} invocations):");
    println!("  direct call of the handler      {:>9.1} µs", micros(direct));
    println!("  through Baton's Runtime API     {:>9.1} µs", micros(through_baton));
    println!("  added by Baton                  {:>9.1} µs   (target < 1000 µs)", micros(through_baton - direct));
    println!("cold start ({cold} new processes, medians):");
    println!("  the function's own init         {:>9.1} µs", micros(inits[inits.len() / 2]));
    println!("  added by Baton beyond init and a warm invocation {:.1} µs", micros(added[added.len() / 2]));
}

/// The REPORT line's `Init Duration`.
fn init_duration(log: &[String]) -> Duration {
    let report = log.iter().find(|line| line.starts_with("REPORT ")).expect("a REPORT line");
    let field = report.split('\t').find_map(|field| field.strip_prefix("Init Duration: ")).expect("Init Duration");
    let millis: f64 = field.trim_end_matches(" ms").parse().expect("milliseconds");
    Duration::from_secs_f64(millis / 1000.0)
}
