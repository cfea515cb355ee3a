//! `baton invoke` and `baton lambda serve`: the local Lambda runtime's
//! commands, over `baton-lambda`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use baton_lambda::{Function, Functions, Invocation, Request, Sampling, Tracing};
use serde_json::json;

use crate::cli::{InvokeArgs, LambdaArgs, LambdaServeArgs, SamplingArg, parse_duration};

/// How often warm processes are checked for idleness.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Invokes one function `--repeat` times and prints what Lambda would log, then each response.
pub(crate) fn invoke(args: &InvokeArgs) -> anyhow::Result<ExitCode> {
    crate::init_logging("warn")?;
    let functions = Functions::load(&args.lambda.config)?;
    let config = functions.get(&args.function)?.clone();
    let payload = read_event(args.event.as_deref())?;
    let trace_header = match &args.trace_header {
        Some(text) => Some(text.parse().with_context(|| format!("--trace-header {text:?}"))?),
        None => None,
    };
    let function = Function::new(config, &region(), tracing(&args.lambda)?);
    let logs = Arc::new(LogShipper::new(args.lambda.daemon_address));
    let runtime = runtime()?;
    runtime.block_on(async {
        for _ in 0..args.repeat.max(1) {
            let request =
                Request { payload: payload.clone().into(), trace_header: trace_header.clone(), ..Request::default() };
            let invocation = function.invoke(request).await?;
            print_invocation(&invocation, true);
            let (logs, name) = (Arc::clone(&logs), args.function.clone());
            tokio::task::spawn_blocking(move || logs.ship(&name, &invocation)).await?;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Serves the Invoke API for every function of the functions file until SIGTERM or SIGINT.
pub(crate) fn serve(args: &LambdaServeArgs) -> anyhow::Result<ExitCode> {
    crate::init_logging("info")?;
    let idle = parse_duration(&args.idle).context("--idle")?;
    let functions = Functions::load(&args.lambda.config)?;
    let tracing = tracing(&args.lambda)?;
    let region = region();
    let functions: BTreeMap<String, Arc<Function>> = functions
        .functions
        .into_iter()
        .map(|(name, config)| (name, Arc::new(Function::new(config, &region, Arc::clone(&tracing)))))
        .collect();
    let runtime = runtime()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        let reaped: Vec<Arc<Function>> = functions.values().cloned().collect();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(IDLE_CHECK);
            loop {
                ticks.tick().await;
                for function in &reaped {
                    function.stop_if_idle(idle).await;
                }
            }
        });
        let logs = Arc::new(LogShipper::new(args.lambda.daemon_address));
        let on_invocation = move |name: &str, invocation: &Invocation| {
            print_invocation(invocation, false);
            let (logs, name, invocation) = (Arc::clone(&logs), name.to_owned(), invocation.clone());
            tokio::task::spawn_blocking(move || logs.ship(&name, &invocation));
        };
        let router = baton_lambda::invoke_api::router(functions, Arc::new(on_invocation));
        let shutdown = crate::serve::shutdown_signal()?;
        crate::serve::announce(&[format!("listening http {address} (Lambda Invoke API)")]);
        axum::serve(listener, router).with_graceful_shutdown(shutdown).await.context("serving the Invoke API")?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Sends each invocation's log lines to the Baton at the daemon address
/// (`POST /FunctionLogs`), so that its console shows them with the trace.
struct LogShipper {
    endpoint: String,
    warned: AtomicBool,
}

impl LogShipper {
    fn new(daemon: SocketAddr) -> LogShipper {
        LogShipper { endpoint: format!("http://{daemon}"), warned: AtomicBool::new(false) }
    }

    /// Best effort, as the segments over UDP are: a daemon that is not Baton loses only the logs.
    fn ship(&self, function: &str, invocation: &Invocation) {
        let body = json!({"Logs": [{
            "TraceId": invocation.trace.trace_id.to_string(),
            "RequestId": invocation.request_id,
            "FunctionName": function,
            "Time": invocation.started,
            "Lines": invocation.log,
        }]});
        if let Err(error) = crate::client::call(&self.endpoint, "/FunctionLogs", &body) {
            if self.warned.swap(true, Ordering::Relaxed) {
                tracing::debug!("cannot send the function's logs: {error:#}");
            } else {
                tracing::warn!("cannot send the function's logs to Baton (the console will not show them): {error:#}");
            }
        }
    }
}

/// Prints the invocation's log lines and, for `baton invoke`, its response.
fn print_invocation(invocation: &Invocation, with_payload: bool) {
    let mut stdout = std::io::stdout().lock();
    let mut text: String = invocation.log.iter().flat_map(|line| [line.as_str(), "\n"]).collect();
    if with_payload {
        text.push_str(&String::from_utf8_lossy(&invocation.payload));
        text.push('\n');
    }
    // A closed stdout must not stop the functions.
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

fn read_event(path: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    let bytes = match path {
        None => return Ok(b"{}".to_vec()),
        Some(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).context("reading the event from standard input")?;
            bytes
        }
        Some(path) => std::fs::read(path).with_context(|| format!("reading the event {}", path.display()))?,
    };
    serde_json::from_slice::<serde_json::Value>(&bytes).context("the event is not JSON")?;
    Ok(bytes)
}

fn tracing(args: &LambdaArgs) -> anyhow::Result<Arc<Tracing>> {
    let sampling = match args.sampling {
        SamplingArg::Default => Sampling::default_rule(),
        SamplingArg::Always => Sampling::Always,
    };
    Ok(Arc::new(Tracing::new(args.daemon_address, sampling)?))
}

/// The region functions run in: the caller's, as the AWS CLI finds it, else us-east-1.
fn region() -> String {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|region| !region.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_owned())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}
