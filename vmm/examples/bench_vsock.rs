//! vsock benchmark: round-trip latency, throughput and connection set-up
//! over the builtin VMM's hybrid vsock (host Unix socket → `podvm-vmm` →
//! virtio-vsock → the no_std test guest's echo server, `vmm/test-guest`
//! with `testguest.vsock.listen=1024`), side by side with the same
//! workloads over a plain Unix socket pair on the host whose other end an
//! echo thread serves (connection set-up: against a Unix listener whose
//! thread accepts and answers a byte). Prints figures; asserts nothing
//! beyond the echo being right.
//!
//! ```text
//! cargo run --release -p podvm-vmm --example bench_vsock -- [--pings N] [--mib N] [--connects N] [--guest PATH] [--vmm PATH]
//! ```
//!
//! Without `--guest` it builds the test guest (needs `rustup target add
//! x86_64-unknown-none`) into `target/bench-vsock-guest`; without `--vmm`
//! it builds and uses the release `podvm-vmm` next to this example's
//! binary. Needs `/dev/kvm`. The guest polls its queues, so its vCPU
//! thread keeps one host core busy while it runs.

#[path = "../tests/common/guest_build.rs"]
mod guest_build;
#[path = "../tests/common/vsock.rs"]
mod vsock;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// The guest's echo and stop ports.
const ECHO_PORT: u32 = 1024;
const STOP_PORT: u32 = 1025;
/// Bytes per ping.
const PING: usize = 64;
/// Pings not measured first.
const WARMUP: usize = 200;
/// Write size of the throughput run.
const CHUNK: usize = 64 * 1024;

struct Options {
    pings: usize,
    mib: usize,
    connects: usize,
    guest: Option<PathBuf>,
    vmm: Option<PathBuf>,
}

fn options() -> Result<Options> {
    let mut options = Options {
        pings: 10_000,
        mib: 64,
        connects: 50,
        guest: None,
        vmm: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--pings" => options.pings = value()?.parse()?,
            "--mib" => options.mib = value()?.parse()?,
            "--connects" => options.connects = value()?.parse()?,
            "--guest" => options.guest = Some(value()?.into()),
            "--vmm" => options.vmm = Some(value()?.into()),
            // What `cargo bench`-style runners may pass.
            "--bench" => {}
            other => bail!("unknown argument {other:?} (see the file's doc comment)"),
        }
    }
    ensure!(options.pings > 0 && options.mib > 0 && options.connects > 0);
    Ok(options)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the test guest (release, `x86_64-unknown-none`).
fn build_test_guest() -> Result<PathBuf> {
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-vsock-guest");
    if let Some(why) = guest_build::guest_target_missing() {
        bail!("{why}");
    }
    guest_build::build_guest(&target_dir, &[]).map_err(anyhow::Error::msg)
}

/// Builds the release `podvm-vmm` beside this example (target/release).
fn build_vmm() -> Result<PathBuf> {
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "-p",
            "podvm-vmm",
            "--bin",
            "podvm-vmm",
        ])
        .status()
        .context("running cargo for podvm-vmm")?;
    ensure!(status.success(), "building podvm-vmm failed");
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("this example's directory")?;
    Ok(release.join("podvm-vmm"))
}

/// The VM, killed if the benchmark fails half-way.
struct Vm(Option<Child>);

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Round-trip times of `pings` 64-byte ping-pongs on `stream`, sorted.
fn ping_pong(stream: &mut UnixStream, pings: usize) -> Result<Vec<Duration>> {
    let mut out = [0u8; PING];
    let mut back = [0u8; PING];
    let mut times = Vec::with_capacity(pings);
    for i in 0..WARMUP + pings {
        out.fill(i as u8);
        let started = Instant::now();
        stream.write_all(&out)?;
        stream.read_exact(&mut back)?;
        let took = started.elapsed();
        ensure!(back == out, "ping {i} came back different");
        if i >= WARMUP {
            times.push(took);
        }
    }
    times.sort_unstable();
    Ok(times)
}

/// Echoes `mib` MiB through `stream` (a writer thread, this thread
/// reading); returns MiB/s of payload (each byte crosses both ways).
fn throughput(stream: &UnixStream, mib: usize) -> Result<f64> {
    let total = mib << 20;
    let mut writer = stream.try_clone()?;
    let started = Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let chunk = vsock::pattern_bytes(7, 0, CHUNK);
        for _ in 0..total / CHUNK {
            writer.write_all(&chunk)?;
        }
        Ok(())
    });
    let mut reader = stream;
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < total {
        let n = reader.read(&mut buf)?;
        ensure!(n > 0, "the echo ended after {got} of {total} bytes");
        if got == 0 {
            ensure!(
                vsock::pattern_mismatch(7, 0, &buf[..n]).is_none(),
                "first echoed bytes differ"
            );
        }
        got += n;
    }
    let secs = started.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    Ok(mib as f64 / secs)
}

/// Echoes everything `stream` reads until EOF, on its own thread.
fn echo_thread(mut stream: UnixStream) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 || stream.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
}

/// A socket pair whose far end an echo thread serves.
fn socketpair_echo() -> Result<UnixStream> {
    let (near, far) = UnixStream::pair()?;
    echo_thread(far);
    Ok(near)
}

/// The baseline of connection set-up: a Unix listener whose thread
/// accepts, answers one byte (as the VMM answers `OK`), and closes.
fn unix_accept_server(dir: &Path) -> Result<impl FnMut() -> Result<UnixStream>> {
    let path = dir.join("plain.sock");
    let listener = UnixListener::bind(&path)?;
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"K");
        }
    });
    Ok(move || {
        let mut stream = UnixStream::connect(&path)?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)?;
        Ok(stream)
    })
}

/// CPU time so far of each thread of process `pid`, by thread name
/// (`/proc/PID/task/*/schedstat`, nanoseconds on the CPU).
fn thread_cpu(pid: u32) -> Vec<(String, Duration)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        if let Some(ns) = stat.split(' ').next().and_then(|n| n.parse().ok()) {
            out.push((name.trim().to_string(), Duration::from_nanos(ns)));
        }
    }
    out
}

/// CPU time threads named `name` used between two [`thread_cpu`] samples.
fn cpu_between(
    before: &[(String, Duration)],
    after: &[(String, Duration)],
    name: &str,
) -> Duration {
    let sum = |sample: &[(String, Duration)]| {
        sample
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .sum::<Duration>()
    };
    sum(after).saturating_sub(sum(before))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

struct Figures {
    median: Duration,
    p99: Duration,
    mean: Duration,
    mib_s: f64,
    connect: Duration,
    /// For the VM: CPU time of the VMM's device thread and vCPU thread per
    /// round trip and per MiB echoed.
    cpu: Option<[Duration; 4]>,
}

/// Runs the workloads on `stream`, then times `connect` (until the far
/// side accepted) `options.connects` times.
/// (With `vmm` the VMM's pid, the CPU time of its threads is sampled too.)
fn measure(
    options: &Options,
    mut stream: UnixStream,
    mut connect: impl FnMut() -> Result<UnixStream>,
    vmm: Option<u32>,
) -> Result<Figures> {
    let sample = || vmm.map(thread_cpu).unwrap_or_default();
    let start = sample();
    let times = ping_pong(&mut stream, options.pings)?;
    let pinged = sample();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let mib_s = throughput(&stream, options.mib)?;
    let echoed = sample();
    let cpu = vmm.map(|_| {
        let rounds = (WARMUP + options.pings) as u32;
        let mib = options.mib as u32;
        [
            cpu_between(&start, &pinged, "devices") / rounds,
            cpu_between(&start, &pinged, "vcpu0") / rounds,
            cpu_between(&pinged, &echoed, "devices") / mib,
            cpu_between(&pinged, &echoed, "vcpu0") / mib,
        ]
    });
    drop(stream);
    let mut connects = Vec::with_capacity(options.connects);
    for _ in 0..options.connects {
        let started = Instant::now();
        let stream = connect()?;
        connects.push(started.elapsed());
        drop(stream);
    }
    connects.sort_unstable();
    Ok(Figures {
        median: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
        mean,
        mib_s,
        connect: percentile(&connects, 0.5),
        cpu,
    })
}

fn main() -> Result<()> {
    let options = options()?;
    let guest = match &options.guest {
        Some(path) => path.clone(),
        None => build_test_guest()?,
    };
    let vmm = match &options.vmm {
        Some(path) => path.clone(),
        None => build_vmm()?,
    };
    let dir = tempfile::tempdir()?;
    let uds = dir.path().join("v.sock");
    let started = Instant::now();
    let child = Command::new(&vmm)
        .args(["run", "--kernel"])
        .arg(&guest)
        .args(["--memory-mib", "64", "--vsock"])
        .arg(format!("uds={}", uds.display()))
        .arg("--cmdline")
        .arg(format!(
            "testguest.mem_mib=64 testguest.vsock.cid=3 testguest.vsock.listen={ECHO_PORT} \
             testguest.vsock.stop={STOP_PORT} testguest.end=exit:0"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", vmm.display()))?;
    let pid = child.id();
    let mut vm = Vm(Some(child));
    let wait = Duration::from_secs(10);
    // The first connection also waits for the guest's driver.
    let (first, _) = vsock::connect(&uds, ECHO_PORT, wait)?;
    let ready = started.elapsed();
    let hybrid = measure(
        &options,
        first,
        || Ok(vsock::connect(&uds, ECHO_PORT, wait)?.0),
        Some(pid),
    )?;

    let (mut stop, _) = vsock::connect(&uds, STOP_PORT, wait)?;
    let mut rest = Vec::new();
    stop.read_to_end(&mut rest)?;
    let Some(mut child) = vm.0.take() else {
        bail!("the VM is gone");
    };
    let status = child.wait()?;
    let mut serial = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut serial)?;
    }
    ensure!(
        status.code() == Some(0) && serial.contains("ok vsock-echo"),
        "the guest did not end well ({status}):\n{serial}"
    );
    let stats = serial
        .lines()
        .find(|l| l.starts_with("vsock echo:"))
        .unwrap_or("");

    let local = measure(
        &options,
        socketpair_echo()?,
        unix_accept_server(dir.path())?,
        None,
    )?;

    println!(
        "vsock: {} pings of {PING} B (after {WARMUP} unmeasured), {} MiB echoed in {} KiB writes, \
         {} connections",
        options.pings,
        options.mib,
        CHUNK / 1024,
        options.connects
    );
    println!(
        "VM start → first CONNECT answered: {} ms",
        ready.as_millis()
    );
    println!("guest: {stats}");
    println!("| workload | hybrid vsock (podvm-vmm) | Unix socket pair (host) |");
    println!("| --- | --- | --- |");
    let row = |name: &str, a: String, b: String| println!("| {name} | {a} | {b} |");
    row(
        "64 B round trip, median",
        format!("{:.1} µs", micros(hybrid.median)),
        format!("{:.1} µs", micros(local.median)),
    );
    row(
        "64 B round trip, p99",
        format!("{:.1} µs", micros(hybrid.p99)),
        format!("{:.1} µs", micros(local.p99)),
    );
    row(
        "64 B round trip, mean",
        format!("{:.1} µs", micros(hybrid.mean)),
        format!("{:.1} µs", micros(local.mean)),
    );
    row(
        &format!("echo throughput ({} MiB each way)", options.mib),
        format!("{:.0} MiB/s", hybrid.mib_s),
        format!("{:.0} MiB/s", local.mib_s),
    );
    row(
        "connection set-up, median (CONNECT → OK / connect → accepted)",
        format!("{:.1} µs", micros(hybrid.connect)),
        format!("{:.1} µs", micros(local.connect)),
    );
    if let Some([dev_rt, vcpu_rt, dev_mib, vcpu_mib]) = hybrid.cpu {
        println!(
            "CPU time of the VMM's threads: device thread {:.1} µs and vCPU thread {:.1} µs per \
             64 B round trip; device thread {:.2} ms and vCPU thread {:.2} ms per MiB echoed",
            micros(dev_rt),
            micros(vcpu_rt),
            dev_mib.as_secs_f64() * 1e3,
            vcpu_mib.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
