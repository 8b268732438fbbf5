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
    #[error("stream {name} is already produced by {}", match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process".to_owned(),
    })]
    AlreadyProduced {
        /// The stream.
        name: StreamName,
        /// The holder's pid as its region header states it (for the message only).
        pid: Option<u32>,
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
                pid: crate::region::producer_pid_hint(name),
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
}
