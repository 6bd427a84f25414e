//! The `pilotgate` binary: everything lives in the library; this only runs the CLI.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    pilotgate_server::cli::main()
}
