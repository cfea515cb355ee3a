//! The functions file (`baton.toml`): which functions exist and how each runs.
//!
//! ```toml
//! [functions.Orders]
//! executable = "target/release/orders"      # a custom runtime (lambda_runtime) binary
//! memory = 128                               # MB, as AWS_LAMBDA_FUNCTION_MEMORY_SIZE
//! timeout = 3                                # seconds
//! tracing = "Active"                         # or "PassThrough"
//! environment = { POWERTOOLS_SERVICE_NAME = "orders" }
//!
//! [functions.Users]
//! handler = "app.lambda_handler"             # Python, run through awslambdaric
//! code = "python"                            # the handler's directory (LAMBDA_TASK_ROOT)
//! python = ".venv/bin/python"                # an interpreter with awslambdaric installed
//! ```
//!
//! Relative paths are relative to the file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::LambdaError;

/// The file `baton invoke` and `baton lambda serve` read by default.
pub const FILE_NAME: &str = "baton.toml";

/// Lambda's default memory size, in MB.
const DEFAULT_MEMORY: u32 = 128;
/// Lambda's default timeout, in seconds.
const DEFAULT_TIMEOUT: f64 = 3.0;
/// Lambda's own limit on a timeout.
const MAX_TIMEOUT: f64 = 900.0;

/// Whether the platform records segments for the function (X-Ray's `TracingConfig.Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TracingMode {
    /// The platform samples and sends the `AWS::Lambda` and `AWS::Lambda::Function` segments.
    Active,
    /// The platform only passes an incoming trace header on; the function's own tracer decides.
    PassThrough,
}

/// How a function's process is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A custom runtime: an executable that speaks the Runtime API itself.
    Executable(PathBuf),
    /// A Python handler (`module.function`), run by `python -m awslambdaric`.
    Python {
        /// `module.function`, as Lambda's `Handler` setting.
        handler: String,
        /// The directory holding the module: the working directory and `LAMBDA_TASK_ROOT`.
        directory: PathBuf,
        /// The interpreter, which must have `awslambdaric` installed.
        python: PathBuf,
    },
}

/// One function of the functions file.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    /// The function's name, as in `AWS_LAMBDA_FUNCTION_NAME` and its ARN.
    pub name: String,
    /// What runs.
    pub code: Code,
    /// Memory size in MB, reported to the function and in REPORT lines.
    pub memory_mb: u32,
    /// How long an invocation may run before the process is killed.
    pub timeout: Duration,
    /// Extra environment variables for the process.
    pub environment: BTreeMap<String, String>,
    /// Active tracing or PassThrough.
    pub tracing: TracingMode,
}

/// Every function of a functions file, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Functions {
    /// The functions, by name.
    pub functions: BTreeMap<String, FunctionConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    functions: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    executable: Option<PathBuf>,
    handler: Option<String>,
    code: Option<PathBuf>,
    python: Option<PathBuf>,
    memory: Option<u32>,
    timeout: Option<f64>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    tracing: Option<TracingMode>,
}

impl Functions {
    /// Reads and checks a functions file.
    pub fn load(path: &Path) -> Result<Functions, LambdaError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| LambdaError::Config(format!("cannot read {}: {error}", path.display())))?;
        // Absolute, since a process's relative program path would be taken from its own working directory.
        let parent = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = std::path::absolute(parent)
            .map_err(|error| LambdaError::Config(format!("cannot resolve {}: {error}", path.display())))?;
        Functions::parse(&text, &base).map_err(|message| LambdaError::Config(format!("{}: {message}", path.display())))
    }

    /// Parses a functions file's text; relative paths are joined to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Functions, String> {
        let file: File = toml::from_str(text).map_err(|error| error.to_string().trim_end().to_owned())?;
        let functions = file
            .functions
            .into_iter()
            .map(|(name, entry)| {
                let function =
                    entry.into_config(&name, base).map_err(|message| format!("function {name}: {message}"))?;
                Ok((name, function))
            })
            .collect::<Result<_, String>>()?;
        Ok(Functions { functions })
    }

    /// The function named `name`, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&FunctionConfig, LambdaError> {
        self.functions.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.functions.keys().map(String::as_str).collect();
            LambdaError::Config(format!("no function {name:?} in the functions file (it has: {})", known.join(", ")))
        })
    }
}

impl Entry {
    fn into_config(self, name: &str, base: &Path) -> Result<FunctionConfig, String> {
        if !valid_name(name) {
            return Err("a name is 1 to 64 letters, digits, '-' or '_'".into());
        }
        let code = match (self.executable, self.handler) {
            (Some(executable), None) => {
                if self.code.is_some() || self.python.is_some() {
                    return Err("`code` and `python` go with `handler`, not `executable`".into());
                }
                Code::Executable(base.join(executable))
            }
            (None, Some(handler)) => {
                if !handler.contains('.') {
                    return Err(format!("handler {handler:?} is not `module.function`"));
                }
                Code::Python {
                    handler,
                    directory: base.join(self.code.unwrap_or_else(|| PathBuf::from("."))),
                    python: self.python.map_or_else(|| PathBuf::from("python3"), |python| interpreter(base, python)),
                }
            }
            _ => return Err("give exactly one of `executable` (a custom runtime) or `handler` (Python)".into()),
        };
        let memory_mb = self.memory.unwrap_or(DEFAULT_MEMORY);
        if !(128..=10_240).contains(&memory_mb) {
            return Err(format!("memory {memory_mb} MB is outside Lambda's 128 to 10240"));
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if !(timeout > 0.0 && timeout <= MAX_TIMEOUT) {
            return Err(format!("timeout {timeout} s is outside Lambda's 0 to 900"));
        }
        Ok(FunctionConfig {
            name: name.to_owned(),
            code,
            memory_mb,
            timeout: Duration::from_secs_f64(timeout),
            environment: self.environment,
            tracing: self.tracing.unwrap_or(TracingMode::Active),
        })
    }
}

/// A bare command name (`python3`) is looked up on PATH; a path is relative to the file.
fn interpreter(base: &Path, python: PathBuf) -> PathBuf {
    if python.components().count() > 1 { base.join(python) } else { python }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Functions, String> {
        Functions::parse(text, Path::new("/project"))
    }

    #[test]
    fn executables_and_python_handlers_with_lambdas_defaults() {
        let functions = parse(
            r#"
            [functions.Orders]
            executable = "target/release/orders"
            environment = { SERVICE = "orders" }

            [functions.Users]
            handler = "app.lambda_handler"
            code = "python"
            python = ".venv/bin/python"
            memory = 512
            timeout = 1.5
            tracing = "PassThrough"
            "#,
        )
        .unwrap();
        let orders = &functions.functions["Orders"];
        assert_eq!(orders.code, Code::Executable(PathBuf::from("/project/target/release/orders")));
        assert_eq!(
            (orders.memory_mb, orders.timeout, orders.tracing),
            (128, Duration::from_secs(3), TracingMode::Active)
        );
        assert_eq!(orders.environment["SERVICE"], "orders");
        let users = &functions.functions["Users"];
        assert_eq!(
            users.code,
            Code::Python {
                handler: "app.lambda_handler".into(),
                directory: PathBuf::from("/project/python"),
                python: PathBuf::from("/project/.venv/bin/python"),
            }
        );
        assert_eq!(
            (users.memory_mb, users.timeout, users.tracing),
            (512, Duration::from_millis(1500), TracingMode::PassThrough)
        );
    }

    #[test]
    fn a_bare_interpreter_name_is_looked_up_on_path() {
        let functions = parse("[functions.F]\nhandler = \"app.handler\"\n").unwrap();
        let Code::Python { python, directory, .. } = &functions.functions["F"].code else { panic!() };
        assert_eq!((python.as_path(), directory.as_path()), (Path::new("python3"), Path::new("/project/.")));
    }

    #[test]
    fn mistakes_are_named() {
        let error = |text: &str| parse(text).unwrap_err();
        assert_eq!(
            error("[functions.F]\nexecutable = \"f\"\nhandler = \"a.b\"\n"),
            "function F: give exactly one of `executable` (a custom runtime) or `handler` (Python)"
        );
        assert_eq!(error("[functions.F]\nhandler = \"app\"\n"), "function F: handler \"app\" is not `module.function`");
        assert_eq!(
            error("[functions.F]\nexecutable = \"f\"\nmemory = 64\n"),
            "function F: memory 64 MB is outside Lambda's 128 to 10240"
        );
        assert_eq!(
            error("[functions.F]\nexecutable = \"f\"\ntimeout = 0\n"),
            "function F: timeout 0 s is outside Lambda's 0 to 900"
        );
        assert_eq!(
            error("[functions.\"a b\"]\nexecutable = \"f\"\n"),
            "function a b: a name is 1 to 64 letters, digits, '-' or '_'"
        );
        assert!(error("[functions.F]\nexecutable = \"f\"\ntracing = \"On\"\n").contains("unknown variant `On`"));
        assert!(error("[functions.F]\nexecutable = \"f\"\nmemroy = 256\n").contains("unknown field `memroy`"));
    }

    #[test]
    fn an_unknown_function_lists_the_known_ones() {
        let functions = parse("[functions.A]\nexecutable = \"a\"\n[functions.B]\nexecutable = \"b\"\n").unwrap();
        assert_eq!(
            functions.get("C").unwrap_err().to_string(),
            "no function \"C\" in the functions file (it has: A, B)"
        );
    }
}
