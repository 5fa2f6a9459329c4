//! The no_std test guest (`vmm/test-guest`, driver
//! `src/virtio_vsock/`) exchanges data over the builtin VMM's
//! virtio-vsock device with this test, which plays the host program on
//! the hybrid Unix sockets (`--vsock uds=PATH`), with the VMM's seccomp
//! filters at their default (on):
//!
//! - guest → host: the guest connects to host port 2000 (`PATH_2000`, a
//!   listener here), sends 300 000 bytes, half-closes; the host checks
//!   them, answers 200 000 bytes and closes; the guest checks them;
//! - host → guest: `CONNECT 1024` to the guest's echo service, several
//!   connections open at once, each echoing hundreds of KiB both ways at
//!   the same time (many rx buffers, credit updates both ways; one reads
//!   late, so credit runs out both ways and the guest queues bytes), every
//!   byte checked here; then one more in 100-byte writes after they
//!   closed; `CONNECT 1025` asks the guest to stop, and the VM ends with a
//!   requested stop.
//!
//! The failing side is tested too: a corrupted reply, a refused port and a
//! CID mismatch make the guest report FAIL and exit with status 3.
//!
//! Needs `/dev/kvm` and the `x86_64-unknown-none` target; without them
//! each test prints a loud SKIP line (and fails under CI).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::Duration;

use common::vsock::{connect, echo_exchange, pattern_bytes, pattern_mismatch, IO_TIMEOUT};
use common::{assert_ok_lines, path_str, prerequisites, spawn_podvm_vmm, Boot, Run};

/// How long to wait for the VMM to create its socket.
const SOCKET_WAIT: Duration = Duration::from_secs(10);
/// The guest → host exchange.
const GUEST_SENDS: usize = 300_000;
const HOST_ANSWERS: usize = 200_000;

/// Serves the guest's one connection to `PATH_<port>`: reads to EOF,
/// checks the guest's bytes, answers `answer` bytes (with `corrupt_at`
/// flipped) and closes. Returns the bytes received.
fn serve_guest_connection(
    uds: &Path,
    port: u32,
    answer: usize,
    corrupt_at: Option<usize>,
) -> JoinHandle<Result<usize, String>> {
    let mut path = uds.as_os_str().to_owned();
    path.push(format!("_{port}"));
    let listener = UnixListener::bind(PathBuf::from(path)).expect("bind the host port");
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
        stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
        let mut got = Vec::new();
        stream
            .read_to_end(&mut got)
            .map_err(|e| format!("reading the guest's data: {e}"))?;
        if let Some(at) = pattern_mismatch(b'g', 0, &got) {
            return Err(format!("guest byte {at} differs"));
        }
        let mut reply = pattern_bytes(b'h', 0, answer);
        if let Some(at) = corrupt_at {
            reply[at] ^= 0x40;
        }
        stream
            .write_all(&reply)
            .map_err(|e| format!("answering the guest: {e}"))?;
        Ok(got.len())
    })
}

/// The guest's `vsock echo: N connections, at most M at once, B bytes
/// echoed, Z of them from the rx buffer in place` line as (N, M, B, Z).
fn echo_stats(stdout: &str) -> (u64, u64, u64, u64) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("vsock echo: "))
        .unwrap_or_else(|| panic!("no echo statistics:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split(' ')
        .filter_map(|word| word.parse().ok())
        .collect();
    match numbers[..] {
        [served, at_once, bytes, in_place] => (served, at_once, bytes, in_place),
        _ => panic!("bad echo statistics {line:?}"),
    }
}

fn vsock_arg(uds: &Path, cid: u32) -> String {
    format!("uds={},cid={cid}", path_str(uds))
}

#[test]
fn test_guest_exchanges_data_over_vsock_both_ways_under_seccomp() {
    let Some(guest) = prerequisites(
        "test_guest_exchanges_data_over_vsock_both_ways_under_seccomp",
        Boot::Linux64,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let uds = dir.path().join("v.sock");
    let guest_conn = serve_guest_connection(&uds, 2000, HOST_ANSWERS, None);
    let cmdline = format!(
        "testguest.mem_mib=64 testguest.vsock.cid=7 testguest.vsock.listen=1024 \
         testguest.vsock.stop=1025 testguest.vsock.connect=2000 \
         testguest.vsock.send={GUEST_SENDS} testguest.vsock.expect={HOST_ANSWERS} \
         testguest.end=exit:0"
    );
    let vm = spawn_podvm_vmm(&[
        "--kernel",
        path_str(guest),
        "--memory-mib",
        "64",
        "--vsock",
        &vsock_arg(&uds, 7),
        "--log-level",
        "debug",
        "--cmdline",
        &cmdline,
    ]);

    // Three echo connections open at once, each moving its bytes both ways
    // concurrently, more than the guest's (and the VMM's) 256 KiB buffer.
    let lengths = [700_001usize, 400_000, 256 * 1024 + 7];
    let opened = Arc::new(Barrier::new(lengths.len()));
    let exchanged = Arc::new(Barrier::new(lengths.len()));
    let clients: Vec<_> = lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let (uds, opened, exchanged) = (uds.clone(), opened.clone(), exchanged.clone());
            std::thread::spawn(move || -> Result<(u32, u64), String> {
                let (stream, host_port) =
                    connect(&uds, 1024, SOCKET_WAIT).map_err(|e| format!("connect: {e}"))?;
                opened.wait();
                // The first one reads late: the buffers on the way (the
                // guest's and the VMM's 256 KiB, the host socket's) fill,
                // so credit runs out both ways and the guest queues bytes.
                let read_after = Duration::from_millis(if i == 0 { 500 } else { 0 });
                let echoed = echo_exchange(&stream, i as u8 + 1, len, 48 * 1024, read_after)
                    .map_err(|e| format!("connection {i}: {e}"));
                exchanged.wait();
                Ok((host_port, echoed?))
            })
        })
        .collect();
    let mut total = 0;
    let mut ports = Vec::new();
    for (client, len) in clients.into_iter().zip(lengths) {
        let (port, echoed) = client.join().expect("client thread").expect("echo");
        assert_eq!(echoed, len as u64);
        total += echoed;
        ports.push(port);
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "each connection has its own host port");
    assert!(ports.iter().all(|p| *p >= 1 << 30), "{ports:?}");

    // One more after those, in small writes; then the stop connection.
    let (stream, _) = connect(&uds, 1024, SOCKET_WAIT).expect("connect again");
    total += echo_exchange(&stream, 0x55, 20_000, 100, Duration::ZERO).expect("small writes echo");
    drop(stream);
    let (mut stop, _) = connect(&uds, 1025, SOCKET_WAIT).expect("connect to the stop port");
    let mut rest = Vec::new();
    stop.read_to_end(&mut rest)
        .expect("the guest closes the stop connection");
    assert!(rest.is_empty(), "{rest:?}");

    let received = guest_conn
        .join()
        .expect("host port thread")
        .expect("guest connection");
    assert_eq!(received, GUEST_SENDS);
    let run = vm.wait();
    assert_ok_lines(
        &run,
        &[
            "vsock-device",
            "vsock-connect",
            "vsock-echo",
            "vsock-protocol",
        ],
    );
    let stats = echo_stats(&run.stdout);
    assert_eq!(stats.0, 4, "connections served: {}", run.stdout);
    // The three were open together; the fourth may come before the guest
    // has seen them close.
    assert!(stats.1 >= 3, "connections at once: {}", run.stdout);
    assert_eq!(stats.2, total, "bytes echoed: {}", run.stdout);
    // Both ways of echoing were taken: straight from the rx buffer, and
    // queued in the connection's buffer while the host had no room.
    assert!(
        0 < stats.3 && stats.3 < total,
        "bytes echoed in place: {}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("vsock: device at 0xd0000000, guest cid 7"));
    assert!(run.stdout.contains("podvm-test-guest: all checks passed"));
    assert!(run
        .stderr
        .contains("seccomp filters installed on every VMM thread"));
    assert_eq!(run.status.code(), Some(0), "a requested stop");
    assert!(!uds.exists(), "the VMM removed its socket");
}

/// What the host does on `PATH_2000` in [`client_run`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// Answers the guest's 5000 bytes with 1000 of the pattern.
    Answers,
    /// The same with byte 777 flipped.
    Corrupts,
    /// Nothing listens.
    Absent,
}

/// Boots the guest as a vsock client of host port 2000 (the device with
/// `device_cid`, the guest expecting `expect_cid`) and returns the run.
fn client_run(dir: &Path, name: &str, device_cid: u32, expect_cid: u32, host: Host) -> Run {
    let guest = common::test_guest(Boot::Linux64).expect("test guest");
    let uds = dir.join(format!("{name}.sock"));
    let served = (host != Host::Absent)
        .then(|| serve_guest_connection(&uds, 2000, 1000, (host == Host::Corrupts).then_some(777)));
    let cmdline = format!(
        "testguest.mem_mib=32 testguest.vsock.cid={expect_cid} testguest.vsock.connect=2000 \
         testguest.vsock.send=5000 testguest.vsock.expect=1000"
    );
    let vm = spawn_podvm_vmm(&[
        "--kernel",
        path_str(guest),
        "--memory-mib",
        "32",
        "--vsock",
        &vsock_arg(&uds, device_cid),
        "--cmdline",
        &cmdline,
    ]);
    let run = vm.wait();
    if let Some(served) = served {
        if device_cid == expect_cid {
            assert_eq!(served.join().expect("host port thread"), Ok(5000));
        }
    }
    run
}

#[test]
fn test_guest_vsock_checks_fail_on_bad_replies_refusals_and_cids() {
    if prerequisites(
        "test_guest_vsock_checks_fail_on_bad_replies_refusals_and_cids",
        Boot::Linux64,
    )
    .is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");

    let good = client_run(dir.path(), "good", 3, 3, Host::Answers);
    assert_ok_lines(&good, &["vsock-device", "vsock-connect", "vsock-protocol"]);
    assert_eq!(good.status.code(), Some(0));

    let corrupted = client_run(dir.path(), "corrupt", 3, 3, Host::Corrupts);
    assert!(
        corrupted.stdout.contains("FAIL vsock-connect")
            && corrupted.stdout.contains("mismatch: Some(777)"),
        "{}",
        corrupted.stdout
    );
    assert_eq!(corrupted.status.code(), Some(3), "a failed check");

    // Nothing listens on PATH_2000 here: the VMM answers RST.
    let refused = client_run(dir.path(), "refused", 3, 3, Host::Absent);
    assert!(
        refused.stdout.contains("FAIL vsock-connect")
            && refused.stdout.contains("reset by the host"),
        "{}",
        refused.stdout
    );
    assert_eq!(refused.status.code(), Some(3));

    let wrong_cid = client_run(dir.path(), "cid", 9, 3, Host::Absent);
    assert!(
        wrong_cid.stdout.contains("FAIL vsock-device") && wrong_cid.stdout.contains("cid=9"),
        "{}",
        wrong_cid.stdout
    );
    assert_eq!(wrong_cid.status.code(), Some(3));
}
