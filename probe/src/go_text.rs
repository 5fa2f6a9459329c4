//! Error and duration texts written the way Go (and so kubelet) writes them,
//! so that probe messages read like kubelet's events.

use std::io;
use std::time::Duration;

/// `net.JoinHostPort`: brackets around IPv6 literals.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's text for a socket error (`syscall.Errno.Error()`), e.g.
/// `connection refused`; other errors keep their own text.
pub(crate) fn errno_text(err: &io::Error) -> String {
    let known = match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset by peer",
        io::ErrorKind::ConnectionAborted => "software caused connection abort",
        io::ErrorKind::HostUnreachable => "no route to host",
        io::ErrorKind::NetworkUnreachable => "network is unreachable",
        io::ErrorKind::TimedOut => "connection timed out",
        io::ErrorKind::AddrNotAvailable => "cannot assign requested address",
        io::ErrorKind::PermissionDenied => "permission denied",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let text = err.to_string();
    match err.raw_os_error() {
        // Rust writes "Text (os error N)"; Go writes "text".
        Some(code) => {
            let bare = text
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&text);
            let mut chars = bare.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
        None => text,
    }
}

/// The `dial tcp ADDR: connect: ERRNO` text of a failed TCP connect.
pub(crate) fn dial_error(addr: &str, err: &io::Error) -> String {
    format!("dial tcp {addr}: connect: {}", errno_text(err))
}

/// The `dial tcp ADDR: i/o timeout` text of a connect that ran out of time.
pub(crate) fn dial_timeout(addr: &str) -> String {
    format!("dial tcp {addr}: i/o timeout")
}

/// Go's `time.Duration.String()`: `1s`, `1.5s`, `2m0s`, `500ms`.
pub(crate) fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let total_secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let (hours, minutes, secs) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let secs = fraction(secs * 1_000_000_000 + sub, 1_000_000_000);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// `value / unit` with the fraction's trailing zeros removed.
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let rest = value % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration(Duration::from_secs(1)), "1s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(duration(Duration::from_secs(3725)), "1h2m5s");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
        assert_eq!(duration(Duration::from_micros(1250)), "1.25ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn hosts_join_like_go() {
        assert_eq!(join_host_port("127.0.0.1", 80), "127.0.0.1:80");
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
    }

    #[test]
    fn errno_texts_are_go_s() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(
            dial_error("127.0.0.1:1", &refused),
            "dial tcp 127.0.0.1:1: connect: connection refused"
        );
        // ENOENT is not in the table: Rust's text, lowercased, bare.
        assert_eq!(
            errno_text(&io::Error::from_raw_os_error(2)),
            "no such file or directory"
        );
    }
}
