//! The only module of `benches` with `unsafe`: one page of shared memory (a POSIX shm
//! object mapped with memmap2's `MmapRaw`) holding a futex word, a stamp word, and
//! raw_sync's process-shared Event, whose constructors take a raw pointer. Everything
//! another process may write here is reached only through atomics or through raw_sync's
//! own pthread calls; no `&[u8]` is ever formed over the page.
#![deny(unsafe_op_in_unsafe_fn)]

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use frame_vocab::{Deadline, monotonic_ns};
use memmap2::MmapRaw;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, fstat};
use raw_sync::Timeout;
use raw_sync::events::{Event, EventImpl, EventInit, EventState};

use crate::child::unique;
use crate::error::{MeasureError, Result, errno, sys};

/// The mapping's size.
const PAGE: usize = 4096;
/// Offset of the futex word (u32).
const WORD: usize = 0;
/// Offset of the stamp (u64): CLOCK_MONOTONIC ns stored just before a wake.
const STAMP: usize = 8;
/// Offset of raw_sync's Event (its mutex, then its condition variable and flags).
const EVENT: usize = 64;

/// One shared page; the creator unlinks its name on drop.
pub struct SharedPage {
    map: MmapRaw,
    name: String,
    creator: bool,
}

impl std::fmt::Debug for SharedPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPage")
            .field("name", &self.name)
            .finish()
    }
}

impl SharedPage {
    /// Creates a new page under a unique name (mode 0600, zero-filled).
    pub fn create() -> Result<SharedPage> {
        let name = unique("/fpword");
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC;
        let fd = shm_open(name.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(errno(format!("shm_open {name}")))?;
        let page = SharedPage::map(File::from(fd), name, true)?;
        Ok(page)
    }

    /// Opens the page another process created.
    pub fn open(name: &str) -> Result<SharedPage> {
        let fd = shm_open(name, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(errno(format!("shm_open {name}")))?;
        SharedPage::map(File::from(fd), name.to_owned(), false)
    }

    fn map(file: File, name: String, creator: bool) -> Result<SharedPage> {
        if creator {
            file.set_len(PAGE as u64).map_err(sys("ftruncate"))?;
        }
        let size = fstat(file.as_fd()).map_err(errno("fstat"))?.st_size;
        if size != PAGE as i64 {
            return Err(MeasureError::Data(format!(
                "{name} is {size} bytes, not {PAGE}"
            )));
        }
        let map = MmapRaw::map_raw(&file).map_err(sys("mmap"))?;
        Ok(SharedPage { map, name, creator })
    }

    /// The page's name, for the other process.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: WORD + 4 <= PAGE bytes of a live shared mapping that outlives `&self`; the
        // mapping is page-aligned so the u32 is aligned; every process touches it only
        // through atomics (AtomicU32 has u32's layout).
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(WORD).cast()) }
    }

    fn stamp(&self) -> &AtomicU64 {
        // SAFETY: as for `word`: STAMP + 8 <= PAGE, 8-aligned, only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(STAMP).cast()) }
    }

    /// The poster: stamps now, bumps the word (Release) and wakes one waiter.
    pub fn post(&self) -> Result<()> {
        self.stamp().store(monotonic_ns(), Ordering::Relaxed);
        // SYNC POINT: futex word. Release publishes the stamp to the waiter's Acquire load.
        self.word().fetch_add(1, Ordering::Release);
        // SAFETY: FUTEX_WAKE only uses the word's address (a valid u32 of a shared mapping
        // that lives across the call); the remaining arguments are unused for this op.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.word().as_ptr(),
                libc::FUTEX_WAKE,
                1,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0,
            )
        };
        if r < 0 {
            return Err(MeasureError::Sys {
                what: "futex(FUTEX_WAKE)".into(),
                cause: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// The current word, which the waiter passes to [`SharedPage::wait_change`].
    pub fn current(&self) -> u32 {
        self.word().load(Ordering::Acquire)
    }

    /// Sleeps in the kernel until the word differs from `seen`, then returns the stamp the
    /// poster stored; `None` at the deadline.
    pub fn wait_change(&self, seen: u32, deadline: Deadline) -> Option<u64> {
        loop {
            // SYNC POINT: futex word (Acquire side).
            if self.word().load(Ordering::Acquire) != seen {
                return Some(self.stamp().load(Ordering::Relaxed));
            }
            let left = deadline.remaining().min(Duration::from_millis(100));
            if left.is_zero() {
                return None;
            }
            let ts = libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            // SAFETY: the word is a valid, aligned u32 in a shared mapping that outlives the
            // call; `ts` is a valid relative timeout on our stack. The kernel compares the
            // word with `seen` atomically before sleeping (EAGAIN if it already changed);
            // EINTR and ETIMEDOUT only make us look again.
            let _ = unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.word().as_ptr(),
                    libc::FUTEX_WAIT,
                    seen,
                    &ts as *const libc::timespec,
                    std::ptr::null::<u32>(),
                    0,
                )
            };
        }
    }

    /// Initialises raw_sync's Event (auto-reset) in the page. Only the creator, before any
    /// other process opens the page.
    pub fn create_event(&self) -> Result<SharedEvent<'_>> {
        if !self.creator {
            return Err(MeasureError::Data(
                "only the page's creator initialises the Event".into(),
            ));
        }
        self.check_event_fits()?;
        // SAFETY: EVENT.. is inside the live mapping (checked above) and borrowed for the
        // Event's lifetime; no other process uses the page before the creator says READY,
        // so nothing races the pthread_*_init calls.
        let made = unsafe { Event::new(self.map.as_mut_ptr().add(EVENT), true) };
        let (event, _) = made.map_err(|e| raw_sync_error("init raw_sync Event", &*e))?;
        Ok(SharedEvent { event, _page: self })
    }

    /// Attaches to the Event the creator initialised.
    pub fn open_event(&self) -> Result<SharedEvent<'_>> {
        self.check_event_fits()?;
        // SAFETY: EVENT.. is inside the live mapping (checked above) and borrowed for the
        // Event's lifetime; the creator initialised it before it started us.
        let opened = unsafe { Event::from_existing(self.map.as_mut_ptr().add(EVENT)) };
        let (event, _) = opened.map_err(|e| raw_sync_error("open raw_sync Event", &*e))?;
        Ok(SharedEvent { event, _page: self })
    }

    fn check_event_fits(&self) -> Result<()> {
        let needed = EVENT + Event::size_of(None) + 64;
        if needed > PAGE || self.map.len() < PAGE {
            return Err(MeasureError::Data(format!(
                "raw_sync Event needs {needed} bytes"
            )));
        }
        Ok(())
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        if self.creator {
            let _ = shm_unlink(self.name.as_str());
        }
    }
}

fn raw_sync_error(what: &str, e: &dyn std::error::Error) -> MeasureError {
    MeasureError::Data(format!("{what}: {e}"))
}

/// raw_sync's Event in a [`SharedPage`], plus the page's stamp word.
pub struct SharedEvent<'p> {
    event: Box<dyn EventImpl>,
    _page: &'p SharedPage,
}

impl std::fmt::Debug for SharedEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedEvent").finish()
    }
}

impl SharedEvent<'_> {
    /// The poster: stamps now and signals the Event.
    pub fn post(&self) -> Result<()> {
        self._page.stamp().store(monotonic_ns(), Ordering::Relaxed);
        self.event
            .set(EventState::Signaled)
            .map_err(|e| raw_sync_error("raw_sync Event set", &*e))
    }

    /// Waits for a signal (in 100 ms slices, until `deadline`) and returns the stamp. A
    /// failed timed wait counts as "look again": raw_sync's timed wait can fail with EINVAL
    /// (it does not normalise nanoseconds), which is why DESIGN.md does not use it.
    pub fn wait(&self, deadline: Deadline) -> Option<u64> {
        while !deadline.expired() {
            let slice = deadline.remaining().min(Duration::from_millis(100));
            if self.event.wait(Timeout::Val(slice)).is_ok() {
                // The Event's mutex orders the stamp store before the wake.
                return Some(self._page.stamp().load(Ordering::Relaxed));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_changes_the_word_and_carries_the_stamp() {
        let page = SharedPage::create().unwrap();
        let other = SharedPage::open(page.name()).unwrap();
        let seen = other.current();
        assert_eq!(
            other.wait_change(seen, Deadline::after(Duration::ZERO)),
            None
        );
        let before = monotonic_ns();
        page.post().unwrap();
        let stamp = other
            .wait_change(seen, Deadline::after(Duration::from_secs(5)))
            .unwrap();
        assert!(stamp >= before);
    }

    #[test]
    fn an_event_set_in_one_mapping_wakes_the_other() {
        let page = SharedPage::create().unwrap();
        let event = page.create_event().unwrap();
        let other = SharedPage::open(page.name()).unwrap();
        let attached = other.open_event().unwrap();
        event.post().unwrap();
        assert!(
            attached
                .wait(Deadline::after(Duration::from_secs(5)))
                .is_some()
        );
    }

    #[test]
    fn the_creator_unlinks_the_name() {
        let name = SharedPage::create().unwrap().name().to_owned();
        assert!(SharedPage::open(&name).is_err());
    }
}
