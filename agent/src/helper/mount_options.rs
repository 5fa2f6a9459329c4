//! An OCI mount's fstab-style options as `mount(2)` takes them: flags,
//! flags to clear, propagation changes (applied by separate calls) and the
//! filesystem-specific rest, as runc parses them.

use nix::mount::MsFlags;

/// Parsed options of one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Propagation changes, in order (`MS_PRIVATE`, `MS_REC | MS_SLAVE`...).
    pub propagation: Vec<MsFlags>,
    /// Everything else, comma-joined (`mode=755,size=65536k`).
    pub data: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// The flags that need a remount after a bind (a bind ignores them).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// A flag an option sets (`true`) or clears (`false`).
fn flag_option(option: &str) -> Option<(bool, MsFlags)> {
    let entry = match option {
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "atime" => (false, MsFlags::MS_NOATIME),
        "bind" => (true, MsFlags::MS_BIND),
        "defaults" => (true, MsFlags::empty()),
        "dev" => (false, MsFlags::MS_NODEV),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "nodev" => (true, MsFlags::MS_NODEV),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "suid" => (false, MsFlags::MS_NOSUID),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        _ => return None,
    };
    Some(entry)
}

/// The propagation flags of an option such as `rslave`.
pub fn propagation(option: &str) -> Option<MsFlags> {
    let flags = match option {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    };
    Some(flags)
}

/// Parses a mount's options.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for option in options {
        if let Some((set, flag)) = flag_option(option) {
            if set {
                out.flags |= flag;
            } else {
                out.flags &= !flag;
            }
        } else if let Some(p) = propagation(option) {
            out.propagation.push(p);
        } else if !option.is_empty() {
            data.push(option.as_str());
        }
    }
    out.data = data.join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_propagation_and_data() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.is_bind());

        let o = opts(&["rbind", "rprivate", "ro", "nosuid"]);
        assert!(o.is_bind());
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.data, "");

        // A later option undoes an earlier one.
        let o = opts(&["ro", "rw", "nodev", "dev", "newinstance"]);
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.data, "newinstance");
    }
}
