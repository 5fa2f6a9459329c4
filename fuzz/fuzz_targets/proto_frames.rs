//! Fuzzes the agent protocol decoder: any byte stream must decode to
//! messages or a clean error — never a panic, never an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podvm_proto::{read_message, Request, Response};

fuzz_target!(|data: &[u8]| {
    // A stream may hold several frames; read until the first error or EOF.
    let mut r = data;
    for _ in 0..16 {
        match read_message::<Request, _>(&mut r) {
            Ok(Some(_)) => continue,
            _ => break,
        }
    }
    let mut r = data;
    for _ in 0..16 {
        match read_message::<Response, _>(&mut r) {
            Ok(Some(_)) => continue,
            _ => break,
        }
    }
});
