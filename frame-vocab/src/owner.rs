//! Ownership of a stream name: the abstract Unix socket `\0framepipe.NAME`.
//!
//! A producer binds the socket and holds it for its whole life; the kernel frees it the
//! instant the process dies, whatever its pid does next (a zombie or a reused pid never
//! keeps a name). Only the holder creates, replaces or unlinks the stream's objects, so
//! every creating API in framepipe takes a `&StreamOwner` as proof.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::sync::Arc;

use crate::name::StreamName;

/// Why a stream name could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another live process holds the name.
    #[error("stream {name} is already produced by {}", holder_text(*.holder))]
    AlreadyProduced {
        /// The stream.
        name: StreamName,
        /// The holder as the kernel states it (`SO_PEERCRED`), for the message only; `None`
        /// if it could not be asked (it let go meanwhile, or its backlog is full).
        holder: Option<Holder>,
    },
    /// The socket could not be created or bound for another reason.
    #[error("cannot claim stream {name}")]
    Io {
        /// The stream.
        name: StreamName,
        /// The error from `socket`/`bind`.
        #[source]
        source: io::Error,
    },
}

/// Who holds a stream name, as the kernel reports it for the holder's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The holder's pid when it bound the name.
    pub pid: i32,
    /// The holder's effective uid.
    pub uid: u32,
}

fn holder_text(holder: Option<Holder>) -> String {
    match holder {
        Some(Holder { pid, uid }) if uid == nix::unistd::geteuid().as_raw() => format!("pid {pid}"),
        Some(Holder { pid, uid }) => format!("pid {pid} of uid {uid}"),
        None => "another process".to_owned(),
    }
}

/// Asks the kernel who holds `addr`: connects to the holder's listening socket and reads
/// `SO_PEERCRED`, which is the holder's pid and uid as of its `listen`, not anything the
/// holder wrote itself.
fn holder_of(addr: &SocketAddr) -> Option<Holder> {
    use std::os::unix::net::UnixStream;
    // std opens this socket with SOCK_CLOEXEC too; it closes at the end of this function.
    let stream = UnixStream::connect_addr(addr).ok()?;
    let cred =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(Holder {
        pid: cred.pid(),
        uid: cred.uid(),
    })
}

/// Proof that this process owns a stream name. Cheap to clone; the name is released when
/// the last clone drops (or the process dies).
#[derive(Clone, Debug)]
pub struct StreamOwner {
    inner: Arc<OwnerInner>,
}

#[derive(Debug)]
struct OwnerInner {
    name: StreamName,
    _socket: UnixListener,
}

impl StreamOwner {
    /// Claims `name` by binding its abstract socket.
    pub fn claim(name: &StreamName) -> Result<StreamOwner, ClaimError> {
        let addr =
            SocketAddr::from_abstract_name(name.socket_name().as_bytes()).map_err(|source| {
                ClaimError::Io {
                    name: name.clone(),
                    source,
                }
            })?;
        // std opens the socket with SOCK_CLOEXEC, so a child never inherits the name.
        match UnixListener::bind_addr(&addr) {
            Ok(socket) => Ok(StreamOwner {
                inner: Arc::new(OwnerInner {
                    name: name.clone(),
                    _socket: socket,
                }),
            }),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(ClaimError::AlreadyProduced {
                name: name.clone(),
                holder: holder_of(&addr),
            }),
            Err(source) => Err(ClaimError::Io {
                name: name.clone(),
                source,
            }),
        }
    }

    /// The stream this owner holds.
    pub fn name(&self) -> &StreamName {
        &self.inner.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_claim_fails_until_first_drops() {
        let name = StreamName::new(&format!("own-{}", std::process::id())).unwrap();
        let first = StreamOwner::claim(&name).unwrap();
        let second = StreamOwner::claim(&name);
        assert!(
            matches!(second, Err(ClaimError::AlreadyProduced { .. })),
            "{second:?}"
        );
        let clone = first.clone();
        drop(first);
        assert!(
            StreamOwner::claim(&name).is_err(),
            "a clone still holds the name"
        );
        drop(clone);
        let _third = StreamOwner::claim(&name).unwrap();
    }

    #[test]
    fn a_refused_claim_names_the_holder_from_the_kernel() {
        let name = StreamName::new(&format!("own-cred-{}", std::process::id())).unwrap();
        let _first = StreamOwner::claim(&name).unwrap();
        match StreamOwner::claim(&name) {
            Err(ClaimError::AlreadyProduced {
                holder: Some(holder),
                ..
            }) => {
                assert_eq!(holder.pid as u32, std::process::id());
                assert_eq!(holder.uid, nix::unistd::geteuid().as_raw());
            }
            other => panic!("expected AlreadyProduced with a holder, got {other:?}"),
        }
    }
}
