//! The termination message, as kubelet and its runtime manager handle it.
//!
//! Every run of a container gets a fresh empty file of mode 0666,
//! `<run>/containers/<name>/termination-log`, bound read-write at the
//! container's `terminationMessagePath`. When the run ends, the message is
//! the last 4096 bytes of that file ([`read_termination_message`]); with
//! `FallbackToLogsOnError`, a failed run that wrote nothing there gets the
//! last 80 lines of its log, at most their last 2048 bytes
//! ([`log_tail_message`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// kubelet's `MaxContainerTerminationMessageLength`.
pub const MAX_MESSAGE_BYTES: u64 = 4096;
/// kubelet's `MaxContainerTerminationMessageLogLength`.
pub const MAX_LOG_MESSAGE_BYTES: usize = 2048;
/// kubelet's `MaxContainerTerminationMessageLogLines`.
pub const MAX_LOG_MESSAGE_LINES: usize = 80;

/// The file name of a container's termination log in its directory.
const FILE_NAME: &str = "termination-log";

/// Where the termination log of `container` is, `containers` being
/// `<run>/containers`.
pub fn termination_log_path(containers: &Path, container: &str) -> PathBuf {
    containers.join(container).join(FILE_NAME)
}

/// Makes a fresh, empty termination log for a new run of `container`
/// (mode 0666 whatever the umask, as kubelet's chmod) and returns its path.
pub fn create_termination_log(containers: &Path, container: &str) -> io::Result<PathBuf> {
    let path = termination_log_path(containers, container);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    match fs::remove_file(&path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o666)
        .open(&path)?;
    file.set_permissions(fs::Permissions::from_mode(0o666))?;
    Ok(path)
}

/// Reads at most the last `max` bytes of `file`.
fn read_tail(file: &mut File, max: u64) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    if len > max {
        file.seek(SeekFrom::Start(len - max))?;
    }
    let mut data = Vec::new();
    file.take(max).read_to_end(&mut data)?;
    Ok(data)
}

/// The message a run left in its termination log at `path`: its last
/// [`MAX_MESSAGE_BYTES`]; `None` when the file is missing or empty (where
/// `FallbackToLogsOnError` looks at the log instead). A file that cannot be
/// read gives kubelet's `Error on reading termination log <path>: <why>`.
pub fn read_termination_message(path: &Path) -> Option<String> {
    let result = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut f| read_tail(&mut f, MAX_MESSAGE_BYTES));
    match result {
        Ok(data) if data.is_empty() => None,
        Ok(data) => Some(String::from_utf8_lossy(&data).into_owned()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => Some(format!(
            "Error on reading termination log {}: {e}",
            path.display()
        )),
    }
}

/// The text of one CRI log record (`<time> <stream> <F|P> <text>`): a full
/// (`F`) record's line gets its newline back, a partial one does not.
fn record_text(record: &[u8]) -> Option<Vec<u8>> {
    let mut fields = record.splitn(4, |b| *b == b' ');
    let (_time, _stream, tag) = (fields.next()?, fields.next()?, fields.next()?);
    let mut text = fields.next().unwrap_or_default().to_vec();
    if tag.split(|b| *b == b':').next() != Some(b"P".as_slice()) {
        text.push(b'\n');
    }
    Some(text)
}

/// The bytes of the last `lines` records of `file` (a CRI log).
fn last_records(file: &mut File, lines: usize) -> io::Result<Vec<u8>> {
    const CHUNK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut start = len;
    let mut data: Vec<u8> = Vec::new();
    loop {
        // Newlines before the last one: each starts a later record.
        let body = data.strip_suffix(b"\n").unwrap_or(&data);
        let newlines = body.iter().filter(|b| **b == b'\n').count();
        if newlines >= lines || start == 0 {
            let cut = if newlines >= lines {
                let mut seen = 0;
                body.iter()
                    .rposition(|b| {
                        seen += usize::from(*b == b'\n');
                        seen == lines
                    })
                    .map_or(0, |i| i + 1)
            } else {
                0
            };
            return Ok(data.split_off(cut));
        }
        let step = CHUNK.min(start);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&data);
        data = chunk;
    }
}

/// kubelet's termination message from the log (`FallbackToLogsOnError`):
/// the text of the last [`MAX_LOG_MESSAGE_LINES`] records of the CRI log at
/// `log_file`, stdout and stderr alike, of which the last
/// [`MAX_LOG_MESSAGE_BYTES`] are kept. A log that cannot be read gives
/// kubelet's `Error on reading termination message from logs: <why>`.
pub fn log_tail_message(log_file: &Path) -> String {
    log_tail(log_file, MAX_LOG_MESSAGE_BYTES, MAX_LOG_MESSAGE_LINES)
}

/// [`log_tail_message`] with other limits.
fn log_tail(log_file: &Path, max_bytes: usize, max_lines: usize) -> String {
    let records = File::open(log_file).and_then(|mut f| last_records(&mut f, max_lines));
    let records = match records {
        Ok(r) => r,
        Err(e) => return format!("Error on reading termination message from logs: {e}"),
    };
    let mut text: Vec<u8> = records
        .split(|b| *b == b'\n')
        .filter(|r| !r.is_empty())
        .filter_map(record_text)
        .flatten()
        .collect();
    if text.len() > max_bytes {
        text.drain(..text.len() - max_bytes);
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_fresh_world_writable_file_per_run() {
        let tmp = tempfile::tempdir().unwrap();
        let path = create_termination_log(tmp.path(), "app").unwrap();
        assert_eq!(path, tmp.path().join("app/termination-log"));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o666);
        fs::write(&path, "first run").unwrap();
        let again = create_termination_log(tmp.path(), "app").unwrap();
        assert_eq!(fs::read(&again).unwrap(), b"");
        // A symlink planted in its place is replaced, not followed.
        let target = tmp.path().join("target");
        fs::write(&target, "keep").unwrap();
        fs::remove_file(&again).unwrap();
        std::os::unix::fs::symlink(&target, &again).unwrap();
        create_termination_log(tmp.path(), "app").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&again).unwrap().is_file());
    }

    #[test]
    fn the_message_is_the_last_4096_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        assert_eq!(read_termination_message(&path), None);
        fs::write(&path, "").unwrap();
        assert_eq!(read_termination_message(&path), None);
        fs::write(&path, "bye\n").unwrap();
        assert_eq!(read_termination_message(&path).as_deref(), Some("bye\n"));
        let long = format!("{}{}", "a".repeat(100), "b".repeat(4096));
        fs::write(&path, &long).unwrap();
        assert_eq!(read_termination_message(&path), Some("b".repeat(4096)));
        let dir = tmp.path().join("dir");
        fs::create_dir(&dir).unwrap();
        let err = read_termination_message(&dir).unwrap();
        assert!(
            err.starts_with(&format!(
                "Error on reading termination log {}: ",
                dir.display()
            )),
            "{err}"
        );
    }

    fn record(stream: &str, tag: &str, text: &str) -> String {
        format!("2024-01-01T00:00:00.000000000Z {stream} {tag} {text}\n")
    }

    #[test]
    fn the_log_fallback_is_the_last_lines_text() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.log");
        let mut log = String::new();
        for i in 0..100 {
            log.push_str(&record("stdout", "F", &format!("line {i}")));
        }
        log.push_str(&record("stderr", "P", "half "));
        log.push_str(&record("stderr", "F", "done"));
        fs::write(&path, &log).unwrap();
        let msg = log_tail(&path, 10_000, MAX_LOG_MESSAGE_LINES);
        let expected: String = (22..100)
            .map(|i| format!("line {i}\n"))
            .chain(["half done\n".to_string()])
            .collect();
        assert_eq!(msg, expected);
        assert_eq!(log_tail(&path, 11, 80), "\nhalf done\n");
        assert_eq!(log_tail(&path, 2048, 1), "done\n");
        assert_eq!(
            log_tail_message(&path).len(),
            expected.len().min(MAX_LOG_MESSAGE_BYTES)
        );
        fs::write(&path, "").unwrap();
        assert_eq!(log_tail_message(&path), "");
        let missing = log_tail_message(&tmp.path().join("none.log"));
        assert!(
            missing.starts_with("Error on reading termination message from logs: "),
            "{missing}"
        );
    }

    #[test]
    fn a_long_log_is_read_from_its_end() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.log");
        let mut log = String::new();
        for i in 0..20_000 {
            log.push_str(&record("stdout", "F", &format!("{i:08}")));
        }
        fs::write(&path, &log).unwrap();
        assert_eq!(log_tail(&path, 2048, 2), "00019998\n00019999\n");
    }
}
