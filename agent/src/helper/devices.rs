//! The devices every container gets (the OCI spec's default devices) when
//! its spec mounts a tmpfs at `/dev`: null, zero, full, random, urandom and
//! tty bind-mounted from the agent's `/dev`, `/dev/ptmx` pointing into the
//! container's devpts, and the `fd`/`stdin`/`stdout`/`stderr` links.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::Context;
use nix::mount::{mount, MsFlags};

/// Device nodes bind-mounted from the agent's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Links made in `/dev`.
const LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Populates the container's `/dev` at `dev` (a fresh tmpfs).
pub fn populate(dev: &Path) -> anyhow::Result<()> {
    for name in DEVICES {
        let target = dev.join(name);
        fs::File::create(&target).with_context(|| format!("creating /dev/{name}"))?;
        let source = Path::new("/dev").join(name);
        mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("binding /dev/{name}"))?;
    }
    for (link, target) in LINKS {
        let path = dev.join(link);
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        symlink(target, &path).with_context(|| format!("linking /dev/{link}"))?;
    }
    Ok(())
}
