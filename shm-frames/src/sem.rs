//! Process-shared POSIX semaphores that live in the region's header.
//!
//! POSIX semaphores have no owner: anyone may post, so a consumer or producer killed at any
//! instruction cannot leave one wedged (unlike a non-robust pthread mutex). Every wait has
//! a CLOCK_MONOTONIC deadline (`sem_clockwait`), so even a semaphore overwritten with
//! garbage can only cost a timeout, never a hang.
//!
//! One garbage field would cost more: glibc passes the semaphore's `private` word into the
//! futex op, and on the kernel's EINVAL it aborts the process ("The futex facility returned
//! an unexpected error code"). So before every call the word is checked against the value
//! `sem_init(pshared = 1)` writes; a semaphore that fails the check is treated as unusable
//! (the waiter falls back to short sleeps) instead of being handed to glibc.

use std::cell::UnsafeCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use frame_vocab::clock::Deadline;

// glibc >= 2.30 has it; the libc crate does not declare it.
unsafe extern "C" {
    fn sem_clockwait(
        sem: *mut libc::sem_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The semaphore was posted (a hint to look again, never a promise of a frame).
    Posted,
    /// The deadline passed.
    TimedOut,
    /// A signal interrupted the wait; the caller loops.
    Interrupted,
    /// The semaphore is unusable (garbage): the caller must not spin on it.
    Failed(Errno),
}

/// The most posts a waiter takes as real wake-ups; a higher count is garbage (see
/// [`Semaphore::wait_until`]).
pub(crate) const MAX_PENDING: i32 = 1024;

/// glibc's `struct new_sem` on 64-bit targets: `uint64_t data; int private; int pad;`.
const PRIVATE_WORD: usize = 2;
const _: () = assert!(std::mem::size_of::<libc::sem_t>() >= 4 * (PRIVATE_WORD + 1));
const _: () = assert!(std::mem::align_of::<libc::sem_t>() >= 4);

/// The `private` word glibc's `sem_init(pshared = 1)` writes, learned once from a local
/// semaphore so no glibc constant is hard-coded.
fn shared_private_word() -> u32 {
    static WORD: OnceLock<u32> = OnceLock::new();
    *WORD.get_or_init(|| {
        // SAFETY: an all-zero sem_t is valid storage for sem_init.
        let cell: UnsafeCell<libc::sem_t> = UnsafeCell::new(unsafe { std::mem::zeroed() });
        let sem = Semaphore::new(&cell);
        // SAFETY: the semaphore is local to this function and nobody else sees it.
        match unsafe { sem.init() } {
            Ok(()) => sem.private_word(),
            Err(_) => u32::MAX, // Never expected; every semaphore then counts as unusable.
        }
    })
}

/// A process-shared semaphore inside a mapping.
#[derive(Clone, Copy)]
pub(crate) struct Semaphore<'a> {
    cell: &'a UnsafeCell<libc::sem_t>,
}

impl<'a> Semaphore<'a> {
    /// Wraps a semaphore that the region's creator initialised with [`Semaphore::init`].
    pub(crate) fn new(cell: &'a UnsafeCell<libc::sem_t>) -> Semaphore<'a> {
        Semaphore { cell }
    }

    /// `sem_init(pshared = 1, value = 0)` on a semaphore nobody else can see yet.
    ///
    /// # Safety
    /// No other thread or process may use the semaphore during or before this call (the
    /// region's magic is not yet stored); it is never called on a live semaphore.
    pub(crate) unsafe fn init(&self) -> Result<(), Errno> {
        // SAFETY: the pointer is valid and aligned (it is inside our mapping, on its own
        // cache line) and, per this function's contract, nobody else uses it yet.
        let rc = unsafe { libc::sem_init(self.cell.get(), 1, 0) };
        Errno::result(rc).map(drop)
    }

    fn private_word(&self) -> u32 {
        let word = self
            .cell
            .get()
            .cast::<AtomicU32>()
            .wrapping_add(PRIVATE_WORD);
        // SAFETY: the word lies inside the sem_t (size asserted above), is 4-aligned, and is
        // read atomically because another process may write it.
        unsafe { (*word).load(Ordering::Relaxed) }
    }

    /// Whether glibc may be given this semaphore without risking an abort.
    fn usable(&self) -> bool {
        self.private_word() == shared_private_word()
    }

    /// Posts if the value is 0: a binary wake, so a paused consumer's semaphore cannot
    /// count up without bound.
    pub(crate) fn post_if_zero(&self) {
        if self.value() == Some(0) && self.usable() {
            // SAFETY: the semaphore lives in a mapping that outlives `self`; glibc's sem_post
            // is async-signal-safe and process-shared. Garbage contents make it fail with
            // EOVERFLOW/EINVAL at worst, which a wake hint may ignore.
            unsafe { libc::sem_post(self.cell.get()) };
        }
    }

    /// Posts unconditionally (used to wake everyone on a state change).
    pub(crate) fn post(&self) {
        if !self.usable() {
            return;
        }
        // SAFETY: as in `post_if_zero`.
        unsafe { libc::sem_post(self.cell.get()) };
    }

    /// The current value (a relaxed read in glibc), `None` if the call fails.
    pub(crate) fn value(&self) -> Option<i32> {
        let mut value: libc::c_int = 0;
        // SAFETY: valid semaphore pointer (see `post_if_zero`) and a valid out pointer.
        let rc = unsafe { libc::sem_getvalue(self.cell.get(), &mut value) };
        (rc == 0).then_some(value)
    }

    /// Takes one post without waiting; false when there is none.
    pub(crate) fn try_wait(&self) -> bool {
        if !self.usable() {
            return false;
        }
        // SAFETY: valid semaphore pointer (see `post_if_zero`).
        unsafe { libc::sem_trywait(self.cell.get()) == 0 }
    }

    /// Takes every pending post (a fresh seat starts with no stale wake-ups).
    pub(crate) fn drain(&self) {
        // Bounded: garbage could make a huge value.
        for _ in 0..MAX_PENDING {
            if !self.try_wait() {
                break;
            }
        }
    }

    /// Waits for a post until `deadline` on CLOCK_MONOTONIC.
    ///
    /// A count above [`MAX_PENDING`] is garbage (wakes are binary, and the few
    /// unconditional posts of state changes and replies add a handful): waiting on it would
    /// return at once, again and again, so it is refused like a bad `private` word and the
    /// caller polls instead.
    pub(crate) fn wait_until(&self, deadline: Deadline) -> Woken {
        if !self.usable() {
            return Woken::Failed(Errno::EINVAL);
        }
        if self.value().is_none_or(|value| value > MAX_PENDING) {
            return Woken::Failed(Errno::EOVERFLOW);
        }
        let ns = deadline.as_ns();
        let abstime = libc::timespec {
            tv_sec: (ns / 1_000_000_000).min(i64::MAX as u64) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: valid semaphore pointer (see `post_if_zero`); `abstime` is a valid,
        // normalised timespec that outlives the call.
        let rc = unsafe { sem_clockwait(self.cell.get(), libc::CLOCK_MONOTONIC, &abstime) };
        if rc == 0 {
            return Woken::Posted;
        }
        match Errno::last() {
            Errno::ETIMEDOUT => Woken::TimedOut,
            Errno::EINTR => Woken::Interrupted,
            e => Woken::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    // SAFETY (for the test): a zeroed sem_t is valid storage for sem_init.
    fn fresh() -> Box<UnsafeCell<libc::sem_t>> {
        // SAFETY: sem_t is plain bytes to Rust; sem_init below gives it meaning.
        Box::new(UnsafeCell::new(unsafe { std::mem::zeroed() }))
    }

    #[test]
    fn binary_post_and_timed_wait() {
        let cell = fresh();
        let sem = Semaphore::new(&cell);
        // SAFETY: private to this test.
        unsafe { sem.init() }.unwrap();
        assert_eq!(sem.value(), Some(0));
        sem.post_if_zero();
        sem.post_if_zero();
        assert_eq!(sem.value(), Some(1), "binary wake never counts past 1");
        assert_eq!(
            sem.wait_until(Deadline::after(Duration::from_secs(5))),
            Woken::Posted
        );
        assert_eq!(
            sem.wait_until(Deadline::after(Duration::from_millis(1))),
            Woken::TimedOut
        );
        sem.post();
        sem.post();
        sem.drain();
        assert_eq!(sem.value(), Some(0));
    }

    #[test]
    fn a_huge_count_is_refused_so_a_waiter_polls_instead_of_spinning() {
        let cell = fresh();
        let sem = Semaphore::new(&cell);
        // SAFETY: private to this test.
        unsafe { sem.init() }.unwrap();
        // glibc's count is the low 32 bits of the first word (`data`); the private word
        // stays valid, as garbage that hits only the count leaves it.
        let data = cell.get().cast::<AtomicU32>();
        // SAFETY: inside the test's own sem_t.
        unsafe { (*data).store(0x7fff_0000, Ordering::Relaxed) };
        assert!(sem.usable());
        assert!(sem.value().is_some_and(|v| v > MAX_PENDING));
        let woken = sem.wait_until(Deadline::after(Duration::from_secs(5)));
        assert_eq!(woken, Woken::Failed(Errno::EOVERFLOW));
        // A count within bounds is still a wake.
        // SAFETY: as above.
        unsafe { (*data).store(3, Ordering::Relaxed) };
        let woken = sem.wait_until(Deadline::after(Duration::from_secs(5)));
        assert_eq!(woken, Woken::Posted);
    }

    #[test]
    fn a_garbage_private_word_is_refused_not_handed_to_glibc() {
        let cell = fresh();
        let sem = Semaphore::new(&cell);
        // SAFETY: private to this test.
        unsafe { sem.init() }.unwrap();
        assert!(sem.usable());
        let word = cell.get().cast::<AtomicU32>().wrapping_add(PRIVATE_WORD);
        // SAFETY: inside the test's own sem_t.
        unsafe { (*word).store(0xDEAD_BEEF, Ordering::Relaxed) };
        assert!(!sem.usable());
        sem.post();
        assert!(!sem.try_wait());
        let woken = sem.wait_until(Deadline::after(Duration::from_secs(5)));
        assert_eq!(woken, Woken::Failed(Errno::EINVAL));
    }
}
