//! Command-line options of the agent.
//!
//! ```text
//! podvm-agent                                   # in the VM: vsock 1024, /run/podvm
//! podvm-agent --listen unix:PATH --run-dir DIR  # host (test) mode
//! podvm-agent --listen vsock:PORT
//! ```

use std::path::PathBuf;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Vsock(u32),
    Unix(PathBuf),
}

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub listen: Listen,
    pub run_dir: PathBuf,
}

/// The run directory in the VM.
pub const DEFAULT_RUN_DIR: &str = "/run/podvm";

/// Bad command line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("invalid --listen {0:?} (want unix:PATH or vsock:PORT)")]
    BadListen(String),
}

/// Parses the arguments after the program name. Unknown arguments are
/// ignored: as PID 1 the kernel passes unrecognised boot parameters on.
pub fn parse(args: &[String]) -> Result<Options, CliError> {
    let mut opts = Options {
        listen: Listen::Vsock(podvm_proto::AGENT_VSOCK_PORT),
        run_dir: PathBuf::from(DEFAULT_RUN_DIR),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => {
                let value = it
                    .next()
                    .ok_or_else(|| CliError::MissingValue(arg.clone()))?;
                opts.listen = parse_listen(value)?;
            }
            "--run-dir" => {
                let value = it
                    .next()
                    .ok_or_else(|| CliError::MissingValue(arg.clone()))?;
                opts.run_dir = PathBuf::from(value);
            }
            _ => {}
        }
    }
    Ok(opts)
}

fn parse_listen(value: &str) -> Result<Listen, CliError> {
    if let Some(path) = value.strip_prefix("unix:").filter(|p| !p.is_empty()) {
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    if let Some(port) = value.strip_prefix("vsock:") {
        return port
            .parse()
            .map(Listen::Vsock)
            .map_err(|_| CliError::BadListen(value.into()));
    }
    Err(CliError::BadListen(value.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_modes() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.listen, Listen::Vsock(1024));
        assert_eq!(o.run_dir, PathBuf::from(DEFAULT_RUN_DIR));
        let o = parse(&args(&[
            "--listen",
            "unix:/tmp/a.sock",
            "--run-dir",
            "/tmp/r",
        ]))
        .unwrap();
        assert_eq!(o.listen, Listen::Unix("/tmp/a.sock".into()));
        assert_eq!(o.run_dir, PathBuf::from("/tmp/r"));
        assert_eq!(
            parse(&args(&["--listen", "vsock:99"])).unwrap().listen,
            Listen::Vsock(99)
        );
        assert!(parse(&args(&["--listen", "tcp:1"])).is_err());
        assert!(parse(&args(&["--listen"])).is_err());
    }
}
