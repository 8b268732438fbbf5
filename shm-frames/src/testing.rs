//! Test fixtures for framepipe's crates (feature `testing`): frame-vocab's generic ones
//! (unique stream names, temp dirs, child processes, stops; re-exported here), plus what
//! needs a region: a heartbeat thread, frames whose tearing is detectable, and a raw view
//! of a region for writing garbage into it.
#![allow(clippy::missing_panics_doc)]

use std::time::{Duration, Instant};

pub use frame_vocab::testing::*;

/// Stamps a producer's heartbeat (and reclaims dead seats) every 20 ms on a thread, until
/// dropped: what a real producer's service thread does.
#[derive(Debug)]
pub struct Heartbeat {
    stop: Option<StopSender>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(supervisor: crate::Supervisor) -> Heartbeat {
        let (sender, stop) = Stop::new();
        let thread = std::thread::spawn(move || {
            let period = Duration::from_millis(20);
            loop {
                supervisor.beat();
                if stop.wait_until(Instant::now() + period) {
                    break;
                }
            }
        });
        Heartbeat {
            stop: Some(sender),
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take()); // Stops the thread.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Fills a frame so that any mix of two frames is detectable: the seq at the start and at
/// the end, a pseudo-random payload derived from the seq, and the payload's checksum.
pub fn fill_frame(frame: &mut [u8], seq: u64) {
    let words = frame.len() / 8;
    assert!(words >= 4, "frame too small for the check");
    let mut sum = 0u64;
    for i in 1..words - 2 {
        let w = splitmix(seq ^ (i as u64) << 20);
        sum = sum.wrapping_add(w);
        frame[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    frame[..8].copy_from_slice(&seq.to_le_bytes());
    frame[(words - 2) * 8..(words - 1) * 8].copy_from_slice(&sum.to_le_bytes());
    frame[(words - 1) * 8..words * 8].copy_from_slice(&seq.to_le_bytes());
}

/// Checks a frame filled by `fill_frame`; returns its seq or what is wrong.
pub fn check_frame(frame: &[u8]) -> Result<u64, String> {
    let words = frame.len() / 8;
    let word = |i: usize| u64::from_le_bytes(frame[i * 8..i * 8 + 8].try_into().unwrap());
    let (first, last) = (word(0), word(words - 1));
    if first != last {
        return Err(format!(
            "torn: starts with seq {first}, ends with seq {last}"
        ));
    }
    let mut sum = 0u64;
    for i in 1..words - 2 {
        let w = word(i);
        if w != splitmix(first ^ (i as u64) << 20) {
            return Err(format!("torn: word {i} is not from seq {first}"));
        }
        sum = sum.wrapping_add(w);
    }
    if sum != word(words - 2) {
        return Err(format!("checksum mismatch in seq {first}"));
    }
    Ok(first)
}

/// A stream's shm object opened as a file, for poking garbage into it the way a buggy
/// peer would (pwrite/pread reach the same pages the mappings share, without unsafe).
#[derive(Debug)]
pub struct RawRegion {
    file: std::fs::File,
}

impl RawRegion {
    pub fn open(stream: &TestStream) -> RawRegion {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(stream.shm_path())
            .expect("open shm object");
        RawRegion { file }
    }

    pub fn read(&self, offset: usize, width: usize) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut bytes = [0u8; 8];
        self.file
            .read_exact_at(&mut bytes[..width], offset as u64)
            .unwrap();
        u64::from_le_bytes(bytes)
    }

    pub fn write(&mut self, offset: usize, width: usize, value: u64) {
        use std::os::unix::fs::FileExt;
        self.file
            .write_all_at(&value.to_le_bytes()[..width], offset as u64)
            .unwrap();
    }
}

/// Every object of stream `name` still there: its shm object, its `.ctl` queue, every
/// `.s<seat>` queue and every `.c<k>` reply queue. Queues are probed by name (`mq_open`, ENOENT = gone), since
/// /dev/mqueue is not mounted on this machine class.
pub fn leftovers(name: &frame_vocab::StreamName) -> Vec<String> {
    let mut left = Vec::new();
    if std::path::Path::new(&format!("/dev/shm{}", name.shm_name())).exists() {
        left.push(name.shm_name());
    }
    let queues = std::iter::once(name.command_queue_name())
        .chain((0..crate::MAX_SEATS as u32).map(|seat| name.event_queue_name(seat)))
        .chain((0..crate::REPLY_QUEUES).map(|k| name.reply_queue_name(k)));
    for queue in queues {
        let probe = nix::mqueue::mq_open(
            queue.as_str(),
            nix::mqueue::MQ_OFlag::O_RDONLY | nix::mqueue::MQ_OFlag::O_NONBLOCK,
            nix::sys::stat::Mode::empty(),
            None,
        );
        if let Ok(mqd) = probe {
            let _ = nix::mqueue::mq_close(mqd);
            left.push(queue);
        }
    }
    left
}
