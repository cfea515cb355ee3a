//! One execution environment: a function process with its own Runtime API,
//! its output (stdout and stderr in one stream, as Lambda logs them) and its
//! peak memory.

use std::io::{PipeReader, PipeWriter, Read, Write};
use std::net::SocketAddr;
use std::process::ExitStatus;

use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::LambdaError;
use crate::config::{Code, FunctionConfig};
use crate::runtime_api::{self, RuntimeChannels, RuntimeEvent};

/// Written into the process's output pipe by Baton: once the reader reaches
/// it, everything the process wrote before has been read.
const MARKER: &[u8] = b"\0baton-output-mark\0";
/// A line longer than this is cut, so that output without newlines stays bounded.
const MAX_LINE: usize = 256 * 1024;

/// What an instance is started with, besides its function's configuration.
pub(crate) struct Environment<'a> {
    pub(crate) region: &'a str,
    pub(crate) daemon: SocketAddr,
}

/// What a process did next.
pub(crate) enum Happening {
    /// A Runtime API call.
    Runtime(RuntimeEvent),
    /// The process exited.
    Exited(Option<ExitStatus>),
    /// The deadline passed first.
    TimedOut,
}

/// A running function process.
pub(crate) struct Instance {
    child: Child,
    pub(crate) runtime: RuntimeChannels,
    server: JoinHandle<()>,
    output: Output,
    /// When the process was started, in epoch seconds.
    pub(crate) started: f64,
}

impl Instance {
    /// Starts the function's process with a fresh Runtime API and the Lambda environment.
    pub(crate) async fn start(
        function: &FunctionConfig,
        environment: &Environment<'_>,
    ) -> Result<Instance, LambdaError> {
        let listener = runtime_api::bind().await?;
        let api_address = listener.local_addr().map_err(|error| LambdaError::Io(error.to_string()))?;
        let (runtime, server) = runtime_api::serve(listener);
        let (reader, writer) =
            std::io::pipe().map_err(|error| LambdaError::Io(format!("cannot create a pipe: {error}")))?;
        let pipe_end = || writer.try_clone().map_err(|error| LambdaError::Io(format!("cannot clone a pipe: {error}")));
        let mut command = command(function, environment, api_address);
        command.stdin(std::process::Stdio::null()).stdout(pipe_end()?).stderr(pipe_end()?).kill_on_drop(true);
        let started = baton_model::time::now();
        let spawned = command.spawn();
        // The parent's copies of the process's ends go now, so only the process and the marker writer hold the pipe.
        drop(command);
        let child =
            spawned.map_err(|error| LambdaError::Start(format!("cannot start {}: {error}", program(function))))?;
        Ok(Instance { child, runtime, server, output: Output::start(reader, writer)?, started })
    }

    /// The process's exit, if it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The next thing the process does, or the deadline passing. Runtime
    /// calls come first, so an answer posted just before exiting is not lost.
    pub(crate) async fn next_event(&mut self, deadline: tokio::time::Instant) -> Happening {
        tokio::select! {
            biased;
            Some(event) = self.runtime.events.recv() => Happening::Runtime(event),
            status = self.child.wait() => Happening::Exited(status.ok()),
            () = tokio::time::sleep_until(deadline) => Happening::TimedOut,
        }
    }

    /// Kills the process and waits for it.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Everything the process has written since the last call, line by line.
    pub(crate) async fn output(&mut self) -> Vec<String> {
        self.output.take().await
    }

    /// The process's peak resident memory so far, in MB (`VmHWM`, Linux only).
    pub(crate) fn max_memory_mb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let kilobytes: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        Some(kilobytes.div_ceil(1024))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn program(function: &FunctionConfig) -> String {
    match &function.code {
        Code::Executable(path) => path.display().to_string(),
        Code::Python { python, .. } => format!("{} -m awslambdaric", python.display()),
    }
}

/// The process as Lambda starts it: its own environment only, not Baton's.
fn command(function: &FunctionConfig, environment: &Environment<'_>, api_address: SocketAddr) -> Command {
    let (mut command, task_root, handler) = match &function.code {
        Code::Executable(path) => {
            let root = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let handler = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            (Command::new(path), root, handler)
        }
        Code::Python { handler, directory, python } => {
            let mut command = Command::new(python);
            command.args(["-m", "awslambdaric", handler]).env("PYTHONPATH", directory);
            (command, directory.clone(), handler.clone())
        }
    };
    let daemon = environment.daemon;
    command.env_clear();
    // What a local process needs to run at all, and the caller's AWS credentials, as Lambda gives its role's.
    for name in ["PATH", "HOME", "LANG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let today = baton_model::time::format_iso(baton_model::time::now());
    let stream =
        format!("{}/[$LATEST]{:032x}", today.get(..10).unwrap_or_default().replace('-', "/"), fastrand::u128(..));
    command
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", api_address.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", function.name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_REGION", environment.region.into()),
            ("AWS_DEFAULT_REGION", environment.region.into()),
            ("AWS_XRAY_DAEMON_ADDRESS", daemon.to_string()),
            ("_AWS_XRAY_DAEMON_ADDRESS", daemon.ip().to_string()),
            ("_AWS_XRAY_DAEMON_PORT", daemon.port().to_string()),
            ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".into()),
            ("_HANDLER", handler),
            ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
            ("LAMBDA_RUNTIME_DIR", task_root.display().to_string()),
            ("TZ", ":UTC".into()),
        ])
        .envs(&function.environment)
        .current_dir(&task_root);
    command
}

/// The process's output, read by a thread of its own.
struct Output {
    marker: PipeWriter,
    lines: mpsc::UnboundedReceiver<Chunk>,
}

enum Chunk {
    Line(String),
    Marker,
}

impl Output {
    fn start(reader: PipeReader, marker: PipeWriter) -> Result<Output, LambdaError> {
        let (sender, lines) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("baton-function-output".into())
            .spawn(move || read_output(reader, &sender))
            .map_err(|error| LambdaError::Io(format!("cannot start the output reader: {error}")))?;
        Ok(Output { marker, lines })
    }

    async fn take(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut marked = self.marker.write_all(MARKER).and_then(|()| self.marker.write_all(b"\n")).is_ok();
        // A failed write (the reader is gone) leaves only what was already read.
        while marked {
            match self.lines.recv().await {
                Some(Chunk::Line(line)) => lines.push(line),
                Some(Chunk::Marker) | None => marked = false,
            }
        }
        while let Ok(Chunk::Line(line)) = self.lines.try_recv() {
            lines.push(line);
        }
        lines
    }
}

fn read_output(mut reader: PipeReader, sender: &mpsc::UnboundedSender<Chunk>) {
    let mut pending = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        pending.extend_from_slice(&buffer[..read]);
        let mut start = 0;
        while let Some(newline) = pending[start..].iter().position(|&byte| byte == b'\n') {
            let line = &pending[start..start + newline];
            start += newline + 1;
            let (text, marked) = match line.strip_suffix(MARKER) {
                Some(text) => (text, true),
                None => (line, false),
            };
            // A marker after a partial line ends it: what came before belongs to the invocation.
            let is_line = !marked || !text.is_empty();
            if is_line && !send_lines(sender, text) {
                return;
            }
            if marked && sender.send(Chunk::Marker).is_err() {
                return;
            }
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE {
            let sent = send_lines(sender, &pending);
            pending.clear();
            if !sent {
                return;
            }
        }
    }
    if !pending.is_empty() {
        send_lines(sender, &pending);
    }
}

/// Sends one line of output; a carriage return inside it also breaks lines,
/// as the Python runtime writes a traceback as one `\r`-joined line.
fn send_lines(sender: &mpsc::UnboundedSender<Chunk>, line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.split(|&byte| byte == b'\r')
        .all(|part| sender.send(Chunk::Line(String::from_utf8_lossy(part).into_owned())).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_taken_up_to_the_moment_of_asking() {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut process_side = writer.try_clone().unwrap();
        let mut output = Output::start(reader, writer).unwrap();
        process_side.write_all(b"first\nsecond\r\ntrace\rback\npartial").unwrap();
        assert_eq!(output.take().await, ["first", "second", "trace", "back", "partial"]);
        assert!(output.take().await.is_empty());
        process_side.write_all(b"third\n").unwrap();
        assert_eq!(output.take().await, ["third"]);
    }

    #[tokio::test]
    async fn output_after_the_writer_is_gone_is_still_taken() {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut process_side = writer.try_clone().unwrap();
        let mut output = Output::start(reader, writer).unwrap();
        process_side.write_all(b"last words\n").unwrap();
        drop(process_side);
        assert_eq!(output.take().await, ["last words"]);
    }
}
