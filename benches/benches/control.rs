//! The control queue's cost: a typed Ping→Pong round trip through the command and event
//! queues against a responder in another process, beside a bare `mq_send`/`mq_receive`
//! round trip of 256-byte messages through two raw queues, plus encode and decode alone;
//! and `consumer ctl ping`'s round trip (a `Request{Ping}` answered by the real producer's
//! service thread with a `Reply` on a reply queue, through `consumer::ctl::Controller`,
//! back to back) beside the same bare round trip.
//!
//! The responder is this bench binary re-executed with [`ROLE`] set. The two processes are
//! pinned to different CPUs. Targets: the typed round trip within 1.3x of the bare one;
//! `ctl ping` within 1.5x; encode + decode under 1% of it.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::io::Write;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use control_msg::{
    Command, CommandReceiver, CommandSender, Event, EventReceiver, EventSender, MSG_SIZE,
    QueueConfig, Sent, decode, encode,
};
use criterion::{Criterion, Throughput};
use frame_vocab::{FrameFormat, PixelFormat, StreamName, StreamOwner};
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_open, mq_receive, mq_send, mq_unlink};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use shm_frames::testing::{ChildProc, HANG};

/// Which responder a re-executed child plays: `typed` or `bare`.
const ROLE: &str = "FRAMEPIPE_BENCH_ROLE";
/// The stream (typed) or queue prefix (bare) the child serves.
const TARGET: &str = "FRAMEPIPE_BENCH_TARGET";
/// The CPU the child pins itself to.
const CPU: &str = "FRAMEPIPE_BENCH_CPU";

/// How long a responder waits for the next request before checking again.
const IDLE: Duration = Duration::from_secs(1);

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        respond(&role);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let (here, there) = pick_cpus();
    pin(here);
    codec(&mut c);
    round_trips(&mut c, there);
    c.final_summary();
}

/// Two different CPUs (0 and 1 on this 2-core machine), or the same one if only one.
fn pick_cpus() -> (usize, usize) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0, usize::from(cpus > 1))
}

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu index in range");
    sched_setaffinity(Pid::from_raw(0), &set).expect("sched_setaffinity");
}

fn frame_meta() -> Event {
    Event::FrameMeta {
        seq: 123_456,
        slot: 2,
        format: FrameFormat::new(1920, 1080, PixelFormat::Bgra).expect("valid format"),
        capture_ns: 1_000_000_000,
        publish_ns: 1_000_250_000,
        flags: 0,
    }
}

/// Encode and decode alone: the per-message CPU cost of the wire format.
fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    let meta = frame_meta();
    let ping = Command::Ping { nonce: 42 };
    let mut buf = [0u8; MSG_SIZE];
    group.bench_function("encode_frame_meta", |b| {
        b.iter(|| encode(black_box(&meta), &mut buf).expect("encode"))
    });
    let len = encode(&meta, &mut buf).expect("encode");
    let meta_bytes = buf[..len].to_vec();
    group.bench_function("decode_frame_meta", |b| {
        b.iter(|| decode::<Event>(black_box(&meta_bytes)).expect("decode"))
    });
    group.bench_function("encode_ping", |b| {
        b.iter(|| encode(black_box(&ping), &mut buf).expect("encode"))
    });
    let len = encode(&ping, &mut buf).expect("encode");
    let ping_bytes = buf[..len].to_vec();
    group.bench_function("decode_ping", |b| {
        b.iter(|| decode::<Command>(black_box(&ping_bytes)).expect("decode"))
    });
    group.finish();
}

/// The typed and bare round trips, in one group so criterion reports them side by side,
/// then interleaved batch by batch for a ratio that load on the machine cannot skew.
fn round_trips(c: &mut Criterion, cpu: usize) {
    let mut typed = Typed::start(cpu);
    let mut bare = Bare::start(cpu);
    let mut group = c.benchmark_group("round_trip");
    group.throughput(Throughput::Elements(1));
    let mut ctl = Ctl::start(cpu);
    group.bench_function("typed_ping_pong", |b| b.iter(|| typed.round_trip()));
    group.bench_function("bare_mqueue_256B", |b| b.iter(|| bare.round_trip()));
    group.bench_function("ctl_ping_reply", |b| b.iter(|| ctl.round_trip()));
    group.finish();
    compare("typed", 1.3, &mut || typed.round_trip(), &mut bare);
    compare("ctl_ping", 1.5, &mut || ctl.round_trip(), &mut bare);
    typed.stop();
    ctl.stop();
    bare.stop();
}

/// `consumer ctl ping`'s path: a `Request{Ping}` to the real producer (this binary
/// re-executed, running `producer::run` on a 1 fps pattern), its `Reply` on a reply queue.
struct Ctl {
    controller: consumer::ctl::Controller,
    stop: std::sync::atomic::AtomicBool,
    _producer: Responder,
}

impl Ctl {
    fn start(cpu: usize) -> Ctl {
        let stream =
            StreamName::new(&format!("benchctl{}", std::process::id())).expect("stream name");
        let producer = Responder::spawn("producer", stream.as_str(), cpu);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let controller =
            consumer::ctl::Controller::open(&stream, HANG, &stop).expect("a ctl controller");
        Ctl {
            controller,
            stop,
            _producer: producer,
        }
    }

    fn round_trip(&mut self) {
        let answer = self
            .controller
            .request(Command::Ping { nonce: 1 }, IDLE * 10, &self.stop)
            .expect("a reply");
        assert_eq!(answer.outcome, control_msg::Outcome::Done);
    }

    fn stop(mut self) {
        let answer = self
            .controller
            .request(Command::Shutdown, IDLE * 10, &self.stop)
            .expect("a reply");
        assert_eq!(answer.outcome, control_msg::Outcome::Done);
        self._producer.finish();
    }
}

/// Alternates batches of typed and bare round trips and prints the median of the
/// per-batch ratios: adjacent batches see the same machine, so other load cancels out.
fn compare(what: &str, target: f64, typed: &mut dyn FnMut(), bare: &mut Bare) {
    const ROUNDS: usize = 21;
    const BATCH: u32 = 500;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut typed_ns = Vec::with_capacity(ROUNDS);
    let mut bare_ns = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        (0..BATCH).for_each(|_| typed());
        let t = start.elapsed().as_nanos() as f64 / f64::from(BATCH);
        let start = Instant::now();
        (0..BATCH).for_each(|_| bare.round_trip());
        let b = start.elapsed().as_nanos() as f64 / f64::from(BATCH);
        ratios.push(t / b);
        typed_ns.push(t);
        bare_ns.push(b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "round_trip/interleaved: {what} {:.1} µs, bare {:.1} µs, {what}/bare {:.3} \
         (median of {ROUNDS} alternating batches of {BATCH}; target <= {target})",
        median(&mut typed_ns) / 1e3,
        median(&mut bare_ns) / 1e3,
        median(&mut ratios),
    );
}

/// Ping→Pong through the crate's command and event queues.
struct Typed {
    commands: CommandSender,
    events: EventReceiver,
    nonce: u64,
    responder: Responder,
}

impl Typed {
    fn start(cpu: usize) -> Typed {
        let stream = StreamName::new(&format!("bench{}", std::process::id())).expect("stream name");
        let responder = Responder::spawn("typed", stream.as_str(), cpu);
        Typed {
            commands: CommandSender::open(&stream).expect("open the command queue"),
            events: EventReceiver::open(&stream, 0).expect("open the event queue"),
            nonce: 0,
            responder,
        }
    }

    fn round_trip(&mut self) {
        self.nonce += 1;
        let nonce = self.nonce;
        let sent = self.commands.send(&Command::Ping { nonce }).expect("send");
        assert_eq!(sent, Sent::Queued);
        match self.events.recv_timeout(IDLE * 10).expect("receive") {
            Some(Event::Pong { nonce: got }) if got == nonce => {}
            other => panic!("expected Pong {{ nonce: {nonce} }}, got {other:?}"),
        }
    }

    fn stop(mut self) {
        let _ = self.commands.send(&Command::Shutdown).expect("send");
        self.responder.finish();
    }
}

/// 256-byte messages echoed through two raw blocking queues.
struct Bare {
    request: MqdT,
    reply: MqdT,
    out: [u8; MSG_SIZE],
    back: [u8; MSG_SIZE],
    responder: Responder,
    // Dropped last: unlinks the queues.
    _queues: BareQueues,
}

impl Bare {
    fn start(cpu: usize) -> Bare {
        let queues = BareQueues::create(&format!("/fpbench{}", std::process::id()));
        let responder = Responder::spawn("bare", &queues.prefix, cpu);
        Bare {
            request: queues.open("req", MQ_OFlag::O_WRONLY),
            reply: queues.open("rep", MQ_OFlag::O_RDONLY),
            out: [0x5a; MSG_SIZE],
            back: [0; MSG_SIZE],
            responder,
            _queues: queues,
        }
    }

    fn round_trip(&mut self) {
        self.out[0] = self.out[0].wrapping_add(1);
        mq_send(&self.request, &self.out, 0).expect("mq_send");
        let len = mq_receive(&self.reply, &mut self.back, &mut 0).expect("mq_receive");
        assert_eq!((len, self.back[0]), (MSG_SIZE, self.out[0]));
    }

    fn stop(mut self) {
        // An empty message tells the bare responder to stop.
        mq_send(&self.request, &[], 0).expect("mq_send");
        self.responder.finish();
        for mqd in [self.request, self.reply] {
            mq_close(mqd).expect("mq_close");
        }
    }
}

/// The child process that answers requests (shm-frames' `ChildProc`: killed and reaped if
/// still running on drop).
struct Responder {
    child: ChildProc,
}

impl Responder {
    fn spawn(role: &str, target: &str, cpu: usize) -> Responder {
        let mut cmd = Process::new(std::env::current_exe().expect("current exe"));
        cmd.env(ROLE, role)
            .env(TARGET, target)
            .env(CPU, cpu.to_string());
        let child = ChildProc::spawn(cmd);
        // The responder says READY once its queues exist (the producer's readiness is
        // waited for by `Controller::open`).
        if role != "producer" {
            child.expect("READY", HANG);
        }
        Responder { child }
    }

    fn finish(&mut self) {
        let status = self.child.reap();
        assert!(status.success(), "responder: {status}");
    }
}

/// The child's side: pin, set up, say READY, answer until told to stop.
fn respond(role: &str) {
    // Die with the bench, never linger.
    set_pdeathsig(Signal::SIGKILL).expect("prctl(PR_SET_PDEATHSIG)");
    let cpu: usize = std::env::var(CPU)
        .expect("cpu")
        .parse()
        .expect("cpu number");
    pin(cpu);
    let target = std::env::var(TARGET).expect("target");
    match role {
        "typed" => respond_typed(&target),
        "bare" => respond_bare(&target),
        "producer" => respond_producer(&target),
        other => panic!("unknown role {other}"),
    }
}

/// The producer's side of Ping→Pong, with the crate's own queues.
fn respond_typed(stream: &str) {
    let stream = StreamName::new(stream).expect("stream name");
    let owner = StreamOwner::claim(&stream).expect("claim the stream");
    let mut commands = CommandReceiver::create(&owner, &QueueConfig::new()).expect("create");
    let mut events = EventSender::create(&owner, 0, &QueueConfig::new()).expect("create");
    ready();
    loop {
        match commands.recv_timeout(IDLE).expect("receive") {
            Some(Command::Ping { nonce }) => {
                let _ = events.send(&Event::Pong { nonce }).expect("send");
            }
            Some(Command::Shutdown) => return,
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
}

/// The real producer, on a 1 fps pattern, until a `Shutdown`.
fn respond_producer(stream: &str) {
    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        args: producer::ProducerArgs,
    }
    let args = <Args as clap::Parser>::parse_from([
        "producer", "--stream", stream, "--size", "64x48", "--fps", "1",
    ]);
    let config = args.args.config().expect("a producer config");
    producer::run(&config).expect("the producer's run");
}

/// Echoes 256-byte messages with blocking `mq_receive`/`mq_send`, nothing else.
fn respond_bare(prefix: &str) {
    let queues = BareQueues {
        prefix: prefix.to_owned(),
        owned: false,
    };
    let request = queues.open("req", MQ_OFlag::O_RDONLY);
    let reply = queues.open("rep", MQ_OFlag::O_WRONLY);
    ready();
    let mut buf = [0u8; MSG_SIZE];
    loop {
        let len = mq_receive(&request, &mut buf, &mut 0).expect("mq_receive");
        if len == 0 {
            return;
        }
        mq_send(&reply, &buf[..len], 0).expect("mq_send");
    }
}

fn ready() {
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY")
        .and_then(|()| out.flush())
        .expect("say READY");
}

/// Two raw blocking queues, `<prefix>.req` and `<prefix>.rep`, msgsize 256, maxmsg 10;
/// the creator unlinks them on drop.
struct BareQueues {
    prefix: String,
    owned: bool,
}

impl BareQueues {
    fn create(prefix: &str) -> BareQueues {
        let queues = BareQueues {
            prefix: prefix.to_owned(),
            owned: true,
        };
        let attr = MqAttr::new(0, 10, MSG_SIZE as _, 0);
        for end in ["req", "rep"] {
            let name = queues.name(end);
            let _ = mq_unlink(name.as_str());
            let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
            let mqd = mq_open(
                name.as_str(),
                flags,
                Mode::S_IRUSR | Mode::S_IWUSR,
                Some(&attr),
            )
            .expect("create a bare queue");
            mq_close(mqd).expect("mq_close");
        }
        queues
    }

    fn name(&self, end: &str) -> String {
        format!("{}.{end}", self.prefix)
    }

    fn open(&self, end: &str, access: MQ_OFlag) -> MqdT {
        mq_open(
            self.name(end).as_str(),
            access | MQ_OFlag::O_CLOEXEC,
            Mode::empty(),
            None,
        )
        .expect("open a bare queue")
    }
}

impl Drop for BareQueues {
    fn drop(&mut self) {
        if self.owned {
            for end in ["req", "rep"] {
                let _ = mq_unlink(self.name(end).as_str());
            }
        }
    }
}
