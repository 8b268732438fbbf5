//! SIGINT and SIGTERM as a flag: the signals are blocked in every thread and a dedicated
//! thread takes them with `sigwait`, so no handler runs in signal context (and no unsafe).
//! A second signal exits at once with code 130, in case the first one is not heeded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGINT and SIGTERM in this thread (and every thread spawned after) and starts the
/// thread that turns them into the returned flag. Call it before spawning any thread.
/// Child processes start with an empty signal mask (std resets it).
pub fn install() -> std::io::Result<Arc<AtomicBool>> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().map_err(std::io::Error::from)?;
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let Ok(signal) = set.wait() else { continue };
                // Relaxed: a flag polled by the main loop; nothing else is published with it.
                if raised.swap(true, Ordering::Relaxed) {
                    eprintln!("consumer: {signal} again, exiting now");
                    std::process::exit(130);
                }
                tracing::info!(%signal, "stopping");
            }
        })?;
    Ok(flag)
}
