//! Who may use a stream's objects: the ownership and permission rules every opener checks.
//!
//! `/dev/shm` and the mqueue namespace are shared by every user and sticky, so another user
//! can create an object under one of our names first. Nothing can prevent that; what we
//! guarantee is that such an object is never used: every object a process opens is
//! `fstat`ed and checked here before anything is read from it or sent to it.
//!
//! - One of our own streams: the object must be owned by us.
//! - `USER/NAME`, another user's stream reached on purpose: owned by USER, of a group we
//!   are in, with mode exactly group read-write and nothing for others (`0660`).

use nix::sys::stat::FileStat;
use nix::unistd::{Gid, getegid, getgroups};

use crate::name::StreamName;

/// The modes a producer may give its objects: private, or shared with its group.
pub const MODES: [u32; 2] = [0o600, 0o660];

/// Why a stream's object may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The object belongs to another user than the stream's: a squatter, never used.
    #[error(
        "{object} belongs to uid {found}, not to uid {owner} whose stream it names: refusing to use it"
    )]
    Owner {
        /// The object's name.
        object: String,
        /// Its owner.
        found: u32,
        /// The stream's owner.
        owner: u32,
    },
    /// Another user's object whose group is none of ours.
    #[error(
        "permission denied: {object} of uid {owner} is shared with group {gid}, which is not one of yours"
    )]
    NotInGroup {
        /// The object's name.
        object: String,
        /// The stream's owner.
        owner: u32,
        /// The object's group.
        gid: u32,
    },
    /// Another user's object that is not exactly group read-write.
    #[error("permission denied: {object} of uid {owner} has mode {mode:04o}; only 0660 is shared")]
    Mode {
        /// The object's name.
        object: String,
        /// The stream's owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
}

/// Checks that `object`, of stream `stream`, with status `stat`, may be used by this
/// process (see the module doc).
pub fn check(object: &str, stat: &FileStat, stream: &StreamName) -> Result<(), Refused> {
    let (uid, gid, mode) = (stat.st_uid, stat.st_gid, stat.st_mode & 0o777);
    if uid != stream.owner() {
        return Err(Refused::Owner {
            object: object.to_owned(),
            found: uid,
            owner: stream.owner(),
        });
    }
    if stream.is_own() {
        return Ok(());
    }
    if !in_group(gid) {
        return Err(Refused::NotInGroup {
            object: object.to_owned(),
            owner: uid,
            gid,
        });
    }
    if mode != 0o660 {
        return Err(Refused::Mode {
            object: object.to_owned(),
            owner: uid,
            mode,
        });
    }
    Ok(())
}

/// Whether this process is a member of group `gid` (effective or supplementary).
fn in_group(gid: u32) -> bool {
    let gid = Gid::from_raw(gid);
    getegid() == gid || getgroups().is_ok_and(|groups| groups.contains(&gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(uid: u32, gid: u32, mode: u32) -> FileStat {
        // Any real status, with what `check` reads replaced (a regular file's type bits).
        let mut st = nix::sys::stat::stat("/").expect("stat /");
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_mode = 0o100000 | mode;
        st
    }

    fn me() -> (u32, u32) {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }

    #[test]
    fn own_streams_need_own_objects() {
        let (uid, gid) = me();
        let own = StreamName::new("cam0").unwrap();
        assert_eq!(check("o", &stat(uid, gid, 0o600), &own), Ok(()));
        assert_eq!(check("o", &stat(uid, gid, 0o660), &own), Ok(()));
        assert!(matches!(
            check("o", &stat(uid + 1, gid, 0o666), &own),
            Err(Refused::Owner { found, .. }) if found == uid + 1
        ));
    }

    #[test]
    fn another_users_stream_must_be_shared_with_our_group_and_no_one_else() {
        let (uid, gid) = me();
        let other = uid.wrapping_add(4242);
        let theirs = StreamName::of_user(other, "cam0").unwrap();
        assert_eq!(check("o", &stat(other, gid, 0o660), &theirs), Ok(()));
        assert!(matches!(
            check("o", &stat(other, gid, 0o666), &theirs),
            Err(Refused::Mode { mode: 0o666, .. })
        ));
        assert!(matches!(
            check("o", &stat(other, gid, 0o600), &theirs),
            Err(Refused::Mode { .. })
        ));
        let foreign_gid = (1..u32::MAX).find(|g| !in_group(*g)).unwrap();
        assert!(matches!(
            check("o", &stat(other, foreign_gid, 0o660), &theirs),
            Err(Refused::NotInGroup { .. })
        ));
        assert!(matches!(
            check("o", &stat(uid, gid, 0o660), &theirs),
            Err(Refused::Owner { .. })
        ));
    }
}
