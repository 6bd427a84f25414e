//! The `pilotgate` binary: everything lives in the library; this only runs the CLI.
#![forbid(unsafe_code)]

/// mimalloc instead of the system allocator: Polars allocates and frees
/// large columns constantly, which glibc serves with fresh, zeroed pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pilotgate_server::cli::main()
}
