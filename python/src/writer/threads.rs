//! The Writer's two Rust threads, which never wait for Python: the slot thread, which
//! owns the library's `Writer` and holds the next free slot ready, and the service thread
//! (heartbeat, seat reclaim, commands). See the parent module.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use control_msg::{Command, CommandReceiver, Event, EventSender};
use shm_frames::{Published, Supervisor};

/// How often the service thread stamps the heartbeat (DESIGN: at least every 100 ms).
pub(super) const BEAT: Duration = Duration::from_millis(50);

/// Longest Python waits for the slot thread before calling it stuck (it never waits on
/// anything but Python, so this only catches a bug).
pub(super) const SLOT_THREAD_DEADLINE: Duration = Duration::from_secs(10);

/// What the service thread tells Python, and what both threads share.
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    pub(super) paused: AtomicBool,
    pub(super) shutdown: AtomicBool,
    /// The last SetFps asked for, as f64 bits; `u64::MAX` for none.
    pub(super) fps_bits: AtomicU64,
    /// Commands this writer does not carry out (SetFormat, SetPattern).
    pub(super) refused: AtomicU64,
    pub(super) events: Mutex<Vec<Option<EventSender>>>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn broadcast(&self, supervisor: &Supervisor, event: &Event) {
        let mut events = lock(&self.events);
        for (seat, sender) in events.iter_mut().enumerate() {
            if let Some(sender) = sender {
                let _ = sender.send(event);
                // Consumers look at their queue after a wake.
                supervisor.wake(seat as u32);
            }
        }
    }
}

pub(super) enum ToSlots {
    /// Publish the slot held now, then pick the next.
    Publish(Option<u64>),
    /// Try again to pick a slot (after `NoSlot`).
    Acquire,
    /// Drop the held slot and end the stream.
    Close,
}

pub(super) enum FromSlots {
    /// A free slot is held for Python: where its bytes are.
    Ready { ptr: usize, len: usize },
    /// No slot is free (only garbage holds cause this): the frame is skipped.
    NoSlot,
    /// The held slot was published.
    Published(Published),
}

pub(super) fn slot_thread(
    mut writer: shm_frames::Writer,
    shared: Arc<Shared>,
    requests: Receiver<ToSlots>,
    replies: Sender<FromSlots>,
) {
    let format = writer.format();
    let supervisor = writer.supervisor();
    loop {
        let Some(mut slot) = writer.slot() else {
            if replies.send(FromSlots::NoSlot).is_err() {
                break;
            }
            match requests.recv() {
                Ok(ToSlots::Acquire) => continue,
                _ => break,
            }
        };
        let ready = FromSlots::Ready {
            ptr: slot.as_mut_ptr() as usize,
            len: slot.len(),
        };
        if replies.send(ready).is_err() {
            break;
        }
        match requests.recv() {
            Ok(ToSlots::Publish(capture_ns)) => {
                let mut events = lock(&shared.events);
                let published = slot.publish_with(capture_ns, |seat, published| {
                    if let Some(Some(sender)) = events.get_mut(seat as usize) {
                        let _ = sender.send(&Event::FrameMeta {
                            seq: published.seq,
                            slot: published.slot,
                            format,
                            capture_ns: published.capture_ns,
                            publish_ns: published.publish_ns,
                            flags: 0,
                        });
                    }
                });
                drop(events);
                if replies.send(FromSlots::Published(published)).is_err() {
                    break;
                }
            }
            // Only sent after NoSlot; here it just picks again.
            Ok(ToSlots::Acquire) => {}
            Ok(ToSlots::Close) | Err(_) => break,
        }
    }
    // A clean end: tell every consumer, then the writer's drop sets Stopping, wakes every
    // seat and unlinks the region.
    shared.broadcast(&supervisor, &Event::Stopping);
    drop(writer);
}

pub(super) fn service_thread(
    supervisor: Supervisor,
    mut commands: CommandReceiver,
    shared: Arc<Shared>,
) {
    // Relaxed: a flag polled every beat; the join that follows orders the rest.
    while !shared.stop.load(Ordering::Relaxed) {
        match commands.recv_timeout(BEAT) {
            Ok(Some(command)) => apply(command, &supervisor, &shared),
            Ok(None) => {}
            // A broken queue: the region's header is authoritative; keep the heartbeat.
            Err(_) => std::thread::sleep(BEAT),
        }
        supervisor.beat();
    }
    // Dropping `commands` unlinks the command queue.
}

fn apply(command: Command, supervisor: &Supervisor, shared: &Shared) {
    // Relaxed everywhere: independent flags Python reads between frames.
    match command {
        Command::Hello { .. } | Command::Bye { .. } => {}
        // No reply queues here (`consumer ctl` says so): served as the plain command.
        Command::Request(asked) => apply(asked.command, supervisor, shared),
        Command::SetFps { fps } => shared.fps_bits.store(fps.to_bits(), Ordering::Relaxed),
        Command::Pause => shared.paused.store(true, Ordering::Relaxed),
        Command::Resume => shared.paused.store(false, Ordering::Relaxed),
        Command::Ping { nonce } => shared.broadcast(supervisor, &Event::Pong { nonce }),
        Command::SetFormat(_) | Command::SetPattern(_) => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
        }
        Command::Shutdown => {
            shared.shutdown.store(true, Ordering::Relaxed);
            // Consumers see Stopping now, whatever Python is doing.
            shared.broadcast(supervisor, &Event::Stopping);
            supervisor.stop_stream();
        }
    }
}
