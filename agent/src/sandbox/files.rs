//! The files every container of the pod gets bind-mounted: `/etc/hosts` in
//! kubelet's format, `/etc/hostname` and `/etc/resolv.conf`.

use podvm_proto::HostAlias;

/// The address the pod's own hostname maps to. There is no pod network yet,
/// so (like Debian for a host without one) a loopback address is used; it
/// becomes the pod IP once pods get interfaces.
pub const POD_HOST_IP: &str = "127.0.1.1";

/// `/etc/hosts` as kubelet writes it (`managedHostsFileContent`).
pub fn hosts_file(hostname: &str, aliases: &[HostAlias]) -> String {
    let mut out = String::from("# Kubernetes-managed hosts file.\n");
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    out.push_str(&format!("{POD_HOST_IP}\t{hostname}\n"));
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            out.push_str(&format!("{}\t{}\n", alias.ip, alias.hostnames.join("\t")));
        }
    }
    out
}

/// `/etc/hostname`.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// `/etc/resolv.conf`: no cluster DNS is configured yet.
pub fn resolv_conf() -> String {
    "# no DNS configured\n".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_like_kubelet() {
        let aliases = vec![
            HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: vec!["foo.local".into(), "bar.local".into()],
            },
            HostAlias {
                ip: "10.1.2.4".into(),
                hostnames: vec!["baz".into()],
            },
        ];
        let text = hosts_file("web-0", &aliases);
        assert_eq!(
            text,
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
             127.0.1.1\tweb-0\n\n# Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\tbar.local\n10.1.2.4\tbaz\n"
        );
        assert!(!hosts_file("h", &[]).contains("HostAliases"));
    }
}
