//! Generates the protobuf messages and ttrpc services from `protos/*.proto`
//! (pure-Rust parser: no `protoc` needed) into `OUT_DIR/<set>/`.
//!
//! Two sets: `current` (what this build speaks) and `v2_0`, the first
//! published copy of the API kept under `tests/v2_0/` so tests can play an
//! old client or agent against the current one.

use std::path::{Path, PathBuf};

fn generate(out: &Path, set: &str, dir: &str) {
    let out_dir = out.join(set);
    std::fs::create_dir_all(&out_dir).expect("create the codegen output folder");
    let proto = format!("{dir}/agent.proto");
    println!("cargo:rerun-if-changed={proto}");
    ttrpc_codegen::Codegen::new()
        .out_dir(&out_dir)
        .inputs([proto.as_str()])
        .include(dir)
        .rust_protobuf()
        .customize(ttrpc_codegen::Customize {
            ..Default::default()
        })
        .rust_protobuf_customize(
            ttrpc_codegen::ProtobufCustomize::default()
                .gen_mod_rs(false)
                .generate_accessors(true),
        )
        .run()
        .expect("generating code from agent.proto");
    // One module file per set, included by src/generated.rs.
    std::fs::write(
        out_dir.join("mod.rs"),
        "pub mod agent;\npub mod agent_ttrpc;\n",
    )
    .expect("write the generated mod.rs");
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    generate(&out, "current", "protos");
    generate(&out, "v2_0", "tests/v2_0");
}
