use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::OnceLock;

use crate::emit::Sender;
use crate::error::TracerError;
use crate::sampling::Sampler;

/// Where the X-Ray daemon (or Baton) listens: UDP for documents, TCP for
/// sampling calls. Default `127.0.0.1:2000` for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonAddress {
    /// Where segment documents go.
    pub udp: SocketAddr,
    /// Where the centralized sampling calls go.
    pub tcp: SocketAddr,
}

impl Default for DaemonAddress {
    fn default() -> Self {
        let local = SocketAddr::from(([127, 0, 0, 1], 2000));
        DaemonAddress { udp: local, tcp: local }
    }
}

impl DaemonAddress {
    /// Reads `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or `tcp:host:port udp:host:port` in either order.
    pub fn parse(text: &str) -> Result<DaemonAddress, TracerError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [single] if !single.starts_with("tcp:") && !single.starts_with("udp:") => {
                let address = resolve(single)?;
                Ok(DaemonAddress { udp: address, tcp: address })
            }
            [first, second] => {
                let (mut udp, mut tcp) = (None, None);
                for field in [first, second] {
                    if let Some(rest) = field.strip_prefix("udp:") {
                        udp = Some(resolve(rest)?);
                    } else if let Some(rest) = field.strip_prefix("tcp:") {
                        tcp = Some(resolve(rest)?);
                    }
                }
                match (udp, tcp) {
                    (Some(udp), Some(tcp)) => Ok(DaemonAddress { udp, tcp }),
                    _ => Err(bad_address(text)),
                }
            }
            _ => Err(bad_address(text)),
        }
    }
}

/// The OTLP exporter when `OTEL_TRACES_EXPORTER=otlp`, at the OTel SDKs' endpoint variables.
#[cfg(feature = "otlp")]
fn otlp_exporter(var: &impl Fn(&str) -> Option<String>) -> Option<Exporter> {
    if var("OTEL_TRACES_EXPORTER")?.trim() != "otlp" {
        return None;
    }
    let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/'))))
        .unwrap_or_else(|| "http://localhost:4318/v1/traces".into());
    Some(Exporter::Otlp(endpoint))
}

#[cfg(not(feature = "otlp"))]
fn otlp_exporter(_var: &impl Fn(&str) -> Option<String>) -> Option<Exporter> {
    None
}

fn bad_address(text: &str) -> TracerError {
    TracerError::Config(format!(
        "AWS_XRAY_DAEMON_ADDRESS must be host:port or \"tcp:host:port udp:host:port\", got {text:?}"
    ))
}

fn resolve(host_port: &str) -> Result<SocketAddr, TracerError> {
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| TracerError::Config(format!("daemon address {host_port:?} is not a reachable host:port")))
}

/// Where finished segments are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exporter {
    /// The X-Ray daemon protocol: one document per UDP datagram.
    Udp(SocketAddr),
    /// OTLP/HTTP (JSON) to this traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    #[cfg(feature = "otlp")]
    Otlp(String),
}

/// How the tracer behaves; [`Config::from_env`] reads it as Powertools does.
#[derive(Debug)]
pub struct Config {
    /// The service name: the `Service` annotation and the default metadata namespace.
    pub service_name: String,
    /// Whether anything is recorded at all.
    pub enabled: bool,
    /// Whether `#[capture_method]` and the Lambda handler record return values as metadata.
    pub capture_response: bool,
    /// Whether `#[capture_method]` and the Lambda handler record errors.
    pub capture_error: bool,
    /// Whether the process runs in AWS Lambda (or a local Lambda runtime).
    pub in_lambda: bool,
    /// Where documents go.
    pub exporter: Exporter,
    /// Which new traces (those with no upstream decision) are recorded.
    pub sampler: Sampler,
}

impl Config {
    /// The configuration from the environment:
    /// `POWERTOOLS_SERVICE_NAME` (default `service_undefined`), `POWERTOOLS_TRACE_DISABLED`,
    /// `POWERTOOLS_TRACER_CAPTURE_RESPONSE`, `POWERTOOLS_TRACER_CAPTURE_ERROR` (default true),
    /// `AWS_XRAY_DAEMON_ADDRESS`, `BATON_TRACER_SAMPLING_RULES` (a local rules file) and, with the
    /// `otlp` feature, `OTEL_TRACES_EXPORTER=otlp` with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`. Outside Lambda, tracing is on only when a destination is set;
    /// with the `centralized-sampling` feature, a daemon address outside Lambda also brings
    /// `Sampler::centralized` on its TCP address, in front of the local rules.
    pub fn from_env() -> Result<Config, TracerError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, TracerError> {
        let flag = |name: &str, default: bool| -> Result<bool, TracerError> {
            match var(name).as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some(value) if value.eq_ignore_ascii_case("true") || value == "1" => Ok(true),
                Some(value) if value.eq_ignore_ascii_case("false") || value == "0" => Ok(false),
                Some(value) => Err(TracerError::Config(format!("{name} must be true or false, got {value:?}"))),
            }
        };
        let in_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let daemon = var("AWS_XRAY_DAEMON_ADDRESS").map(|text| DaemonAddress::parse(&text)).transpose()?;
        let otlp = otlp_exporter(&var);
        let destination_set = daemon.is_some() || otlp.is_some();
        let exporter = otlp.unwrap_or(Exporter::Udp(daemon.unwrap_or_default().udp));
        let sampler = match var("BATON_TRACER_SAMPLING_RULES") {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|error| TracerError::SamplingRules(format!("cannot read {path}: {error}")))?;
                Sampler::from_json(&text)?
            }
            None => Sampler::local_default(),
        };
        // In Lambda the platform decides, and a function's segments all have its decision.
        #[cfg(feature = "centralized-sampling")]
        let sampler = match daemon {
            Some(address) if !in_lambda => Sampler::centralized(address.tcp, sampler),
            _ => sampler,
        };
        Ok(Config {
            service_name: var("POWERTOOLS_SERVICE_NAME")
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| "service_undefined".into()),
            enabled: !flag("POWERTOOLS_TRACE_DISABLED", false)? && (in_lambda || destination_set),
            capture_response: flag("POWERTOOLS_TRACER_CAPTURE_RESPONSE", true)?,
            capture_error: flag("POWERTOOLS_TRACER_CAPTURE_ERROR", true)?,
            in_lambda,
            exporter,
            sampler,
        })
    }
}

/// The process's tracer: its configuration and, when enabled, its sender.
pub(crate) struct Tracer {
    pub(crate) config: Config,
    pub(crate) sender: Option<Sender>,
}

static TRACER: OnceLock<Tracer> = OnceLock::new();

/// Sets the tracer's configuration; without it, the first use reads [`Config::from_env`].
pub fn init(config: Config) -> Result<(), TracerError> {
    let mut installed = false;
    TRACER.get_or_init(|| {
        installed = true;
        Tracer::new(config)
    });
    if installed { Ok(()) } else { Err(TracerError::AlreadyInitialised) }
}

/// The configuration the tracer runs with.
pub fn config() -> &'static Config {
    &tracer().config
}

pub(crate) fn tracer() -> &'static Tracer {
    TRACER.get_or_init(|| {
        let config = Config::from_env().unwrap_or_else(|error| {
            tracing::warn!(%error, "baton-tracer: invalid configuration, tracing is off");
            Config::from_vars(|name| (name == "POWERTOOLS_TRACE_DISABLED").then(|| "true".into()))
                .expect("the disabled configuration is valid")
        });
        Tracer::new(config)
    })
}

impl Tracer {
    fn new(config: Config) -> Tracer {
        let sender = config.enabled.then(|| Sender::start(&config)).and_then(|started| {
            started
                .map_err(|error| tracing::warn!(%error, "baton-tracer: cannot start the sender, tracing is off"))
                .ok()
        });
        let mut config = config;
        config.enabled = sender.is_some();
        Tracer { config, sender }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, TracerError> {
        Config::from_vars(|name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string()))
    }

    #[test]
    fn daemon_address_forms() {
        let single = DaemonAddress::parse("127.0.0.1:3000").unwrap();
        assert_eq!(single.udp, single.tcp);
        assert_eq!(single.udp.port(), 3000);
        let split = DaemonAddress::parse("tcp:127.0.0.1:2001 udp:127.0.0.1:2002").unwrap();
        assert_eq!((split.tcp.port(), split.udp.port()), (2001, 2002));
        let reversed = DaemonAddress::parse("udp:127.0.0.1:2002 tcp:127.0.0.1:2001").unwrap();
        assert_eq!(reversed, split);
        for bad in ["", "nonsense", "tcp:127.0.0.1:1", "udp:127.0.0.1:1 udp:127.0.0.1:2", "127.0.0.1:99999"] {
            assert!(DaemonAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tracing_is_off_outside_lambda_without_a_destination() {
        assert!(!config(&[]).unwrap().enabled);
        assert!(config(&[("AWS_LAMBDA_FUNCTION_NAME", "orders")]).unwrap().enabled);
        assert!(config(&[("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")]).unwrap().enabled);
        let disabled = [("AWS_LAMBDA_FUNCTION_NAME", "orders"), ("POWERTOOLS_TRACE_DISABLED", "true")];
        assert!(!config(&disabled).unwrap().enabled);
    }

    #[cfg(feature = "centralized-sampling")]
    #[test]
    fn a_daemon_address_outside_lambda_brings_centralized_sampling_on_its_tcp_address() {
        let split = "tcp:127.0.0.1:2001 udp:127.0.0.1:2002";
        let service = config(&[("AWS_XRAY_DAEMON_ADDRESS", split)]).unwrap();
        assert_eq!(service.sampler.centralized_address(), Some(SocketAddr::from(([127, 0, 0, 1], 2001))));
        assert_eq!(service.exporter, Exporter::Udp(SocketAddr::from(([127, 0, 0, 1], 2002))));
        let function = config(&[("AWS_XRAY_DAEMON_ADDRESS", split), ("AWS_LAMBDA_FUNCTION_NAME", "orders")]).unwrap();
        assert_eq!(function.sampler.centralized_address(), None, "in Lambda the platform decides");
        assert_eq!(config(&[]).unwrap().sampler.centralized_address(), None);
    }

    #[test]
    fn powertools_variables() {
        let config = config(&[
            ("POWERTOOLS_SERVICE_NAME", "orders"),
            ("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false"),
            ("POWERTOOLS_TRACER_CAPTURE_ERROR", "FALSE"),
        ])
        .unwrap();
        assert_eq!(config.service_name, "orders");
        assert!(!config.capture_response && !config.capture_error);
        let error = super::tests::config(&[("POWERTOOLS_TRACE_DISABLED", "maybe")]).unwrap_err();
        assert_eq!(error.to_string(), "configuration: POWERTOOLS_TRACE_DISABLED must be true or false, got \"maybe\"");
    }
}
