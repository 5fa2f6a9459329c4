//! Running code in another process's network namespace, for what the
//! agent must do from inside the pod's network (TCP and HTTP probes reach
//! `127.0.0.1` of the pod, not of the agent).
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling thread only,
//! so the code runs on a thread of its own that joins the namespace, runs
//! it and ends; the caller's threads never change namespace. Sockets keep
//! the namespace they were made in, so what the code returns (a connected
//! stream, say) can still be used from any thread.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};

/// Why code could not run in the namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("opening {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("joining the network namespace {path}: {source}")]
    Join {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("starting a thread for the network namespace: {0}")]
    Thread(#[source] io::Error),
    #[error("the code run in the network namespace panicked")]
    Panicked,
}

/// Runs `f` in the network namespace of process `pid` (for a pod, its
/// sandbox holder: `/proc/<pid>/ns/net`) and returns what it returned.
pub fn run_in<T, F>(pid: i32, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    // Opened here, so the namespace is the one of `pid` now, whatever
    // happens to `pid` while the thread starts.
    let ns = File::open(&path).map_err(|source| NetnsError::Open {
        path: path.clone(),
        source,
    })?;
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("netns".into())
            .spawn_scoped(scope, move || {
                setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map_err(|source| NetnsError::Join { path, source })?;
                drop(ns);
                Ok(f())
            })
            .map_err(NetnsError::Thread)?;
        worker.join().map_err(|_| NetnsError::Panicked)?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The network namespace the calling thread is in.
    fn own_namespace() -> String {
        std::fs::read_link("/proc/thread-self/ns/net")
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_process_that_does_not_exist_has_no_namespace() {
        // PIDs never reach i32::MAX (the kernel's limit is 2^22).
        let e = run_in(i32::MAX, || ()).unwrap_err();
        assert!(matches!(e, NetnsError::Open { .. }), "{e}");
        assert!(e.to_string().contains("/proc/2147483647/ns/net"), "{e}");
    }

    #[test]
    fn the_result_comes_back_and_the_caller_stays_where_it_was() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            podvm_testsupport::skip("netns::run_in in its own namespace", "needs root (setns)");
            return;
        }
        let before = own_namespace();
        let pid = std::process::id() as i32;
        // The code may borrow from the caller's stack.
        let borrowed = String::from("from the caller");
        let (len, inside) = run_in(pid, || (borrowed.len(), own_namespace())).unwrap();
        assert_eq!((len, inside), (borrowed.len(), before.clone()));
        assert!(matches!(
            run_in(pid, || panic!("on purpose")),
            Err(NetnsError::Panicked)
        ));
        assert_eq!(own_namespace(), before);
    }
}
