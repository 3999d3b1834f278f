//! The drctl binary: parse, run, print the error once, exit with its code.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn main() -> ExitCode {
    limit_heap_growth();
    let cli = match drctl::cli::Cli::from_args() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap's own exit code is 2 for usage errors, 0 for --help and --version.
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    init_logging(cli.global.verbose);
    let interrupt = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while cleaning up ends the process at once.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, interrupt.clone());
        let _ = signal_hook::flag::register(sig, interrupt.clone());
    }
    match drctl::app::run(cli, interrupt) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Pack buffers (16-20 MiB) must go back to the system when freed. glibc raises its mmap
/// threshold after the first such free and then keeps them in per-thread arenas, which
/// grows the peak RSS of a backup by tens of MiB; a fixed threshold stops that.
///
/// Fixing it also pins the trim threshold at 128 KiB, so every freed 1 MiB chunk buffer
/// was handed back with madvise and faulted in, zeroed, again for the next chunk: a tenth
/// of a dump backup's CPU. A few MiB of free heap kept per arena avoid that.
fn limit_heap_growth() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = std::env::var("DRCTL_LOG").unwrap_or_else(|_| format!("drctl={default}"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
}
