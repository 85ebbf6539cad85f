//! `ferry-conform`: the ferry/1 conformance suite (see crates/conformance/README.md).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ferry_conformance::cli::main_from(std::env::args_os()))
}
