//! The integration tests: one test binary (`cargo test --test it`), one module per area, one
//! harness ([`common`], in `tests/common/`). Filter by module: `cargo test --test it golden::`,
//! `cargo test --test it serve::` (and `-- --ignored bench_serve` for the benchmark).

#[path = "../common/mod.rs"]
mod common;

mod arm_verify;
mod bench_serve;
mod bench_wan;
mod cli;
mod cli_registries_k3s;
mod completions;
mod corpus;
mod crash_arm;
#[cfg(feature = "cri")]
mod cri;
mod deb;
mod docker_certs_d;
mod e2e_arm;
mod e2e_registries;
mod fuzz;
mod golden;
mod harbor;
mod json_schema;
mod lan_mirror;
mod legacy;
mod man;
mod matrix;
mod preflight;
mod promises;
mod ratelimit;
mod render;
mod runners;
mod s3_mirror;
mod serve;
mod serve_store;
mod verify;
mod verify_embedded;
mod warm;
