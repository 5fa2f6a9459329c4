//! The `Logs` request: a container's CRI log, optionally only its last
//! lines, optionally followed until the container is done for good.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use podvm_proto::{FrameError, Response};

use crate::conn::Conn;
use crate::container::Container;

/// Largest `Log` frame payload sent (well under the frame limit).
const CHUNK: usize = 1024 * 1024;
/// How often a follower looks for new output without being woken.
const POLL: Duration = Duration::from_millis(250);

/// Index where the last `n` lines of `data` start.
pub fn tail_start(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0u64;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// Sends `data` as `Log` frames cut at line ends (a line over [`CHUNK`] is cut).
fn send_lines(conn: &mut Conn, mut data: &[u8]) -> Result<(), FrameError> {
    while !data.is_empty() {
        let mut cut = data.len().min(CHUNK);
        if cut < data.len() {
            if let Some(nl) = data[..cut].iter().rposition(|b| *b == b'\n') {
                cut = nl + 1;
            }
        }
        let lines = String::from_utf8_lossy(&data[..cut]).into_owned();
        conn.send(&Response::Log { lines })?;
        data = &data[cut..];
    }
    Ok(())
}

/// Reads what the log holds from `offset` on (at most `CHUNK` bytes).
fn read_from(path: &Path, offset: u64) -> Vec<u8> {
    let mut data = Vec::new();
    if let Ok(mut file) = File::open(path) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.take(CHUNK as u64).read_to_end(&mut data);
        }
    }
    data
}

/// Serves one `Logs` request.
pub fn serve(
    conn: &mut Conn,
    container: &Container,
    tail: Option<u64>,
    follow: bool,
) -> Result<(), FrameError> {
    let path = container.log_path.as_path();
    let initial = std::fs::read(path).unwrap_or_default();
    let start = tail.map_or(0, |n| tail_start(&initial, n));
    let complete = initial
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    send_lines(conn, &initial[start.min(complete)..complete])?;
    let mut offset = complete as u64;
    if !follow {
        return conn.send(&Response::End);
    }
    loop {
        let seen = container.wake.current();
        let finished = container.is_finished();
        let data = read_from(path, offset);
        let complete = if finished {
            data.len()
        } else {
            data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        };
        if complete > 0 {
            send_lines(conn, &data[..complete])?;
            offset += complete as u64;
            continue;
        }
        if finished {
            return conn.send(&Response::End);
        }
        if conn.peer_gone() {
            return Ok(());
        }
        container.wake.wait_past(seen, POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_positions() {
        let data = b"a\nb\nc\n";
        assert_eq!(&data[tail_start(data, 1)..], b"c\n");
        assert_eq!(&data[tail_start(data, 2)..], b"b\nc\n");
        assert_eq!(&data[tail_start(data, 3)..], b"a\nb\nc\n");
        assert_eq!(&data[tail_start(data, 10)..], b"a\nb\nc\n");
        assert_eq!(tail_start(data, 0), data.len());
        assert_eq!(tail_start(b"", 2), 0);
    }
}
