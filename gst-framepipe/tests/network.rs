//! "Leaving the machine": frames cross between two network namespaces that the test makes
//! (a veth pair, addresses only inside them) through GStreamer's own network elements,
//! never a framepipe protocol. Host A: `producer` → `framepipesrc ! rtpvrawpay ! udpsink`.
//! Host B: `udpsrc ! rtpvrawdepay ! framepipesink` makes a second stream (the namespaces
//! share /dev/shm, hence two names), read here by a seat of our own.
//!
//! Raw RTP frames are checked with the pattern's own stamp (`decode_seq` + `verify`), not
//! against the far region's seq, which renumbers. Where namespaces cannot be made (not
//! root, no `ip`), the tests say so and skip; they never use any other address.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use frame_vocab::{decode_seq, verify};
use shm_frames::WaitError;

/// Addresses of the two test hosts, from TEST-NET-1 (RFC 5737: never routed), and only
/// ever configured inside the namespaces below.
const ADDR_A: &str = "192.0.2.1";
const ADDR_B: &str = "192.0.2.2";
const PORT: &str = "5004";

/// Two network namespaces joined by a veth pair; both deleted on drop (the veth pair goes
/// with them).
struct Hosts {
    a: String,
    b: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Hosts {
    /// Makes the namespaces, or says why it cannot.
    fn make() -> Result<Hosts, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let hosts = Hosts {
            a: format!("fpA{tag}"),
            b: format!("fpB{tag}"),
        };
        ip(&["netns", "add", &hosts.a])?;
        ip(&["netns", "add", &hosts.b])?;
        let (veth_a, veth_b) = (format!("fva{tag}"), format!("fvb{tag}"));
        ip(&[
            "link", "add", &veth_a, "netns", &hosts.a, "type", "veth", "peer", "name", &veth_b,
            "netns", &hosts.b,
        ])?;
        for (ns, dev, addr) in [(&hosts.a, &veth_a, ADDR_A), (&hosts.b, &veth_b, ADDR_B)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    /// `cmd` run inside namespace `ns`.
    fn exec(ns: &str, cmd: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped.args(["netns", "exec", ns]).arg(cmd.get_program());
        wrapped.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                wrapped.env(key, value);
            }
        }
        wrapped
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn hosts_or_skip() -> Option<Hosts> {
    match Hosts::make() {
        Ok(hosts) => Some(hosts),
        Err(why) => {
            eprintln!("SKIPPED: cannot make network namespaces ({why})");
            None
        }
    }
}

/// Host A's side: the producer's moving pattern, sent by `sender` (a gst-launch pipeline
/// after `framepipesrc`).
fn host_a(hosts: &Hosts, near: &TestStream, sender: &[&str]) -> (Child, Child) {
    let producer = Child::spawn(
        Hosts::exec(
            &hosts.a,
            &framepipe(
                "producer",
                &[
                    "--stream",
                    near.as_str(),
                    "--size",
                    "320x240",
                    "--fps",
                    "30",
                ],
            ),
        ),
        None,
    );
    producer.expect("ready:", HANG);
    let src = format!("stream={}", near.as_str());
    let mut args = vec!["framepipesrc", &src, "!"];
    args.extend_from_slice(sender);
    let pipeline = Child::spawn(Hosts::exec(&hosts.a, &gst_launch(&args)), None);
    (producer, pipeline)
}

#[test]
fn raw_rtp_between_two_hosts_arrives_verified() {
    let Some(hosts) = hosts_or_skip() else {
        return;
    };
    let (near, far) = (TestStream::new("rtn"), TestStream::new("rtf"));
    let far_sink = format!("stream={}", far.as_str());
    let port = format!("port={PORT}");
    let _receiver = Child::spawn(
        Hosts::exec(
            &hosts.b,
            &gst_launch(&[
                "udpsrc",
                &port,
                "buffer-size=16777216",
                "caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=RAW,\
                 sampling=BGRA,depth=(string)8,width=(string)320,height=(string)240,\
                 colorimetry=(string)SMPTE240M,payload=96",
                "!",
                "rtpvrawdepay",
                "!",
                "framepipesink",
                &far_sink,
            ]),
        ),
        None,
    );
    let host = format!("host={ADDR_B}");
    let (_producer, _sender) = host_a(&hosts, &near, &["rtpvrawpay", "!", "udpsink", &host, &port]);

    let mut reader = reader(&far);
    let (mut verified, mut damaged, mut last_seq) = (0u32, 0u32, 0u64);
    while verified < 60 {
        // The stamp the frame carries and whether the whole frame matches it; `None`
        // after a move to a new region.
        let checked = match reader.wait_frame(HANG) {
            Ok(frame) => {
                let format = frame.format();
                Some(decode_seq(format, &frame).map(|seq| (seq, verify(format, &frame, seq))))
            }
            Err(WaitError::Replaced) => None,
            Err(e) => panic!("far stream: {e}"),
        };
        match checked {
            None => reader.reopen(HANG).unwrap(),
            Some(Some((seq, Ok(())))) => {
                assert!(seq > last_seq, "stamp {seq} after {last_seq}: out of order");
                last_seq = seq;
                verified += 1;
            }
            // A frame with lost packets: damaged, not torn (the far region is whole).
            Some(_) => damaged += 1,
        }
    }
    eprintln!("{verified} frames verified by their own stamp, {damaged} damaged in transit");
}

#[test]
fn vp8_over_rtp_between_two_hosts_arrives_and_decodes() {
    let Some(hosts) = hosts_or_skip() else {
        return;
    };
    let (near, far) = (TestStream::new("vpn"), TestStream::new("vpf"));
    let far_sink = format!("stream={}", far.as_str());
    let port = format!("port={PORT}");
    let _receiver = Child::spawn(
        Hosts::exec(
            &hosts.b,
            &gst_launch(&[
                "udpsrc",
                &port,
                "caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96",
                "!",
                "rtpvp8depay",
                "!",
                "vp8dec",
                "!",
                "videoconvert",
                "!",
                "video/x-raw,format=BGRx",
                "!",
                "framepipesink",
                &far_sink,
            ]),
        ),
        None,
    );
    let host = format!("host={ADDR_B}");
    let (_producer, _sender) = host_a(
        &hosts,
        &near,
        &[
            "videoconvert",
            "!",
            "vp8enc",
            "deadline=1",
            "keyframe-max-dist=10",
            "!",
            "rtpvp8pay",
            "!",
            "udpsink",
            &host,
            &port,
        ],
    );

    // Lossy: the pixel stamp is ignored; frames must arrive, decoded, at the right size.
    let mut reader = reader(&far);
    let mut frames = 0;
    while frames < 30 {
        let size = match reader.wait_frame(HANG) {
            Ok(frame) => Some((frame.format().width(), frame.format().height())),
            Err(WaitError::Replaced) => None,
            Err(e) => panic!("far stream: {e}"),
        };
        match size {
            Some(size) => {
                assert_eq!(size, (320, 240));
                frames += 1;
            }
            None => reader.reopen(HANG).unwrap(),
        }
    }
    eprintln!("{frames} VP8 frames decoded on host B");
}
