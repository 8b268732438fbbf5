//! The shm object: creating it (the owner), opening it (consumers), retiring it.
//!
//! Creation follows one order so that no opener ever sees a half-made region: `O_EXCL`,
//! `fchmod`, `ftruncate`, `posix_fallocate` (a full /dev/shm fails here with ENOSPC, not
//! with SIGBUS mid-frame), map, write the header, touch every page, and store the magic
//! last with Release. Openers check the magic (Acquire) and every layout field against the
//! object's real size before they map the slots, read-only.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::fcntl::{OFlag, posix_fallocate};
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat};
use nix::unistd::ftruncate;

use crate::error::{CreateError, OpenError};
use crate::layout::{
    Describe, HEADER_PAGES_BYTES, Header, LAYOUT_VERSION, Layout, MAGIC, MAX_SEATS, PAGE,
    STATE_LIVE, Table,
};
use crate::liveness;
use crate::protocol::{self, NO_SLOT};
use crate::sem::Semaphore;
use frame_vocab::clock::{Deadline, monotonic_ns};
use frame_vocab::format::FrameFormat;
use frame_vocab::name::StreamName;

/// A mapped region: the producer maps it whole and writable; a consumer maps the header
/// pages writable (its seat, its semaphore) and the slots read-only, so a stray write
/// through a consumer faults instead of corrupting a frame.
pub(crate) struct Region {
    object: String,
    file: File,
    /// The producer's: the whole object. A consumer's: the header pages only.
    header_map: MmapRaw,
    /// A consumer's read-only map of the slots; `None` for the producer.
    slots_map: Option<MmapRaw>,
    layout: Layout,
}

// SAFETY: all state shared through the mapping is accessed with atomics or through glibc's
// thread-safe semaphore calls; the rest of `Region` is immutable after construction.
unsafe impl Sync for Region {}
// SAFETY: the mappings and the fd may be used and dropped from any thread.
unsafe impl Send for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("object", &self.object)
            .field("layout", &self.layout)
            .finish()
    }
}

/// Views the start of a mapping of at least `HEADER_PAGES_BYTES` as the header.
pub(crate) fn header_of(map: &MmapRaw) -> &Header {
    assert!(
        map.len() >= HEADER_PAGES_BYTES,
        "mapping shorter than the header"
    );
    // SAFETY: the mapping is page-aligned (more than Header's alignment) and at least
    // HEADER_PAGES_BYTES >= size_of::<Header>() long, and lives as long as `map`. Header
    // holds only atomics and an UnsafeCell<sem_t>, for which every bit pattern is valid, so
    // whatever another process wrote there, reading it is defined.
    unsafe { &*map.as_ptr().cast::<Header>() }
}

/// Why the object under a stream's name could not be opened and trusted; each caller turns
/// it into its own error type.
#[derive(Debug)]
pub(crate) enum ObjectError {
    /// Nothing under the name.
    Missing,
    /// `op` failed.
    Sys { op: &'static str, source: Errno },
    /// Its owner or mode is not the name's: another user's object, never used.
    Refused(frame_vocab::access::Refused),
}

/// Opens the shm object `object` of stream `name` with `flags` (and `O_CLOEXEC`) and checks,
/// before anything is read from it, that its owner and mode are the name's. Returns the fd
/// and the `fstat` the check used (its size included). Every open of an existing region
/// (a consumer's, `peek`'s, a `ctl`'s reply lock) goes through here.
pub(crate) fn open_object(
    name: &StreamName,
    object: &str,
    flags: OFlag,
) -> Result<(OwnedFd, FileStat), ObjectError> {
    let fd = match shm_open(object, flags | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(ObjectError::Missing),
        Err(source) => {
            return Err(ObjectError::Sys {
                op: "shm_open",
                source,
            });
        }
    };
    let stat = fstat(&fd).map_err(|source| ObjectError::Sys {
        op: "fstat",
        source,
    })?;
    frame_vocab::access::check(object, &stat, name).map_err(ObjectError::Refused)?;
    Ok((fd, stat))
}

fn sys_open<'a>(op: &'static str, object: &'a str) -> impl FnOnce(Errno) -> OpenError + 'a {
    move |source| match source {
        Errno::EACCES | Errno::EPERM => OpenError::PermissionDenied {
            object: object.to_owned(),
            source,
        },
        _ => OpenError::Sys {
            op,
            object: object.to_owned(),
            source,
        },
    }
}

fn sys_create<'a>(op: &'static str, object: &'a str) -> impl FnOnce(Errno) -> CreateError + 'a {
    move |source| match source {
        Errno::EACCES | Errno::EPERM => CreateError::PermissionDenied {
            object: object.to_owned(),
            source,
        },
        _ => CreateError::Sys {
            op,
            object: object.to_owned(),
            source,
        },
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// How long a retirer waits for a held producer lock before it gives up. A producer that was
/// just killed releases its owner socket and its region's lock as its files close, in no set
/// order, so a restart right after `kill -9` may see the lock still held for an instant; a
/// live producer (in another network namespace) holds it for good.
const RETIRE_GRACE: Duration = Duration::from_millis(500);

/// Takes the producer lock of `fd`, trying again until `grace` has passed.
fn lock_within(fd: &OwnedFd, grace: Duration) -> Result<bool, Errno> {
    let deadline = Deadline::after(grace);
    loop {
        if liveness::try_lock(fd, liveness::PRODUCER_BYTE)? {
            return Ok(true);
        }
        if deadline.expired() {
            return Ok(false);
        }
        // Nothing signals a lock's release; this is on a producer's start path only.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Unlinks a name unless disarmed: creation that fails half-way leaves nothing behind.
struct UnlinkGuard<'a>(Option<&'a str>);

impl Drop for UnlinkGuard<'_> {
    fn drop(&mut self) {
        if let Some(object) = self.0 {
            let _ = shm_unlink(object);
        }
    }
}

impl Region {
    /// Creates the region of `name`. Only the name's owner calls this, after retiring any
    /// object left under the name.
    pub(crate) fn create(
        name: &StreamName,
        format: FrameFormat,
        seats: u32,
        mode: u32,
        epoch: u64,
        describe: &Describe,
    ) -> Result<Region, CreateError> {
        if seats == 0 || seats as usize > MAX_SEATS {
            return Err(CreateError::InvalidSeats { seats });
        }
        let layout = Layout::new(format, seats, epoch).ok_or(CreateError::TooLarge {
            format,
            slots: seats + 2,
        })?;
        let object = name.shm_name();
        let fd: OwnedFd = shm_open(
            object.as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(sys_create("shm_open", &object))?;
        let mut guard = UnlinkGuard(Some(&object));
        // The producer lock at once, before the object has a size: a retirer in another
        // network namespace (where our owner socket is invisible) then sees a live region.
        // Held for the region's life: the kernel drops it the instant we die.
        if !lock_within(&fd, RETIRE_GRACE).map_err(sys_create("lock", &object))? {
            return Err(CreateError::Sys {
                op: "lock",
                object: object.clone(),
                source: Errno::EAGAIN,
            });
        }
        // shm_open's mode is masked by the umask; fchmod is not.
        fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(sys_create("fchmod", &object))?;
        let total = layout.total_size as libc::off_t; // Layout::new checked it fits.
        ftruncate(&fd, total).map_err(sys_create("ftruncate", &object))?;
        posix_fallocate(&fd, 0, total).map_err(|e| match e {
            Errno::ENOSPC => CreateError::NoSpace {
                object: object.clone(),
                bytes: layout.total_size,
            },
            e => CreateError::Sys {
                op: "posix_fallocate",
                object: object.clone(),
                source: e,
            },
        })?;
        let file = File::from(fd);
        let map = MmapOptions::new()
            .len(layout.total_size)
            .populate()
            .map_raw(&file)
            .map_err(|e| sys_create("mmap", &object)(io_errno(e)))?;
        let region = Region {
            object: object.clone(),
            file,
            header_map: map,
            slots_map: None,
            layout,
        };
        region.init_header(describe)?;
        region.prefault();
        #[cfg(feature = "fault-injection")]
        crate::fault::before_magic();
        // SYNC POINT: magic. Release: everything written above is visible to an opener that
        // loads the magic with Acquire.
        region
            .header()
            .layout_version
            .store(LAYOUT_VERSION, Ordering::Relaxed);
        region.header().magic.store(MAGIC, Ordering::Release);
        guard.0 = None;
        Ok(region)
    }

    fn init_header(&self, describe: &Describe) -> Result<(), CreateError> {
        let h = self.header();
        let r = Ordering::Relaxed; // Published by the Release store of the magic.
        self.layout.write(h);
        describe.write(h);
        h.producer_pid.store(std::process::id(), r);
        h.heartbeat_ns.store(monotonic_ns(), r);
        h.state.store(STATE_LIVE, r);
        h.latest.0.store(0, r);
        for slot in &h.slots {
            slot.seq.store(0, r);
            slot.capture_ns.store(0, r);
            slot.publish_ns.store(0, r);
        }
        for seat in &h.seats {
            seat.word.store(0, r);
            seat.hold.store(NO_SLOT, r);
            seat.taken.store(0, r);
            seat.delivery.store(0, r);
            // SAFETY: the magic is not stored yet, so no other process uses this semaphore,
            // and the object is new (O_EXCL): it was never initialised before.
            unsafe { Semaphore::new(&seat.sem.0).init() }
                .map_err(sys_create("sem_init", &self.object))?;
        }
        // SAFETY: as for the seats' semaphores: not yet visible, never initialised.
        unsafe { Semaphore::new(&h.producer_wake.0).init() }
            .map_err(sys_create("sem_init", &self.object))?;
        Ok(())
    }

    /// Writes one byte per page of the slots so that no frame ever takes a page fault on
    /// the producer's side (MAP_POPULATE maps them; this makes sure they are writable).
    fn prefault(&self) {
        let base = self.header_map.as_mut_ptr();
        for offset in (self.layout.slot_offset..self.layout.total_size).step_by(PAGE) {
            // SAFETY: `offset` < total_size = the mapping's length; the region is not yet
            // visible to anyone (no magic), so nobody reads these bytes concurrently.
            unsafe { base.add(offset).write_volatile(0) };
        }
    }

    /// Opens the existing region of `name` once (no waiting) and validates its layout.
    /// `usable` looks at the header alone (state, producer liveness: they can change)
    /// before the slots are mapped, so an opener polling a hung or dead producer never maps
    /// and prefaults the slot area on each attempt.
    pub(crate) fn open(
        name: &StreamName,
        usable: impl FnOnce(&Header, BorrowedFd<'_>) -> Result<(), OpenError>,
    ) -> Result<Region, OpenError> {
        let object = name.shm_name();
        let (fd, stat) = open_object(name, &object, OFlag::O_RDWR).map_err(|e| match e {
            ObjectError::Missing => OpenError::NoProducer {
                name: name.to_string(),
            },
            ObjectError::Sys { op, source } => sys_open(op, &object)(source),
            ObjectError::Refused(refused) => refused.into(),
        })?;
        let size = stat.st_size.max(0) as u64;
        if size < HEADER_PAGES_BYTES as u64 {
            return Err(OpenError::Truncated {
                object,
                size,
                need: HEADER_PAGES_BYTES as u64,
            });
        }
        let file = File::from(fd);
        let header_map = MmapOptions::new()
            .len(HEADER_PAGES_BYTES)
            .map_raw(&file)
            .map_err(|e| sys_open("mmap", &object)(io_errno(e)))?;
        let header = header_of(&header_map);
        // SYNC POINT: magic (Acquire side).
        match header.magic.load(Ordering::Acquire) {
            MAGIC => {}
            0 => {
                return Err(OpenError::NotReady {
                    name: name.to_string(),
                });
            }
            found => return Err(OpenError::BadMagic { found }),
        }
        let layout = Layout::read(header, size)?;
        usable(header, file.as_fd())?;
        let slots_map = MmapOptions::new()
            .offset(layout.slot_offset as u64)
            .len(layout.total_size - layout.slot_offset)
            .populate()
            .map_raw_read_only(&file)
            .map_err(|e| sys_open("mmap", &object)(io_errno(e)))?;
        Ok(Region {
            object,
            file,
            header_map,
            slots_map: Some(slots_map),
            layout,
        })
    }

    /// Owner only: retires whatever object is left under `name` (a crashed producer's, or
    /// ours before a format change): marks it Replaced, wakes every seat so its readers
    /// look, and unlinks it. Returns its epoch, if it had a readable one.
    ///
    /// Refuses, touching nothing, an object of another user (a squatter) and one whose
    /// producer lock is held (a live producer our owner socket cannot see: another network
    /// namespace). The lock taken here is kept until the object is unlinked, so its
    /// producer cannot be starting up meanwhile.
    pub(crate) fn retire(name: &StreamName) -> Result<Option<u64>, CreateError> {
        let object = name.shm_name();
        let fd = match shm_open(
            object.as_str(),
            OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(sys_create("shm_open", &object)(e)),
        };
        let stat = fstat(&fd).map_err(sys_create("fstat", &object))?;
        if stat.st_uid != nix::unistd::geteuid().as_raw() {
            return Err(CreateError::Squatted {
                name: name.to_string(),
                object,
                uid: stat.st_uid,
            });
        }
        let map = (stat.st_size >= HEADER_PAGES_BYTES as i64)
            .then(|| MmapOptions::new().len(HEADER_PAGES_BYTES).map_raw(&fd).ok())
            .flatten();
        if !lock_within(&fd, RETIRE_GRACE).map_err(sys_create("lock", &object))? {
            let pid = map.as_ref().and_then(|map| {
                let header = header_of(map);
                (header.magic.load(Ordering::Acquire) == MAGIC)
                    .then(|| header.producer_pid.load(Ordering::Relaxed))
                    .filter(|&pid| pid != 0)
            });
            return Err(CreateError::AlreadyProduced {
                name: name.to_string(),
                pid,
            });
        }
        let epoch = map.as_ref().and_then(|map| {
            let header = header_of(map);
            if header.magic.load(Ordering::Acquire) != MAGIC {
                return None;
            }
            // Its seat count is not validated: wake every seat the header has room for.
            mark(header, crate::layout::STATE_REPLACED, MAX_SEATS);
            Some(header.epoch.load(Ordering::Relaxed))
        });
        let _ = shm_unlink(object.as_str());
        Ok(epoch)
    }

    /// Whether `name` still names this very object (not a replacement made since).
    pub(crate) fn is_current(&self, name: &StreamName) -> bool {
        let current = shm_open(
            name.shm_name().as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let (Ok(current), Ok(mine)) = (current, fstat(&self.file)) else {
            return false;
        };
        fstat(&current).is_ok_and(|c| (c.st_dev, c.st_ino) == (mine.st_dev, mine.st_ino))
    }

    /// The object's name (`/framepipe.NAME`).
    pub(crate) fn object(&self) -> &str {
        &self.object
    }

    /// The validated layout.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The header.
    pub(crate) fn header(&self) -> &Header {
        header_of(&self.header_map)
    }

    /// The header as the slot protocol sees it.
    pub(crate) fn table(&self) -> Table<'_> {
        Table {
            header: self.header(),
            layout: &self.layout,
        }
    }

    /// Seat `seat`'s semaphore (`seat` < the validated seat count).
    pub(crate) fn sem(&self, seat: u32) -> Semaphore<'_> {
        Semaphore::new(&self.header().seats[seat as usize].sem.0)
    }

    /// The producer's own wake-up semaphore (every-frame delivery: posted by a seat that
    /// took a frame or left, by reclaim, and by the service thread to interrupt a wait).
    pub(crate) fn producer_wake(&self) -> Semaphore<'_> {
        Semaphore::new(&self.header().producer_wake.0)
    }

    /// The fd whose OFD locks mark liveness.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Start of slot `slot`'s bytes (`slot` < the validated slot count): writable for the
    /// producer, read-only for a consumer.
    pub(crate) fn slot_ptr(&self, slot: u32) -> *mut u8 {
        let range = self.layout.slot_range(slot);
        match &self.slots_map {
            // SAFETY: slot_range lies inside the object (validated layout), and the
            // producer's map covers the whole object.
            None => unsafe { self.header_map.as_mut_ptr().add(range.start) },
            // SAFETY: the consumer's map starts at slot_offset and covers every slot.
            Some(map) => unsafe { map.as_mut_ptr().add(range.start - self.layout.slot_offset) },
        }
    }

    /// Sets the state (Stopping or Replaced) and wakes every seat. Owner only.
    pub(crate) fn set_state_and_wake(&self, state: u32) {
        mark(self.header(), state, self.layout.seats as usize);
    }

    /// Unlinks the object's name. Owner only.
    pub(crate) fn unlink(&self) {
        let _ = shm_unlink(self.object.as_str());
    }
}

/// Sets `state` through the protocol (a consumer that sees it still takes every frame
/// published before) and posts every seat's semaphore of `table` so sleepers look.
fn mark(header: &Header, state: u32, seats: usize) {
    protocol::announce(&header.state, state);
    for seat in header.seats.iter().take(seats.min(MAX_SEATS)) {
        Semaphore::new(&seat.sem.0).post();
    }
}
