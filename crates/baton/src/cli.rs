//! Command-line arguments: parsed raw by clap, then validated into the
//! settings each command runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_model::TraceId;
use clap::{Parser, Subcommand};

/// Baton: a self-hosted, X-Ray compatible tracing system.
#[derive(Debug, Parser)]
#[command(name = "baton", version)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the collector, store and API.
    Serve(ServeArgs),
    /// List recent trace summaries from a running server.
    Traces(TracesArgs),
    /// Print one trace as a tree of segments from a running server.
    Trace(TraceArgs),
    /// Run a function of the functions file locally, as Lambda runs it.
    Invoke(InvokeArgs),
    /// The local Lambda runtime's service.
    Lambda {
        #[command(subcommand)]
        command: LambdaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum LambdaCommand {
    /// Serve the Lambda Invoke API for the functions file's functions.
    Serve(LambdaServeArgs),
}

/// How the platform samples new traces.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum SamplingArg {
    /// X-Ray's default rule: the first invocation each second, then 5 %.
    Default,
    /// Every invocation, for development.
    Always,
}

/// What the local Lambda commands share.
#[derive(Debug, clap::Args)]
pub(crate) struct LambdaArgs {
    /// The functions file.
    #[arg(long, default_value = baton_lambda::FILE_NAME)]
    pub(crate) config: PathBuf,
    /// Where the platform's segments and the functions' tracers send (the X-Ray daemon protocol).
    #[arg(long, default_value = "127.0.0.1:2000")]
    pub(crate) daemon_address: SocketAddr,
    /// How new traces are sampled when the caller did not decide.
    #[arg(long, value_enum, default_value = "default")]
    pub(crate) sampling: SamplingArg,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InvokeArgs {
    /// The function's name in the functions file.
    pub(crate) function: String,
    /// The event, a JSON file ("-" for standard input); `{}` without it.
    #[arg(long)]
    pub(crate) event: Option<PathBuf>,
    /// How many times to invoke it; the process stays warm between invocations.
    #[arg(long, default_value_t = 1)]
    pub(crate) repeat: u32,
    /// The caller's X-Amzn-Trace-Id, e.g. 'Root=1-…;Parent=…;Sampled=1'.
    #[arg(long)]
    pub(crate) trace_header: Option<String>,
    #[command(flatten)]
    pub(crate) lambda: LambdaArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LambdaServeArgs {
    /// Where the Invoke API listens (HTTP).
    #[arg(long, default_value = "127.0.0.1:3001")]
    pub(crate) listen: SocketAddr,
    /// How long a function's process stays warm without invocations, e.g. 10m, 90s.
    #[arg(long, default_value = "10m")]
    pub(crate) idle: String,
    #[command(flatten)]
    pub(crate) lambda: LambdaArgs,
}

/// Where `baton serve` keeps traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StoreArg {
    /// The embedded store, in --data-dir: one machine, nothing to set up.
    Sqlite,
    /// A ClickHouse server or cluster (--clickhouse-url): many collectors and query nodes.
    Clickhouse,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where traces are kept.
    #[arg(long, value_enum, default_value = "sqlite")]
    store: StoreArg,
    /// Where the embedded store keeps its files (--store sqlite).
    #[arg(long, default_value = "baton-data")]
    data_dir: PathBuf,
    /// ClickHouse's HTTP interface, e.g. http://127.0.0.1:8123 (--store clickhouse).
    #[arg(long, value_name = "URL")]
    clickhouse_url: Option<String>,
    /// The ClickHouse database Baton creates and migrates its tables in [default: baton].
    #[arg(long, value_name = "NAME")]
    clickhouse_database: Option<String>,
    /// The ClickHouse user [default: ClickHouse's default user].
    #[arg(long, value_name = "USER")]
    clickhouse_user: Option<String>,
    /// The ClickHouse user's password; BATON_CLICKHOUSE_PASSWORD keeps it out of the process list.
    #[arg(long, value_name = "PASSWORD")]
    clickhouse_password: Option<String>,
    /// A cluster of ClickHouse's remote_servers: Baton's tables are then Distributed over its shards.
    #[arg(long, value_name = "NAME")]
    clickhouse_cluster: Option<String>,
    /// UDP (X-Ray daemon protocol) and HTTP (X-Ray API, /metrics) on this one address.
    #[arg(long, default_value = "127.0.0.1:2000")]
    listen: SocketAddr,
    /// OTLP/HTTP receiver (POST /v1/traces, protobuf or JSON) on this address.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4318")]
    otlp_http: SocketAddr,
    /// OTLP/gRPC receiver (TraceService/Export) on this address.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4317")]
    otlp_grpc: SocketAddr,
    /// A span attribute to index as an annotation, e.g. order.id (repeatable).
    #[arg(long = "otlp-annotation", value_name = "KEY")]
    otlp_annotations: Vec<String>,
    /// How long traces are kept, e.g. 30d, 12h (whole days are removed at once).
    #[arg(long, default_value = "30d")]
    retention: String,
    /// Log filter, in RUST_LOG syntax; RUST_LOG wins when set.
    #[arg(long, default_value = "info")]
    log: String,
}

/// The ClickHouse database Baton uses unless told otherwise.
pub(crate) const DEFAULT_CLICKHOUSE_DATABASE: &str = "baton";

/// Where `baton serve` keeps traces, validated.
#[derive(Debug)]
pub(crate) enum StoreSettings {
    /// The embedded store in this directory.
    Sqlite { data_dir: PathBuf },
    /// A ClickHouse server or cluster.
    ClickHouse(baton_store::ClickHouseConfig),
}

/// Validated settings of `baton serve`.
#[derive(Debug)]
pub(crate) struct ServeSettings {
    pub(crate) store: StoreSettings,
    pub(crate) listen: SocketAddr,
    pub(crate) otlp: baton_server::OtlpConfig,
    pub(crate) retention: Duration,
    pub(crate) log: String,
}

impl ServeArgs {
    pub(crate) fn validate(self) -> anyhow::Result<ServeSettings> {
        let retention = parse_duration(&self.retention).context("--retention")?;
        if retention.is_zero() {
            bail!("--retention must be longer than zero");
        }
        if self.otlp_annotations.iter().any(|key| key.trim().is_empty()) {
            bail!("--otlp-annotation needs a span attribute key");
        }
        let store = match self.store {
            StoreArg::Sqlite => {
                let clickhouse_flags = [
                    ("--clickhouse-url", self.clickhouse_url.is_some()),
                    ("--clickhouse-database", self.clickhouse_database.is_some()),
                    ("--clickhouse-user", self.clickhouse_user.is_some()),
                    ("--clickhouse-password", self.clickhouse_password.is_some()),
                    ("--clickhouse-cluster", self.clickhouse_cluster.is_some()),
                ];
                if let Some((flag, _)) = clickhouse_flags.iter().find(|(_, given)| *given) {
                    bail!("{flag} needs --store clickhouse");
                }
                StoreSettings::Sqlite { data_dir: self.data_dir }
            }
            StoreArg::Clickhouse => {
                let password = self.clickhouse_password.or_else(|| std::env::var("BATON_CLICKHOUSE_PASSWORD").ok());
                StoreSettings::ClickHouse(clickhouse_config(
                    self.clickhouse_url,
                    self.clickhouse_database,
                    self.clickhouse_user,
                    password,
                    self.clickhouse_cluster,
                )?)
            }
        };
        let otlp = baton_server::OtlpConfig {
            http: self.otlp_http,
            grpc: self.otlp_grpc,
            annotation_keys: self.otlp_annotations,
        };
        Ok(ServeSettings { store, listen: self.listen, otlp, retention, log: self.log })
    }
}

/// The ClickHouse settings of `--store clickhouse`, checked.
fn clickhouse_config(
    url: Option<String>,
    database: Option<String>,
    user: Option<String>,
    password: Option<String>,
    cluster: Option<String>,
) -> anyhow::Result<baton_store::ClickHouseConfig> {
    let Some(url) = url else {
        bail!("--store clickhouse needs --clickhouse-url, e.g. http://127.0.0.1:8123");
    };
    let url = url.trim().trim_end_matches('/').to_owned();
    let host = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    if host.is_none_or(|host| host.is_empty()) {
        bail!("--clickhouse-url must be an http:// or https:// URL of ClickHouse's HTTP interface, not {url:?}");
    }
    let database = database.unwrap_or_else(|| DEFAULT_CLICKHOUSE_DATABASE.to_owned());
    check_identifier("--clickhouse-database", &database)?;
    if let Some(cluster) = &cluster {
        check_identifier("--clickhouse-cluster", cluster)?;
    }
    if user.as_deref().is_some_and(str::is_empty) {
        bail!("--clickhouse-user must not be empty");
    }
    Ok(baton_store::ClickHouseConfig { url, database, user, password, cluster })
}

/// A database or cluster name goes into SQL unquoted: ClickHouse's plain
/// identifiers only (a letter or `_`, then letters, digits and `_`).
fn check_identifier(flag: &str, name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("{flag} must be a letter or _ followed by letters, digits or _, not {name:?}");
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct TracesArgs {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:2000")]
    pub(crate) endpoint: String,
    /// How far back to look, e.g. 15m, 1h, 2d.
    #[arg(long, default_value = "1h")]
    pub(crate) since: String,
    /// The most traces to list.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
    /// Only traces matching this X-Ray filter expression, e.g. 'duration > 2 AND service("api")'.
    #[arg(long)]
    pub(crate) filter: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TraceArgs {
    /// The trace id, e.g. 1-6744a1b2-0123456789abcdef01234567, or its W3C
    /// form, 6744a1b20123456789abcdef01234567.
    #[arg(value_parser = |text: &str| TraceId::parse_any(text.trim()))]
    pub(crate) id: TraceId,
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:2000")]
    pub(crate) endpoint: String,
}

/// Parses `90s`, `15m`, `12h`, `30d` (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 =
        number.parse().with_context(|| format!("{text:?} is not a duration like 30d, 12h, 15m or 90s"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => bail!("unknown duration unit {other:?} in {text:?}; use s, m, h or d"),
    };
    Ok(Duration::from_secs(number * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> anyhow::Result<ServeSettings> {
        let parsed = Args::try_parse_from(["baton", "serve"].iter().chain(args))?;
        let Command::Serve(serve) = parsed.command else { unreachable!("parsed serve") };
        serve.validate()
    }

    fn serve_error(args: &[&str]) -> String {
        format!("{:#}", serve(args).expect_err("a usage error"))
    }

    #[test]
    fn the_embedded_store_is_the_default() {
        let settings = serve(&["--data-dir", "/tmp/x"]).unwrap();
        assert!(matches!(settings.store, StoreSettings::Sqlite { data_dir } if data_dir.as_os_str() == "/tmp/x"));
    }

    #[test]
    fn clickhouse_takes_a_url_and_defaults_the_rest() {
        let settings = serve(&["--store", "clickhouse", "--clickhouse-url", "http://127.0.0.1:8123/"]).unwrap();
        let StoreSettings::ClickHouse(config) = settings.store else { panic!("not clickhouse") };
        assert_eq!(config.url, "http://127.0.0.1:8123");
        assert_eq!(config.database, "baton");
        assert_eq!((config.user, config.cluster), (None, None));

        let settings = serve(&[
            "--store",
            "clickhouse",
            "--clickhouse-url",
            "https://ch.example.com:8443",
            "--clickhouse-database",
            "traces_2",
            "--clickhouse-user",
            "baton",
            "--clickhouse-password",
            "secret",
            "--clickhouse-cluster",
            "traces_cluster",
        ])
        .unwrap();
        let StoreSettings::ClickHouse(config) = settings.store else { panic!("not clickhouse") };
        assert_eq!(config.url, "https://ch.example.com:8443");
        assert_eq!(config.database, "traces_2");
        assert_eq!(config.user.as_deref(), Some("baton"));
        assert_eq!(config.password.as_deref(), Some("secret"));
        assert_eq!(config.cluster.as_deref(), Some("traces_cluster"));
    }

    #[test]
    fn clickhouse_usage_errors_say_what_is_wrong() {
        assert_eq!(
            serve_error(&["--store", "clickhouse"]),
            "--store clickhouse needs --clickhouse-url, e.g. http://127.0.0.1:8123"
        );
        assert_eq!(
            serve_error(&["--clickhouse-url", "http://127.0.0.1:8123"]),
            "--clickhouse-url needs --store clickhouse"
        );
        assert_eq!(serve_error(&["--clickhouse-cluster", "c"]), "--clickhouse-cluster needs --store clickhouse");
        assert_eq!(
            serve_error(&["--store", "clickhouse", "--clickhouse-url", "127.0.0.1:8123"]),
            "--clickhouse-url must be an http:// or https:// URL of ClickHouse's HTTP interface, not \"127.0.0.1:8123\""
        );
        assert_eq!(
            serve_error(&["--store", "clickhouse", "--clickhouse-url", "http://h", "--clickhouse-database", "my-db"]),
            "--clickhouse-database must be a letter or _ followed by letters, digits or _, not \"my-db\""
        );
        assert_eq!(
            serve_error(&["--store", "clickhouse", "--clickhouse-url", "http://h", "--clickhouse-cluster", "1st"]),
            "--clickhouse-cluster must be a letter or _ followed by letters, digits or _, not \"1st\""
        );
        assert!(serve_error(&["--store", "postgres"]).contains("invalid value 'postgres' for '--store <STORE>'"));
    }

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("2w").unwrap_err().to_string(),
            "unknown duration unit \"w\" in \"2w\"; use s, m, h or d"
        );
        assert!(parse_duration("soon").is_err());
    }
}
