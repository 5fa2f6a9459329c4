//! `podvm exec -it` driven through a pseudo-terminal, as a person at a
//! terminal would: commands typed, the window resized (`stty size` in the
//! container follows), Ctrl-C interrupting a `sleep`, Ctrl-D ending `cat`,
//! the exit code coming back, and the terminal left as it was found.
//! Needs what tests/e2e_pods.rs needs (scripts/test.sh provides it).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{require_e2e, Podvm};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, LocalFlags};

/// Last resort for anything the test waits on.
const GENEROUS: Duration = Duration::from_secs(120);

const SHELL_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: shell
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
"#;

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// What the terminal showed, as it arrives.
#[derive(Clone, Default)]
struct Screen(Arc<(Mutex<Vec<u8>>, Condvar)>);

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0 .0.lock().unwrap()).into_owned()
    }

    /// Waits until the output after byte `from` contains `needle`; returns
    /// where the match ends.
    fn expect(&self, from: usize, needle: &str) -> usize {
        let limit = Instant::now() + GENEROUS;
        let mut seen = self.0 .0.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&seen[from.min(seen.len())..]).into_owned();
            if let Some(at) = text.find(needle) {
                return from + at + needle.len();
            }
            let left = limit.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} on the terminal; it shows:\n{text}"
            );
            seen = self.0 .1.wait_timeout(seen, left).unwrap().0;
        }
    }

    fn len(&self) -> usize {
        self.0 .0.lock().unwrap().len()
    }
}

#[test]
fn exec_it_is_a_real_terminal() {
    if !require_e2e("exec_it") {
        return;
    }
    let p = Podvm::with_image("busybox-oci.tar");
    let manifest = p.write("shell.yaml", SHELL_POD);
    p.ok(&["apply", "-f", manifest.to_str().unwrap()]);

    let pty = openpty(Some(&size(30, 100)), None).unwrap();
    let (master, slave): (OwnedFd, OwnedFd) = (pty.master, pty.slave);
    let mut cmd = p.cmd();
    cmd.args(["exec", "-it", "shell", "--", "sh"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl(TIOCSCTTY) are async-signal-safe and touch
    // no memory of the parent; they run between fork and exec, making the
    // pty podvm's controlling terminal (so resizes reach it as SIGWINCH).
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut podvm = cmd.spawn().unwrap();
    let screen = Screen::default();
    let mut reader = std::fs::File::from(master.try_clone().unwrap());
    {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.0 .0.lock().unwrap().extend_from_slice(&buf[..n]);
                screen.0 .1.notify_all();
            }
        });
    }
    let mut keys = std::fs::File::from(master.try_clone().unwrap());
    let mut type_ = |text: &str| keys.write_all(text.as_bytes()).unwrap();

    // The terminal's size at start.
    let mark = screen.len();
    type_("stty size\r");
    let mark = screen.expect(mark, "30 100");
    // Raw mode on the host side while the remote shell has the terminal.
    let modes = tcgetattr(slave.as_fd()).unwrap();
    assert!(
        !modes.local_flags.contains(LocalFlags::ICANON),
        "host terminal raw"
    );

    // A resize reaches the container (SIGWINCH → TtyWinResize).
    // SAFETY: TIOCSWINSZ reads one Winsize from the pointer we pass.
    unsafe { set_winsize(master.as_raw_fd(), &size(40, 120)) }.unwrap();
    let limit = Instant::now() + GENEROUS;
    let mut mark = mark;
    loop {
        type_("stty size\r");
        let shown = screen.expect(mark, "\n");
        let text = screen.text();
        if text[mark..].contains("40 120") {
            mark = screen.expect(mark, "40 120");
            break;
        }
        assert!(Instant::now() < limit, "the resize never arrived:\n{text}");
        mark = shown;
        std::thread::sleep(Duration::from_millis(200));
    }

    // Ctrl-C reaches the running process.
    type_("sh -c 'echo sleeping; exec sleep 1000'\r");
    let mark = screen.expect(mark, "sleeping\r\n");
    type_("\x03");
    type_("echo rc=$?\r");
    let mark = screen.expect(mark, "rc=130");

    // Ctrl-D ends cat's input (typed once cat has the terminal: the
    // shell's line editor would otherwise read the typed-ahead line).
    type_("sh -c 'echo reading; exec cat'\r");
    let mark = screen.expect(mark, "reading\r\n");
    type_("hello\r");
    let mark = screen.expect(mark, "hello\r\nhello");
    type_("\x04");
    type_("echo cat-done\r");
    screen.expect(mark, "cat-done\r\n");

    // The exit code comes back.
    type_("exit 3\r");
    let limit = Instant::now() + GENEROUS;
    let status = loop {
        if let Some(status) = podvm.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < limit,
            "podvm did not exit:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3), "{}", screen.text());
    let modes = tcgetattr(slave.as_fd()).unwrap();
    assert!(
        modes
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "the terminal is restored"
    );
    p.ok(&["delete", "pod", "shell"]);
}
