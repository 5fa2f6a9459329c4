//! Helpers shared by the test suites of every podvm crate.
//!
//! Tests that need root, KVM, qemu or a built guest image call [`skip`]
//! when the machine lacks it. The skip is written straight to the process's
//! stderr (libtest captures `eprintln!` of passing tests, which would hide
//! it), and where every test must run — CI, or `scripts/test.sh`, which set
//! `CI` / `PODVM_REQUIRE_ALL_TESTS` — it is a failure instead.
//!
//! Tests that watch a slow process wait on its progress, not on a fixed
//! clock: see [`progress`].

pub mod progress;

use std::io::Write;

/// Whether skipping is forbidden in this run.
pub fn skips_forbidden() -> bool {
    ["CI", "PODVM_REQUIRE_ALL_TESTS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0" && x != "false"))
}

/// Reports that `test` cannot run here because of `why`: a loud line on
/// stderr, or a panic where skips are forbidden.
pub fn skip(test: &str, why: &str) {
    if skips_forbidden() {
        panic!("{test} must run here (CI / PODVM_REQUIRE_ALL_TESTS) but cannot: {why}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIP {test}: {why} — this test did NOT run\n"
    );
}

/// Says loudly (uncaptured) that `test` checked less than it would on
/// another machine, and why — for tests that run a reduced check rather than
/// skip.
pub fn note(test: &str, what: &str) {
    let _ = writeln!(std::io::stderr(), "\n!!! NOTE {test}: {what}\n");
}
