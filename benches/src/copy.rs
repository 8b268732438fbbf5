//! The copying mechanisms: a POSIX message queue chunked at its message size, a Unix
//! stream socket, and a pipe (a FIFO, at its default size and enlarged with
//! `F_SETPIPE_SZ`). A child process writes frames; this process reads each one in full.
//!
//! Handoff latency is "the writer starts writing" (its stamp, in the first 8 bytes) → "the
//! last byte is in the reader's buffer". Throughput: the writer fills every byte of each
//! frame before it sends it, the reader reads every byte it received.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use frame_vocab::monotonic_ns;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;

use crate::child::{Args, Child, unique};
use crate::error::{MeasureError, Result, errno, sys};
use crate::measure::{PERIOD, Pacer, put_stamp, read_all, stamp_of};
use crate::mq;

/// How long a socket read waits before the case fails.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A copying mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    /// A POSIX message queue at the largest unprivileged message size.
    Mq,
    /// A Unix stream socket at its default buffer sizes.
    UnixSocket,
    /// A pipe at its default capacity.
    Pipe,
    /// A pipe enlarged with `F_SETPIPE_SZ` to `fs.pipe-max-size`.
    PipeBig,
}

impl CopyKind {
    fn key(self) -> &'static str {
        match self {
            CopyKind::Mq => "mq",
            CopyKind::UnixSocket => "unix",
            CopyKind::Pipe => "pipe",
            CopyKind::PipeBig => "pipe-big",
        }
    }

    fn from_key(key: &str) -> Result<CopyKind> {
        [
            CopyKind::Mq,
            CopyKind::UnixSocket,
            CopyKind::Pipe,
            CopyKind::PipeBig,
        ]
        .into_iter()
        .find(|k| k.key() == key)
        .ok_or_else(|| MeasureError::Data(format!("unknown copy kind {key}")))
    }
}

/// How the writer child sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// One frame every [`PERIOD`], only the stamp rewritten (latency cases).
    Period,
    /// Flat out, every byte rewritten before each send (throughput cases).
    Flat,
}

impl Pace {
    fn key(self) -> &'static str {
        match self {
            Pace::Period => "period",
            Pace::Flat => "flat",
        }
    }
}

/// `fs.pipe-max-size`: the largest pipe an unprivileged process may ask for.
pub fn pipe_max_size() -> Result<usize> {
    let raw = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .map_err(sys("read /proc/sys/fs/pipe-max-size"))?;
    raw.trim()
        .parse()
        .map_err(|_| MeasureError::Data(format!("pipe-max-size holds {raw:?}")))
}

/// A scratch directory for the FIFO and the socket; removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(unique("framepipe-report-"));
        std::fs::create_dir(&dir).map_err(sys(format!("create {}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

enum ReadEnd {
    Stream(Box<dyn Read>),
    Mq {
        mqd: mq::Mqd,
        msgsize: usize,
        scratch: Vec<u8>,
    },
}

/// The reading side of one copying case, with its writer child.
pub struct CopyReceiver {
    // Dropped in this order: the reader, the child, then the names.
    end: ReadEnd,
    _child: Child,
    _queue: Option<mq::Queue>,
    _scratch: Option<Scratch>,
    buf: Vec<u8>,
    /// What the mechanism was set up with (message size, pipe capacity), for the report.
    pub detail: String,
}

impl std::fmt::Debug for CopyReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyReceiver")
            .field("detail", &self.detail)
            .finish()
    }
}

impl CopyReceiver {
    /// Sets up `kind` for frames of `bytes`, starts the writer child on `cpu`.
    pub fn start(kind: CopyKind, bytes: usize, pace: Pace, cpu: usize) -> Result<CopyReceiver> {
        let args = |target: String| {
            vec![
                ("kind", kind.key().to_owned()),
                ("target", target),
                ("bytes", bytes.to_string()),
                ("pace", pace.key().to_owned()),
            ]
        };
        let buf = vec![0u8; bytes];
        match kind {
            CopyKind::Mq => {
                let msgsize = mq::msgsize_max()?;
                CopyReceiver::start_mq(msgsize, bytes, pace, cpu)
            }
            CopyKind::UnixSocket => {
                let scratch = Scratch::new()?;
                let path = scratch.0.join("sock");
                let listener = UnixListener::bind(&path).map_err(sys("bind the socket"))?;
                let child = Child::spawn("copy-writer", &args(path.display().to_string()), cpu)?;
                let (stream, _) = listener.accept().map_err(sys("accept"))?;
                stream
                    .set_read_timeout(Some(READ_TIMEOUT))
                    .map_err(sys("SO_RCVTIMEO"))?;
                Ok(CopyReceiver {
                    end: ReadEnd::Stream(Box::new(stream)),
                    _child: child,
                    _queue: None,
                    _scratch: Some(scratch),
                    buf,
                    detail: "default socket buffers".into(),
                })
            }
            CopyKind::Pipe | CopyKind::PipeBig => {
                let scratch = Scratch::new()?;
                let path = scratch.0.join("fifo");
                nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
                    .map_err(errno("mkfifo"))?;
                // Open the read end without waiting for a writer, then make it blocking.
                let file = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&path)
                    .map_err(sys("open the fifo"))?;
                fcntl(file.as_fd(), FcntlArg::F_SETFL(OFlag::empty())).map_err(errno("F_SETFL"))?;
                if kind == CopyKind::PipeBig {
                    let want = pipe_max_size()?;
                    fcntl(file.as_fd(), FcntlArg::F_SETPIPE_SZ(want as _))
                        .map_err(errno("F_SETPIPE_SZ"))?;
                }
                let capacity =
                    fcntl(file.as_fd(), FcntlArg::F_GETPIPE_SZ).map_err(errno("F_GETPIPE_SZ"))?;
                let child = Child::spawn("copy-writer", &args(path.display().to_string()), cpu)?;
                Ok(CopyReceiver {
                    end: ReadEnd::Stream(Box::new(file)),
                    _child: child,
                    _queue: None,
                    _scratch: Some(scratch),
                    buf,
                    detail: format!("capacity {capacity} B"),
                })
            }
        }
    }

    /// A message queue with messages of `msgsize` (the 64-byte wake-up uses 64).
    pub fn start_mq(msgsize: usize, bytes: usize, pace: Pace, cpu: usize) -> Result<CopyReceiver> {
        let depth = mq::depth(msgsize)?;
        let queue = mq::Queue::create(msgsize, depth)?;
        let mqd = mq::open(&queue.name, false)?;
        let args = [
            ("kind", CopyKind::Mq.key().to_owned()),
            ("target", queue.name.clone()),
            ("bytes", bytes.to_string()),
            ("pace", pace.key().to_owned()),
            ("msgsize", msgsize.to_string()),
        ];
        let child = Child::spawn("copy-writer", &args, cpu)?;
        Ok(CopyReceiver {
            end: ReadEnd::Mq {
                mqd,
                msgsize,
                scratch: vec![0; msgsize],
            },
            _child: child,
            _queue: Some(queue),
            _scratch: None,
            buf: vec![0u8; bytes],
            detail: format!("msgsize {msgsize} B, depth {depth}"),
        })
    }

    fn receive(&mut self) -> Result<()> {
        match &mut self.end {
            ReadEnd::Stream(r) => r.read_exact(&mut self.buf).map_err(sys("read a frame")),
            ReadEnd::Mq {
                mqd,
                msgsize,
                scratch,
            } => mq::recv_chunks(mqd, &mut self.buf, *msgsize, scratch),
        }
    }

    /// One handoff (writer paced at [`PERIOD`]): ns from its stamp to the last byte here.
    pub fn sample(&mut self) -> Result<u64> {
        self.receive()?;
        let now = monotonic_ns();
        Ok(now.saturating_sub(stamp_of(&self.buf)))
    }

    /// One whole frame received and every byte of it read (writer flat out).
    pub fn frame(&mut self) -> Result<()> {
        self.receive()?;
        std::hint::black_box(read_all(&self.buf));
        Ok(())
    }
}

enum WriteEnd {
    Stream(Box<dyn Write>),
    Mq { mqd: mq::Mqd, msgsize: usize },
}

/// The child: writes frames into the mechanism until the reader goes away.
pub fn writer_role(args: &Args) -> Result<()> {
    let kind = CopyKind::from_key(args.get("kind")?)?;
    let target = args.get("target")?;
    let bytes: usize = args.parse_of("bytes")?;
    let flat = args.get("pace")? == Pace::Flat.key();
    let mut end = match kind {
        CopyKind::Mq => WriteEnd::Mq {
            mqd: mq::open(target, true)?,
            msgsize: args.parse_of("msgsize").or_else(|_| mq::msgsize_max())?,
        },
        CopyKind::UnixSocket => WriteEnd::Stream(Box::new(
            UnixStream::connect(target).map_err(sys("connect"))?,
        )),
        CopyKind::Pipe | CopyKind::PipeBig => WriteEnd::Stream(Box::new(
            File::options()
                .write(true)
                .open(target)
                .map_err(sys("open the fifo"))?,
        )),
    };
    crate::child::say("READY")?;
    let mut buf = vec![0x5au8; bytes];
    let mut pacer = Pacer::new(PERIOD);
    let mut n = 0u8;
    loop {
        if flat {
            n = n.wrapping_add(1);
            buf.fill(n);
        } else {
            pacer.wait();
        }
        put_stamp(&mut buf, monotonic_ns());
        let sent = match &mut end {
            WriteEnd::Stream(w) => w.write_all(&buf).map_err(sys("write a frame")),
            WriteEnd::Mq { mqd, msgsize } => mq::send_chunks(mqd, &buf, *msgsize),
        };
        if sent.is_err() {
            // The reader is done (EPIPE) or gone: the case is over.
            return Ok(());
        }
    }
}
