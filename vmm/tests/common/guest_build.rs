//! Building the no_std test guest (`vmm/test-guest`, release,
//! `x86_64-unknown-none`): shared by the integration tests (`common`) and
//! the vsock benchmark example, which includes this file by path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The test guest's crate directory.
fn guest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-guest")
}

/// Why the guest cannot be built on this machine, if it cannot: the
/// `x86_64-unknown-none` target is missing.
pub fn guest_target_missing() -> Option<String> {
    let sysroot = match Command::new("rustc").args(["--print", "sysroot"]).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Err(e) => return Some(format!("cannot run rustc: {e}")),
    };
    let target_lib = Path::new(&sysroot).join("lib/rustlib/x86_64-unknown-none");
    (!target_lib.exists()).then(|| {
        "the x86_64-unknown-none target is not installed \
         (rustup target add x86_64-unknown-none)"
            .to_string()
    })
}

/// Builds the guest with cargo `features` into `target_dir`; returns the
/// ELF's path, or cargo's error output.
pub fn build_guest(target_dir: &Path, features: &[&str]) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(guest_dir())
        .args(["build", "--release", "--target", "x86_64-unknown-none"])
        .args(features)
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the test guest failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join("x86_64-unknown-none/release/podvm-test-guest"))
}
