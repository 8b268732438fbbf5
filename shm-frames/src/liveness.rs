//! Liveness from locks the kernel releases on death: OFD byte locks on the region's fd.
//!
//! The producer write-locks byte 0 of its region for its whole life; a consumer locks byte
//! `1 + seat`; a `consumer ctl` locks byte `1 + MAX_SEATS + k` (17 + k) while it uses
//! reply queue `.c<k>`. A lock that can be taken means its holder is dead (whatever its pid does
//! next: zombies and reused pids never look alive). OFD locks belong to the open file
//! description, so they are not shared with a forked child and are not lost when another
//! fd of the same process closes (unlike classic POSIX record locks).

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

/// The byte the producer locks.
pub(crate) const PRODUCER_BYTE: u64 = 0;

/// The byte seat `seat`'s consumer locks.
pub(crate) fn seat_byte(seat: u32) -> u64 {
    1 + u64::from(seat)
}

fn flock(kind: libc::c_int, byte: u64) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte as libc::off_t,
        l_len: 1,
        // Must be 0 for OFD locks.
        l_pid: 0,
    }
}

/// The byte the `consumer ctl` process using reply queue `.c<index>` locks (after the
/// producer's byte and every possible seat's: `1 + MAX_SEATS + index`). These are lock
/// bytes only; the header's data there is untouched.
pub(crate) fn reply_byte(index: u32) -> u64 {
    1 + crate::layout::MAX_SEATS as u64 + u64::from(index)
}

/// Takes the write lock on `byte` without waiting: `Ok(false)` if another open file
/// description holds it.
pub(crate) fn try_lock(fd: impl AsFd, byte: u64) -> Result<bool, Errno> {
    match fcntl(fd, FcntlArg::F_OFD_SETLK(&flock(libc::F_WRLCK, byte))) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases our lock on `byte`.
pub(crate) fn unlock(fd: impl AsFd, byte: u64) -> Result<(), Errno> {
    fcntl(fd, FcntlArg::F_OFD_SETLK(&flock(libc::F_UNLCK, byte))).map(drop)
}

/// Whether another open file description holds a lock on `byte` (its holder is alive).
pub(crate) fn is_held(fd: impl AsFd, byte: u64) -> Result<bool, Errno> {
    let mut probe = flock(libc::F_WRLCK, byte);
    fcntl(fd, FcntlArg::F_OFD_GETLK(&mut probe))?;
    Ok(probe.l_type != libc::F_UNLCK as libc::c_short)
}
