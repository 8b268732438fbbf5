//! Small messages both ways: a request from here, an answer from a child, one round trip
//! every [`PERIOD`]. control-msg's typed Ping→Pong against a bare `mq_send`/`mq_receive`
//! round trip of the same 256-byte messages; and a 64-byte message through a shm-frames
//! region plus its semaphore (one region each way) against 64 bytes through two queues.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use control_msg::{
    Command, CommandReceiver, CommandSender, Event, EventReceiver, EventSender, MSG_SIZE,
    QueueConfig, Sent,
};
use frame_vocab::{StreamName, StreamOwner};
use shm_frames::{Reader, WaitStrategy, Writer};

use crate::child::{Args, Child};
use crate::error::{MeasureError, Result, lib};
use crate::measure::{PERIOD, Pacer};
use crate::mq;
use crate::shm::{
    FRAME_TIMEOUT, Heartbeat, UnlinkOnDrop, create_writer, open_reader, unique_stream,
};
use crate::size::SIZES;

/// How long an answer may take before the case fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A round-trip case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundTrip {
    /// control-msg: `Command::Ping` on the command queue, `Event::Pong` on a seat queue.
    TypedPingPong,
    /// Two raw queues of 256-byte messages, echoing.
    BareMq256,
    /// A 64-byte frame through a shm-frames region and its semaphore, each way.
    Shm64,
    /// Two raw queues of 64-byte messages, echoing.
    BareMq64,
}

/// Every round trip, in report order.
pub const ROUND_TRIPS: [RoundTrip; 4] = [
    RoundTrip::TypedPingPong,
    RoundTrip::BareMq256,
    RoundTrip::Shm64,
    RoundTrip::BareMq64,
];

impl RoundTrip {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            RoundTrip::TypedPingPong => "control-msg Ping→Pong (256 B queues)",
            RoundTrip::BareMq256 => "bare mq round trip, 256 B",
            RoundTrip::Shm64 => "64 B through shm-frames + semaphore, each way",
            RoundTrip::BareMq64 => "64 B through mq, each way",
        }
    }
}

/// A round-trip case set up with its answering child.
#[derive(Debug)]
pub struct RoundTripCase {
    kind: Kind,
    pacer: Pacer,
}

#[derive(Debug)]
enum Kind {
    Typed {
        commands: CommandSender,
        events: EventReceiver,
        nonce: u64,
        _child: Child,
        _queues: [UnlinkQueue; 2],
    },
    Bare {
        request: mq::Mqd,
        reply: mq::Mqd,
        out: Vec<u8>,
        back: Vec<u8>,
        _child: Child,
        _queues: [mq::Queue; 2],
    },
    Shm {
        writer: Writer,
        reader: Reader,
        _child: Child,
        _heartbeat: Heartbeat,
        _owner: StreamOwner,
        _names: [UnlinkOnDrop; 2],
    },
}

/// Unlinks a queue on drop (the typed responder is killed, so it never unlinks its own).
#[derive(Debug)]
struct UnlinkQueue(String);

impl Drop for UnlinkQueue {
    fn drop(&mut self) {
        let _ = nix::mqueue::mq_unlink(self.0.as_str());
    }
}

impl RoundTripCase {
    /// Sets up `kind` with its answering child on `cpu`.
    pub fn start(kind: RoundTrip, cpu: usize) -> Result<RoundTripCase> {
        let kind = match kind {
            RoundTrip::TypedPingPong => {
                let stream = unique_stream()?;
                let queues = [
                    UnlinkQueue(stream.command_queue_name()),
                    UnlinkQueue(stream.event_queue_name(0)),
                ];
                let child = Child::spawn("rt-typed", &[("stream", stream.as_str().into())], cpu)?;
                Kind::Typed {
                    commands: CommandSender::open(&stream)
                        .map_err(lib("open the command queue"))?,
                    events: EventReceiver::open(&stream, 0).map_err(lib("open the event queue"))?,
                    nonce: 0,
                    _child: child,
                    _queues: queues,
                }
            }
            RoundTrip::BareMq256 | RoundTrip::BareMq64 => {
                let size = if kind == RoundTrip::BareMq256 {
                    MSG_SIZE
                } else {
                    64
                };
                let depth = mq::depth(size)?;
                let queues = [
                    mq::Queue::create(size, depth)?,
                    mq::Queue::create(size, depth)?,
                ];
                let args = [
                    ("request", queues[0].name.clone()),
                    ("reply", queues[1].name.clone()),
                    ("size", size.to_string()),
                ];
                let child = Child::spawn("rt-mq", &args, cpu)?;
                Kind::Bare {
                    request: mq::open(&queues[0].name, true)?,
                    reply: mq::open(&queues[1].name, false)?,
                    out: vec![0x5a; size],
                    back: vec![0; size],
                    _child: child,
                    _queues: queues,
                }
            }
            RoundTrip::Shm64 => {
                let (there, back) = (unique_stream()?, unique_stream()?);
                let names = [UnlinkOnDrop::region(&there), UnlinkOnDrop::region(&back)];
                let owner = StreamOwner::claim(&there).map_err(lib("claim the stream"))?;
                let writer = create_writer(&owner, SIZES[0], 1)?;
                let heartbeat = Heartbeat::start(writer.supervisor());
                let args = [
                    ("request", there.as_str().to_owned()),
                    ("reply", back.as_str().to_owned()),
                ];
                let child = Child::spawn("rt-shm", &args, cpu)?;
                let reader = open_reader(&back, WaitStrategy::Block)?;
                Kind::Shm {
                    writer,
                    reader,
                    _child: child,
                    _heartbeat: heartbeat,
                    _owner: owner,
                    _names: names,
                }
            }
        };
        Ok(RoundTripCase {
            kind,
            pacer: Pacer::new(PERIOD),
        })
    }

    /// Waits for the next period, then one round trip, ns.
    pub fn sample(&mut self) -> Result<u64> {
        self.pacer.wait();
        let start = Instant::now();
        match &mut self.kind {
            Kind::Typed {
                commands,
                events,
                nonce,
                ..
            } => {
                *nonce += 1;
                let sent = commands
                    .send(&Command::Ping { nonce: *nonce })
                    .map_err(lib("send Ping"))?;
                if sent != Sent::Queued {
                    return Err(MeasureError::Data(format!("Ping not queued: {sent:?}")));
                }
                match events
                    .recv_timeout(ANSWER_TIMEOUT)
                    .map_err(lib("receive Pong"))?
                {
                    Some(Event::Pong { nonce: got }) if got == *nonce => {}
                    other => {
                        return Err(MeasureError::Data(format!("expected Pong, got {other:?}")));
                    }
                }
            }
            Kind::Bare {
                request,
                reply,
                out,
                back,
                ..
            } => {
                out[0] = out[0].wrapping_add(1);
                let size = out.len();
                mq::send_chunks(request, out, size)?;
                let mut scratch = Vec::new();
                mq::recv_chunks(reply, back, size, &mut scratch)?;
                if back[0] != out[0] {
                    return Err(MeasureError::Data("a stale echo".into()));
                }
            }
            Kind::Shm { writer, reader, .. } => {
                let Some(mut slot) = writer.slot() else {
                    return Err(MeasureError::Data("no free slot".into()));
                };
                let seq = slot.seq();
                slot[..8].copy_from_slice(&seq.to_le_bytes());
                slot.publish(None);
                let frame = reader
                    .wait_frame(FRAME_TIMEOUT)
                    .map_err(lib("wait for the answer"))?;
                if frame[..8] != seq.to_le_bytes() {
                    return Err(MeasureError::Data("a stale answer".into()));
                }
            }
        }
        Ok(start.elapsed().as_nanos() as u64)
    }
}

/// The child: answers Ping with Pong through control-msg's own queues.
pub fn typed_role(args: &Args) -> Result<()> {
    let stream = StreamName::new(args.get("stream")?).map_err(lib("stream name"))?;
    let owner = StreamOwner::claim(&stream).map_err(lib("claim the stream"))?;
    let mut commands = CommandReceiver::create(&owner, &QueueConfig::new())
        .map_err(lib("create the command queue"))?;
    let mut events = EventSender::create(&owner, 0, &QueueConfig::new())
        .map_err(lib("create the event queue"))?;
    crate::child::say("READY")?;
    loop {
        if let Some(Command::Ping { nonce }) = commands
            .recv_timeout(Duration::from_secs(1))
            .map_err(lib("receive"))?
        {
            // A full queue drops the Pong; the parent then times out and says so.
            let _ = events
                .send(&Event::Pong { nonce })
                .map_err(lib("send Pong"))?;
        }
    }
}

/// The child: echoes every message of `request` on `reply`.
pub fn mq_role(args: &Args) -> Result<()> {
    let request = mq::open(args.get("request")?, false)?;
    let reply = mq::open(args.get("reply")?, true)?;
    let size: usize = args.parse_of("size")?;
    crate::child::say("READY")?;
    let mut buf = vec![0u8; size];
    let mut scratch = Vec::new();
    loop {
        match mq::recv_chunks(&request, &mut buf, size, &mut scratch) {
            Ok(()) => mq::send_chunks(&reply, &buf, size)?,
            Err(MeasureError::Timeout(_)) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The child: takes each 64-byte frame of `request` and publishes its bytes on `reply`.
pub fn shm_role(args: &Args) -> Result<()> {
    let request = StreamName::new(args.get("request")?).map_err(lib("stream name"))?;
    let reply = StreamName::new(args.get("reply")?).map_err(lib("stream name"))?;
    let owner = StreamOwner::claim(&reply).map_err(lib("claim the stream"))?;
    let mut writer = create_writer(&owner, SIZES[0], 1)?;
    let _heartbeat = Heartbeat::start(writer.supervisor());
    let mut reader = open_reader(&request, WaitStrategy::Block)?;
    crate::child::say("READY")?;
    let mut message = [0u8; 64];
    loop {
        match reader.wait_frame(FRAME_TIMEOUT) {
            Ok(frame) => message.copy_from_slice(&frame[..64]),
            Err(shm_frames::WaitError::Timeout) => continue,
            Err(e) => return Err(lib("wait for a request")(e)),
        }
        if let Some(mut slot) = writer.slot() {
            slot[..64].copy_from_slice(&message);
            slot.publish(None);
        }
    }
}
