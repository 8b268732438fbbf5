//! Fan-out: N consumer processes (Block strategy) on the seats of one 1920x1080 stream,
//! the producer publishing every [`PERIOD`]. Each consumer's handoff percentiles, the
//! last-woken consumer's per frame, and the producer's CPU time per frame
//! (`CLOCK_PROCESS_CPUTIME_ID` over its publishing loop, heartbeat thread included).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use frame_vocab::{Deadline, StreamName, StreamOwner};
use nix::time::{ClockId, clock_gettime};
use shm_frames::{WaitError, WaitStrategy};

use crate::child::{Args, Child, say};
use crate::error::{MeasureError, Result, errno, lib};
use crate::measure::{Latency, PERIOD, Pacer, Recorder, WARM_UP_SAMPLES};
use crate::shm::{
    FRAME_TIMEOUT, Heartbeat, UnlinkOnDrop, create_writer, open_reader, unique_stream,
};
use crate::size::FANOUT_SIZE;

/// The consumer counts measured.
pub const CONSUMERS: [u32; 4] = [1, 2, 4, 8];

/// One fan-out run.
#[derive(Clone, Debug, PartialEq)]
pub struct Fanout {
    /// Consumers (= seats).
    pub consumers: u32,
    /// Each consumer's handoff percentiles.
    pub each: Vec<Latency>,
    /// Per frame, the slowest consumer's handoff (the last one woken).
    pub last_woken: Latency,
    /// Producer CPU time per published frame, ns.
    pub producer_cpu_ns: f64,
}

/// Runs `consumers` consumer processes on `consumer_cpu` and a producer on `producer_cpu`
/// for `frames` frames.
pub fn run(
    consumers: u32,
    frames: usize,
    producer_cpu: usize,
    consumer_cpu: usize,
) -> Result<Fanout> {
    let stream = unique_stream()?;
    let _name = UnlinkOnDrop::region(&stream);
    let total = frames + WARM_UP_SAMPLES;
    let producer = Child::spawn(
        "fanout-producer",
        &[
            ("stream", stream.as_str().to_owned()),
            ("seats", consumers.to_string()),
            ("frames", total.to_string()),
        ],
        producer_cpu,
    )?;
    let readers = (0..consumers)
        .map(|_| {
            Child::spawn(
                "fanout-consumer",
                &[("stream", stream.as_str().to_owned())],
                consumer_cpu,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let run_time = PERIOD * total as u32 + Duration::from_secs(30);
    let cpu_line = producer.line(run_time)?;
    let producer_cpu_ns = parse_cpu(&cpu_line)?;
    let mut per_frame: BTreeMap<u64, u64> = BTreeMap::new();
    let mut each = Vec::new();
    for reader in &readers {
        let mut recorder = Recorder::default();
        loop {
            let line = reader.line(Duration::from_secs(30))?;
            if line == "END" {
                break;
            }
            let (seq, ns) = parse_frame(&line)?;
            if seq as usize > WARM_UP_SAMPLES {
                recorder.record(ns);
                let slowest = per_frame.entry(seq).or_insert(0);
                *slowest = (*slowest).max(ns);
            }
        }
        each.push(recorder.latency().ok_or_else(|| {
            MeasureError::Data(format!("a consumer of {consumers} took no frame"))
        })?);
    }
    let mut last = Recorder::default();
    per_frame.values().for_each(|&ns| last.record(ns));
    Ok(Fanout {
        consumers,
        each,
        last_woken: last.latency().expect("frames were taken"),
        producer_cpu_ns,
    })
}

fn parse_cpu(line: &str) -> Result<f64> {
    let mut words = line.split_whitespace();
    match (
        words.next(),
        words.next().and_then(|w| w.parse::<f64>().ok()),
    ) {
        (Some("CPU"), Some(ns)) => Ok(ns),
        _ => Err(MeasureError::Data(format!("producer said {line:?}"))),
    }
}

fn parse_frame(line: &str) -> Result<(u64, u64)> {
    let bad = || MeasureError::Data(format!("consumer said {line:?}"));
    let mut words = line.split_whitespace();
    if words.next() != Some("F") {
        return Err(bad());
    }
    let seq = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let ns = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    Ok((seq, ns))
}

fn process_cpu_ns() -> Result<u64> {
    let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).map_err(errno("clock_gettime"))?;
    Ok(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// The producer child: waits for every seat to be live, publishes `frames` frames (the
/// first 8 bytes written), says `CPU <ns per frame>`, and stops the stream.
pub fn producer_role(args: &Args) -> Result<()> {
    let stream = StreamName::new(args.get("stream")?).map_err(lib("stream name"))?;
    let seats: u32 = args.parse_of("seats")?;
    let frames: u64 = args.parse_of("frames")?;
    let owner = StreamOwner::claim(&stream).map_err(lib("claim the stream"))?;
    let mut writer = create_writer(&owner, FANOUT_SIZE, seats)?;
    let supervisor = writer.supervisor();
    let heartbeat = Heartbeat::start(supervisor.clone());
    say("READY")?;
    let deadline = Deadline::after(Duration::from_secs(60));
    while supervisor.seats().iter().filter(|s| s.live).count() < seats as usize {
        if deadline.expired() {
            return Err(MeasureError::Timeout(format!("{seats} live seats")));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut pacer = Pacer::new(PERIOD);
    let cpu_start = process_cpu_ns()?;
    let mut published = 0u64;
    while published < frames {
        pacer.wait();
        if let Some(mut slot) = writer.slot() {
            let seq = slot.seq();
            slot[..8].copy_from_slice(&seq.to_le_bytes());
            slot.publish(None);
            published += 1;
        }
    }
    let cpu = process_cpu_ns()? - cpu_start;
    // Let the last frame be taken before the stream stops.
    pacer.wait();
    say(&format!("CPU {}", cpu as f64 / frames as f64))?;
    drop(heartbeat);
    drop(writer);
    Ok(())
}

/// A consumer child: prints `F <seq> <handoff ns>` per frame until the stream stops, then
/// `END`.
pub fn consumer_role(args: &Args) -> Result<()> {
    let stream = StreamName::new(args.get("stream")?).map_err(lib("stream name"))?;
    let mut reader = open_reader(&stream, WaitStrategy::Block)?;
    say("READY")?;
    let mut lines = Vec::new();
    loop {
        match reader.wait_frame(FRAME_TIMEOUT) {
            Ok(frame) => {
                let info = frame.info();
                drop(frame);
                lines.push((info.seq, info.taken_ns.saturating_sub(info.publish_ns)));
            }
            Err(WaitError::Stopped | WaitError::ProducerGone) => break,
            Err(e) => return Err(lib("wait for a frame")(e)),
        }
    }
    // Printed after the run, so the consumers' output does not load the measured run.
    for (seq, ns) in lines {
        say(&format!("F {seq} {ns}"))?;
    }
    say("END")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_lines_parse_and_garbage_is_an_error() {
        assert_eq!(parse_frame("F 12 34567").unwrap(), (12, 34567));
        assert!(parse_frame("F 12").is_err());
        assert!(parse_frame("X 1 2").is_err());
        assert_eq!(parse_cpu("CPU 1234.5").unwrap(), 1234.5);
        assert!(parse_cpu("READY").is_err());
    }
}
