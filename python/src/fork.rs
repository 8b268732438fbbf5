//! Poisoning after `os.fork()`.
//!
//! A child forked without exec shares its parent's open file descriptions, so the OFD
//! locks that say "this seat is alive" and "this producer is alive" are the parent's too,
//! and so are the seat word and the slot hold in shared memory. If the child released a
//! hold, unlocked a seat or ended the stream (as dropping a reader or writer does), it
//! would do it for the parent: a producer could then overwrite a slot the parent is still
//! reading. So `framepipe/__init__.py` registers [`after_fork_in_child`] with
//! `os.register_at_fork`, and every object made before the fork refuses to work in the
//! child and, when the child drops it, leaks what it holds instead of releasing it.

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;

/// Bumped in each forked child; objects remember the value they were made under.
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn generation() -> u64 {
    // Relaxed: written only by the child's single thread right after the fork.
    GENERATION.load(Ordering::Relaxed)
}

/// Called in a child right after `os.fork()` (registered by `framepipe/__init__.py`).
#[pyfunction]
pub fn _after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// A value that is usable only in the process that made it, and never dropped elsewhere.
#[derive(Debug)]
pub struct ForkSafe<T> {
    generation: u64,
    value: Option<T>,
}

impl<T> ForkSafe<T> {
    /// Wraps `value`, made in this process.
    pub fn new(value: T) -> ForkSafe<T> {
        ForkSafe {
            generation: generation(),
            value: Some(value),
        }
    }

    /// Whether this process is a fork of the one that made the value.
    pub fn poisoned(&self) -> bool {
        self.generation != generation()
    }

    /// The value, or an error in a forked child.
    pub fn get(&self, what: &str) -> PyResult<&T> {
        match &self.value {
            Some(value) if !self.poisoned() => Ok(value),
            _ => Err(forked(what)),
        }
    }

    /// The value, mutably, or an error in a forked child.
    pub fn get_mut(&mut self, what: &str) -> PyResult<&mut T> {
        if self.poisoned() {
            return Err(forked(what));
        }
        self.value.as_mut().ok_or_else(|| forked(what))
    }
}

impl<T> Drop for ForkSafe<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take()
            && self.poisoned()
        {
            // The parent's locks, seat and hold: releasing them here would release them
            // for the parent. The child's copy of the memory is simply not given back.
            std::mem::forget(value);
        }
    }
}

fn forked(what: &str) -> PyErr {
    crate::errors::error(format!(
        "this {what} was made before os.fork(): the child shares its parent's seat, locks and \
         stream name, so it cannot use it; open a new one in the child"
    ))
}
