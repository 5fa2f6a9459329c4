//! The image config blob: what a container runs by default (entrypoint, cmd,
//! env, user, working dir) and the layers' uncompressed digests (diff_ids).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::parse_json;

/// The runtime defaults of an image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `KEY=value`.
    pub env: Vec<String>,
    /// `WorkingDir`, if set and not empty.
    pub working_dir: Option<String>,
    /// `User` (`name`, `uid`, `uid:gid`, ...), if set and not empty.
    pub user: Option<String>,
    /// `StopSignal`, if set and not empty.
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// What the store needs from a config blob.
#[derive(Debug)]
pub(crate) struct ParsedConfig {
    /// The runtime defaults.
    pub config: ImageConfig,
    /// The uncompressed digest of each layer, base first.
    pub diff_ids: Vec<Digest>,
    /// Creation time, as written.
    pub created: Option<String>,
}

/// The config document.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    config: Option<RunConfig>,
    rootfs: RootFs,
}

/// The `config` member of the config document.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    stop_signal: Option<String>,
}

/// The `rootfs` member of the config document.
#[derive(Deserialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

/// Parses a config blob; `what` names it in errors. Images for another
/// platform than linux/amd64 are rejected.
pub(crate) fn parse_config(bytes: &[u8], what: &str) -> Result<ParsedConfig> {
    let file: ConfigFile = parse_json(bytes, what)?;
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let os = non_empty(file.os);
    let arch = non_empty(file.architecture);
    if os.as_deref().is_some_and(|o| o != "linux") || arch.as_deref().is_some_and(|a| a != "amd64")
    {
        return Err(Error::Platform(format!(
            "{what} is for {}/{}, podvm runs linux/amd64 images",
            os.as_deref().unwrap_or("?"),
            arch.as_deref().unwrap_or("?")
        )));
    }
    if file.rootfs.kind != "layers" {
        return Err(Error::Corrupt(format!(
            "{what}: rootfs type {:?}, expected \"layers\"",
            file.rootfs.kind
        )));
    }
    let diff_ids = file
        .rootfs
        .diff_ids
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>>>()?;
    let run = file.config.unwrap_or(RunConfig {
        entrypoint: None,
        cmd: None,
        env: None,
        working_dir: None,
        user: None,
        stop_signal: None,
    });
    Ok(ParsedConfig {
        config: ImageConfig {
            entrypoint: run.entrypoint.unwrap_or_default(),
            cmd: run.cmd.unwrap_or_default(),
            env: run.env.unwrap_or_default(),
            working_dir: non_empty(run.working_dir),
            user: non_empty(run.user),
            stop_signal: non_empty(run.stop_signal),
        },
        diff_ids,
        created: non_empty(file.created),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_style_nulls() {
        let d = format!("sha256:{}", "1".repeat(64));
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":null,"Entrypoint":["/x"],"WorkingDir":"","User":"1000:1000","Env":["A=b"]}},"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        let p = parse_config(json.as_bytes(), "config").unwrap();
        assert_eq!(p.config.entrypoint, vec!["/x"]);
        assert!(p.config.cmd.is_empty());
        assert_eq!(p.config.working_dir, None);
        assert_eq!(p.config.user.as_deref(), Some("1000:1000"));
        assert_eq!(p.diff_ids.len(), 1);
    }

    #[test]
    fn rejects_other_platforms() {
        let json =
            r#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert!(matches!(
            parse_config(json.as_bytes(), "config"),
            Err(Error::Platform(_))
        ));
    }
}
