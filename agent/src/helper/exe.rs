//! Becoming the container's process: executable lookup in the container's
//! PATH, groups, gid, uid, working directory, then `execve`.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::{chdir, execve, setgid, setgroups, setuid, Gid, Uid};

use crate::container::config::ProcessConfig;

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

/// Looks up the executable, switches to the process's identity and working
/// directory and executes it. Returns only on failure.
pub fn become_process(process: &ProcessConfig) -> ExecFailure {
    let Some(argv0) = process.argv.first() else {
        return ExecFailure::other("no command specified".into());
    };
    let exe = match lookup(argv0, process.path_var()) {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    let (exe_c, argv, env) = match (
        CString::new(exe.as_bytes()),
        cstrings(&process.argv),
        cstrings(&process.env),
    ) {
        (Ok(e), Ok(a), Ok(v)) => (e, a, v),
        (_, Err(e), _) | (_, _, Err(e)) => return e,
        (Err(_), _, _) => return ExecFailure::other(format!("{exe:?} contains a NUL byte")),
    };
    let groups: Vec<Gid> = process.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = setgroups(&groups) {
        return ExecFailure::other(format!("setgroups: {e}"));
    }
    if let Err(e) = setgid(Gid::from_raw(process.gid)) {
        return ExecFailure::other(format!("setgid {}: {e}", process.gid));
    }
    if let Err(e) = setuid(Uid::from_raw(process.uid)) {
        return ExecFailure::other(format!("setuid {}: {e}", process.uid));
    }
    if let Err(e) = chdir(process.cwd.as_str()) {
        return ExecFailure::other(format!(
            "chdir to cwd ({:?}) set in config.json failed: {e}",
            process.cwd
        ));
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
