//! Stream names and the names of the kernel objects that belong to a stream.

use std::fmt;
use std::str::FromStr;

/// The stream name used when none is given.
pub const DEFAULT_STREAM: &str = "cam0";

/// The environment variable that names the stream when `--stream` is absent.
pub const STREAM_ENV: &str = "FRAMEPIPE_STREAM";

/// Reply queues per stream (`/framepipe.UID.NAME.c0` to `.c3`): this many `consumer ctl`
/// processes get answers at once. Each is guarded by an OFD lock on its own byte of the
/// region (shm-frames' `ReplyLock`).
pub const REPLY_QUEUES: u32 = 4;

/// A validated stream name, `[A-Za-z0-9_-]{1,32}`, and the user whose stream it is.
///
/// Names are per user: `/dev/shm` and the mqueue namespace are shared by every user of the
/// machine, so every object name carries the owner's uid. Stream `NAME` of uid `U` owns the
/// shm object `/framepipe.U.NAME`, the command queue `/framepipe.U.NAME.ctl`, per-seat event
/// queues `/framepipe.U.NAME.s<seat>` and the abstract Unix socket `\0framepipe.U.NAME` that
/// marks its producer. Another user's `cam0` is another stream; a group member reaches
/// it on purpose as `USER/NAME` (parsed by [`FromStr`]), and every object opened is then
/// checked against that user (see [`crate::access`]).
#[derive(Clone, Debug)]
pub struct StreamName {
    name: String,
    /// The uid whose stream this is.
    owner: u32,
    /// How the owner was written (`USER/` of `USER/NAME`), for messages; `None` for the
    /// caller's own streams.
    owner_text: Option<String>,
}

/// Two names are the same stream when name and owner match, however the owner was written.
impl PartialEq for StreamName {
    fn eq(&self, other: &Self) -> bool {
        (self.owner, &self.name) == (other.owner, &other.name)
    }
}

impl Eq for StreamName {}

impl std::hash::Hash for StreamName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.owner, &self.name).hash(state);
    }
}

/// Why a string is not a stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStreamName {
    /// The name part breaks the character rules.
    #[error("invalid stream name {0:?}: use 1 to 32 of A-Z a-z 0-9 _ -")]
    Name(String),
    /// `USER/NAME` names a user this machine does not know.
    #[error("unknown user {0:?} in stream name (expected USER/NAME with a user name or uid)")]
    UnknownUser(String),
}

fn the_caller() -> u32 {
    nix::unistd::geteuid().as_raw()
}

impl StreamName {
    /// Validates `name` as one of the caller's own streams.
    pub fn new(name: &str) -> Result<StreamName, InvalidStreamName> {
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(StreamName {
                name: name.to_owned(),
                owner: the_caller(),
                owner_text: None,
            })
        } else {
            Err(InvalidStreamName::Name(name.to_owned()))
        }
    }

    /// Stream `name` of user `owner` (a uid).
    pub fn of_user(owner: u32, name: &str) -> Result<StreamName, InvalidStreamName> {
        let mut stream = StreamName::new(name)?;
        if owner != stream.owner {
            stream.owner = owner;
            stream.owner_text = Some(owner.to_string());
        }
        Ok(stream)
    }

    /// The bare name (without the owner).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The uid whose stream this is.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Whether this is one of the caller's own streams.
    pub fn is_own(&self) -> bool {
        self.owner == the_caller()
    }

    /// The shm object's name: `/framepipe.UID.NAME`.
    pub fn shm_name(&self) -> String {
        format!("/{}", self.socket_name())
    }

    /// The command queue's name: `/framepipe.UID.NAME.ctl`.
    pub fn command_queue_name(&self) -> String {
        format!("/{}.ctl", self.socket_name())
    }

    /// Seat `seat`'s event queue name: `/framepipe.UID.NAME.s<seat>`.
    pub fn event_queue_name(&self, seat: u32) -> String {
        format!("/{}.s{}", self.socket_name(), seat)
    }

    /// Reply queue `index`'s name: `/framepipe.UID.NAME.c<index>` (`index < REPLY_QUEUES`).
    pub fn reply_queue_name(&self, index: u32) -> String {
        format!("/{}.c{}", self.socket_name(), index)
    }

    /// The abstract socket name (without the leading NUL) that marks the producer:
    /// `framepipe.UID.NAME`.
    pub fn socket_name(&self) -> String {
        format!("framepipe.{}.{}", self.owner, self.name)
    }

    /// The stream a shm object name (as listed in /dev/shm, without the leading `/`)
    /// belongs to, if it is a framepipe region's name: `framepipe.UID.NAME`.
    pub fn from_shm_file(file: &str) -> Option<StreamName> {
        let rest = file.strip_prefix("framepipe.")?;
        let (uid, name) = rest.split_once('.')?;
        StreamName::of_user(uid.parse().ok()?, name).ok()
    }
}

impl Default for StreamName {
    fn default() -> Self {
        StreamName::new(DEFAULT_STREAM).expect("the default name is valid")
    }
}

impl FromStr for StreamName {
    type Err = InvalidStreamName;

    /// `NAME` (the caller's own stream) or `USER/NAME` (user `USER`'s, by name or uid).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((user, name)) = s.split_once('/') else {
            return StreamName::new(s);
        };
        let uid = match user.parse::<u32>() {
            Ok(uid) => uid,
            Err(_) => nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .ok_or_else(|| InvalidStreamName::UnknownUser(user.to_owned()))?
                .uid
                .as_raw(),
        };
        let mut stream = StreamName::of_user(uid, name)?;
        if !stream.is_own() {
            stream.owner_text = Some(user.to_owned());
        }
        Ok(stream)
    }
}

/// `NAME` for the caller's own streams, `USER/NAME` for another user's.
impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner_text {
            Some(user) => write!(f, "{user}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(StreamName::new("cam0").is_ok());
        assert!(StreamName::new("A_b-9").is_ok());
        assert!(StreamName::new(&"x".repeat(32)).is_ok());
        for bad in ["", "a/b", "a.b", "a b", "é", &"x".repeat(33)] {
            assert!(StreamName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_names_carry_the_owner() {
        let uid = nix::unistd::geteuid().as_raw();
        let n = StreamName::new("cam0").unwrap();
        assert_eq!(n.shm_name(), format!("/framepipe.{uid}.cam0"));
        assert_eq!(n.command_queue_name(), format!("/framepipe.{uid}.cam0.ctl"));
        assert_eq!(n.event_queue_name(3), format!("/framepipe.{uid}.cam0.s3"));
        assert_eq!(n.reply_queue_name(2), format!("/framepipe.{uid}.cam0.c2"));
        assert_eq!(n.socket_name(), format!("framepipe.{uid}.cam0"));
        assert!(n.is_own());
        assert_eq!(n.to_string(), "cam0");
        let theirs = StreamName::of_user(uid + 1, "cam0").unwrap();
        assert_ne!(
            theirs.shm_name(),
            n.shm_name(),
            "another user's cam0 is another stream"
        );
        assert!(!theirs.is_own());
    }

    #[test]
    fn user_slash_name_parses_by_uid_and_by_user_name() {
        let own: StreamName = "cam0".parse().unwrap();
        assert!(own.is_own());
        let by_uid: StreamName = "4242/cam0".parse().unwrap();
        assert_eq!(by_uid.owner(), 4242);
        assert_eq!(by_uid.as_str(), "cam0");
        assert_eq!(by_uid.to_string(), "4242/cam0");
        let root: StreamName = "root/cam0".parse().unwrap();
        assert_eq!(root.owner(), 0);
        assert!(matches!(
            "no-such-user-here/cam0".parse::<StreamName>(),
            Err(InvalidStreamName::UnknownUser(_))
        ));
        assert!(matches!(
            "0/a.b".parse::<StreamName>(),
            Err(InvalidStreamName::Name(_))
        ));
        assert!("a/b/c".parse::<StreamName>().is_err());
    }

    #[test]
    fn shm_file_names_map_back_to_streams() {
        let n = StreamName::of_user(1000, "cam-1").unwrap();
        let file = n.shm_name();
        let back = StreamName::from_shm_file(&file[1..]).unwrap();
        assert_eq!(back.owner(), 1000);
        assert_eq!(back.as_str(), "cam-1");
        for other in [
            "framepipe.x.cam0",
            "framepipe.cam0",
            "other.0.cam0",
            "framepipe.0.a.ctl",
        ] {
            assert!(StreamName::from_shm_file(other).is_none(), "{other}");
        }
    }
}
