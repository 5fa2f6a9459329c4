//! Becoming the container's process as its OCI spec says: executable
//! lookup in the container's PATH, resource limits, OOM score, umask,
//! capability bounding set, groups, gid, uid, the other capability sets,
//! working directory, no-new-privileges, then `execve`.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use nix::sys::prctl;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, execve, setgid, setgroups, setuid, Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use super::caps;
use crate::oci;

/// Why the process could not be executed.
#[derive(Debug)]
pub struct ExecFailure {
    /// The executable does not exist (shells answer 127 for that).
    pub not_found: bool,
    pub message: String,
}

impl ExecFailure {
    fn other(message: String) -> Self {
        ExecFailure {
            not_found: false,
            message,
        }
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds `argv0` like Go's `exec.LookPath` (which runc uses): names with a
/// `/` are taken as they are, others are searched in `path_var`.
pub fn lookup(argv0: &str, path_var: Option<&str>) -> Result<String, ExecFailure> {
    if argv0.contains('/') {
        if std::fs::metadata(argv0).is_err() {
            return Err(ExecFailure {
                not_found: true,
                message: format!("exec: \"{argv0}\": stat {argv0}: no such file or directory"),
            });
        }
        return Ok(argv0.to_string());
    }
    for dir in path_var.unwrap_or_default().split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{dir}/{argv0}");
        if is_executable(Path::new(&candidate)) {
            return Ok(candidate);
        }
    }
    Err(ExecFailure {
        not_found: true,
        message: format!("exec: \"{argv0}\": executable file not found in $PATH"),
    })
}

fn cstrings(list: &[String]) -> Result<Vec<CString>, ExecFailure> {
    list.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| ExecFailure::other(format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

/// The resource of an OCI rlimit type.
fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Everything before the identity change: limits, OOM score, umask and
/// the bounding set (these need the helper's privileges).
fn before_identity(process: &Process) -> anyhow::Result<()> {
    for limit in process.rlimits().iter().flatten() {
        setrlimit(resource(limit.typ()), limit.soft(), limit.hard())
            .with_context(|| format!("setting {:?}", limit.typ()))?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .context("setting oom_score_adj")?;
    }
    if let Some(mask) = process.user().umask() {
        umask(Mode::from_bits_truncate(mask));
    }
    if let Some(spec) = process.capabilities() {
        caps::limit_bounding(spec)?;
        // The permitted set survives setuid; `caps::set_sets` trims it.
        prctl::set_keepcaps(true).context("keeping capabilities across setuid")?;
    }
    Ok(())
}

/// Groups, gid and uid; then the capability sets and the working directory.
fn identity(process: &Process) -> anyhow::Result<()> {
    let user = process.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).context("setgroups")?;
    setgid(Gid::from_raw(user.gid())).with_context(|| format!("setgid {}", user.gid()))?;
    setuid(Uid::from_raw(user.uid())).with_context(|| format!("setuid {}", user.uid()))?;
    if let Some(spec) = process.capabilities() {
        prctl::set_keepcaps(false).context("clearing keep-capabilities")?;
        caps::set_sets(spec)?;
    }
    let cwd = process.cwd();
    chdir(cwd).with_context(|| {
        format!(
            "chdir to cwd ({:?}) set in config.json failed",
            cwd.display().to_string()
        )
    })?;
    if process.no_new_privileges() == Some(true) {
        prctl::set_no_new_privs().context("setting no_new_privs")?;
    }
    Ok(())
}

/// Looks up the executable, becomes the process the spec describes and
/// executes it. Returns only on failure.
pub fn become_process(process: &Process) -> ExecFailure {
    let args = oci::args(process);
    let Some(argv0) = args.first() else {
        return ExecFailure::other("no command specified".into());
    };
    let exe = match lookup(argv0, oci::path_var(process)) {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    let env = process.env().as_deref().unwrap_or_default();
    let (exe_c, argv, env) = match (CString::new(exe.as_bytes()), cstrings(args), cstrings(env)) {
        (Ok(e), Ok(a), Ok(v)) => (e, a, v),
        (_, Err(e), _) | (_, _, Err(e)) => return e,
        (Err(_), _, _) => return ExecFailure::other(format!("{exe:?} contains a NUL byte")),
    };
    if let Err(e) = before_identity(process).and_then(|()| identity(process)) {
        return ExecFailure::other(format!("{e:#}"));
    }
    let err = match execve(&exe_c, &argv, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    ExecFailure {
        not_found: err == nix::errno::Errno::ENOENT,
        message: format!("exec: \"{exe}\": {}", err.desc()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_path() {
        assert_eq!(lookup("sh", Some("/nonexistent:/bin")).unwrap(), "/bin/sh");
        let e = lookup("no-such-binary-here", Some("/bin:/usr/bin")).unwrap_err();
        assert!(e.not_found);
        assert!(
            e.message.contains("executable file not found in $PATH"),
            "{}",
            e.message
        );
        assert!(lookup("/no/such", None).unwrap_err().not_found);
        assert_eq!(lookup("/bin/sh", None).unwrap(), "/bin/sh");
    }
}
