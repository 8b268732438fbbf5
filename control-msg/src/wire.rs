//! The wire format: pure `encode`/`decode` between typed messages and at most [`MSG_SIZE`]
//! bytes.
//!
//! Layout, all little-endian:
//!
//! ```text
//! offset  size  field
//! 0       4     magic        b"FPcm"
//! 4       1     version      1
//! 5       1     kind         commands 0x01..=0x7f, events 0x80..=0xff
//! 6       2     body length  bytes of body that follow the header
//! 8       n     body         the kind's fields, fixed layout, no padding
//! 8+n     4     CRC32        (IEEE, crc32fast) of header and body
//! ```
//!
//! `decode` trusts nothing: it checks the length, magic, version, the stated body length
//! against the bytes received, the checksum, the kind, the kind's exact body length and
//! every field's range, in that order, and reads each field with `from_le_bytes`.
//!
//! # Adding a kind
//!
//! Give it the next free code on its side (`0x0b` for a command, `0x86` for an event), a
//! fixed body layout, an arm in `write` and in `read`, and keep [`VERSION`] as it is. An
//! old peer that receives the new kind gets [`DecodeError::UnknownKind`], counts it and
//! reads on, so old and new peers keep working together. Never change an existing kind's
//! code or body: to extend one, add a new kind. Bump [`VERSION`] only when the header or
//! the checksum change; peers reject other versions with
//! [`DecodeError::UnsupportedVersion`].
//!
//! # Requests and replies
//!
//! `Request` (`0x0a`) wraps any other command: `id u64, reply u8, kind u8`, then that
//! kind's own body, so every existing command can be asked for an answer without a new
//! layout. A request inside a request is refused ([`DecodeError::BadField`]). `Reply`
//! (`0x84`) is `id u64, outcome u8, reason u8, epoch u64, width u32, height u32, pixel u32,
//! detail length u8`, then that many bytes of UTF-8 detail: outcome 0 (done) has every
//! other field 0, 1 (format set) a valid epoch and format, 2 (refused) a reason code and
//! the detail; anything else is refused.

use frame_vocab::{FormatError, FrameFormat, PixelFormat};

use crate::message::{Command, Event, MAX_FPS, valid_fps};
use crate::reply::{MAX_DETAIL, Outcome, REPLY_QUEUES, Refusal, Request};
use frame_vocab::pattern::PatternKind;

/// The largest encoded message, and the queues' `msgsize`.
pub const MSG_SIZE: usize = 256;
/// The first four bytes of every message.
pub const MAGIC: u32 = u32::from_le_bytes(*b"FPcm");
/// The wire version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before the body: magic, version, kind, body length.
pub const HEADER_LEN: usize = 8;
/// Bytes of the trailing CRC32.
pub const CRC_LEN: usize = 4;
/// The largest body that fits in [`MSG_SIZE`].
pub const MAX_BODY: usize = MSG_SIZE - HEADER_LEN - CRC_LEN;

/// Message kind codes. Commands live in `0x01..=0x7f`, events in `0x80..=0xff`; a code is
/// never reused or changed.
mod kinds {
    pub const HELLO: u8 = 0x01;
    pub const BYE: u8 = 0x02;
    pub const SET_FPS: u8 = 0x03;
    pub const SET_FORMAT: u8 = 0x04;
    pub const SET_PATTERN: u8 = 0x05;
    pub const PAUSE: u8 = 0x06;
    pub const RESUME: u8 = 0x07;
    pub const PING: u8 = 0x08;
    pub const SHUTDOWN: u8 = 0x09;
    pub const REQUEST: u8 = 0x0a;

    pub const FRAME_META: u8 = 0x80;
    pub const FORMAT_CHANGED: u8 = 0x81;
    pub const PONG: u8 = 0x82;
    pub const STOPPING: u8 = 0x83;
    /// `Demoted`: an every-frame seat was dropped back to newest-frame delivery.
    pub const DEMOTED: u8 = 0x85;

    /// `Reply`: answers a request by id (done, or refused with a reason).
    pub const REPLY: u8 = 0x84;
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// `SetFps` carries a rate that is not finite or not within `0..=MAX_FPS`.
    #[error("frame rate {fps} is out of range (finite, 0 to {MAX_FPS})")]
    Fps {
        /// The rejected rate.
        fps: f64,
    },
    /// A request or reply field the wire cannot carry: a request inside a request, a
    /// reply queue index `>= REPLY_QUEUES`, a detail longer than `MAX_DETAIL`.
    #[error("cannot encode: {what}")]
    Field {
        /// What is wrong.
        what: &'static str,
    },
}

/// Why received bytes are not a valid message. Each variant is counted separately by the
/// receiving queue (see [`Rejected`](crate::Rejected)).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes.
    #[error("empty message")]
    Empty,
    /// Fewer bytes than the header and checksum, or than the header's body length states.
    #[error("truncated message: {len} bytes, needs {needed}")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes the message needs.
        needed: usize,
    },
    /// More than [`MSG_SIZE`] bytes.
    #[error("message of {len} bytes is longer than the maximum of {MSG_SIZE}")]
    TooLong {
        /// Bytes received.
        len: usize,
    },
    /// More bytes than the header's body length states.
    #[error("{len} bytes received for a {expected}-byte message")]
    TrailingBytes {
        /// Bytes received.
        len: usize,
        /// Bytes the header states.
        expected: usize,
    },
    /// The first four bytes are not [`MAGIC`].
    #[error("bad magic {found:#010x} (expected {MAGIC:#010x})")]
    BadMagic {
        /// The magic received.
        found: u32,
    },
    /// A wire version this side does not speak (typically a newer peer).
    #[error("unsupported wire version {found} (this side speaks {VERSION})")]
    UnsupportedVersion {
        /// The version received.
        found: u8,
    },
    /// The CRC32 does not match the header and body.
    #[error("bad checksum: message states {stated:#010x}, bytes give {computed:#010x}")]
    BadChecksum {
        /// The CRC32 in the message.
        stated: u32,
        /// The CRC32 of the received header and body.
        computed: u32,
    },
    /// A kind this side does not know (a newer peer's, or one meant for the other queue).
    #[error("unknown message kind {kind:#04x}")]
    UnknownKind {
        /// The kind code received.
        kind: u8,
    },
    /// A known kind with a body of the wrong length.
    #[error("message kind {kind:#04x} has a {found}-byte body, expected {expected}")]
    BodyLength {
        /// The kind code.
        kind: u8,
        /// The kind's body length.
        expected: usize,
        /// The body length received.
        found: usize,
    },
    /// Width and height do not make a valid frame format (zero, absurd or odd).
    #[error("invalid frame format")]
    Format(#[source] FormatError),
    /// A pixel format code this side does not know.
    #[error("unknown pixel format code {code}")]
    UnknownPixelFormat {
        /// The code received.
        code: u32,
    },
    /// A pattern code this side does not know.
    #[error("unknown pattern code {code}")]
    UnknownPattern {
        /// The code received.
        code: u8,
    },
    /// A frame rate that is not finite or not within `0..=MAX_FPS`.
    #[error("frame rate {fps} is out of range (finite, 0 to {MAX_FPS})")]
    Fps {
        /// The rate received.
        fps: f64,
    },
    /// A request or reply field out of range: a nested request, a reply queue index
    /// `>= REPLY_QUEUES`, an unknown outcome or refusal code, fields a reply's outcome
    /// must leave 0, a detail that is not UTF-8.
    #[error("message kind {kind:#04x}: bad {field}")]
    BadField {
        /// The kind code.
        kind: u8,
        /// The field.
        field: &'static str,
    },
}

/// A message type with a wire form: [`Command`] or [`Event`]. Sealed: the wire format is
/// this module's alone.
pub trait Message: private::Wire + Clone + std::fmt::Debug + PartialEq {}

impl Message for Command {}
impl Message for Event {}

/// Encodes `msg` into the front of `buf` and returns how many bytes it took. Allocates
/// nothing; the bytes past the returned length are left as they were.
pub fn encode<M: Message>(msg: &M, buf: &mut [u8; MSG_SIZE]) -> Result<usize, EncodeError> {
    let mut w = private::Writer {
        buf,
        pos: HEADER_LEN,
    };
    let kind = msg.write(&mut w)?;
    let body_len = w.pos - HEADER_LEN;
    Ok(seal(buf, kind, body_len))
}

/// Decodes one message from exactly `bytes`.
pub fn decode<M: Message>(bytes: &[u8]) -> Result<M, DecodeError> {
    let len = bytes.len();
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    if len > MSG_SIZE {
        return Err(DecodeError::TooLong { len });
    }
    let header: &[u8; HEADER_LEN] = match bytes.first_chunk() {
        Some(header) if len >= HEADER_LEN + CRC_LEN => header,
        _ => {
            return Err(DecodeError::Truncated {
                len,
                needed: HEADER_LEN + CRC_LEN,
            });
        }
    };
    let [m0, m1, m2, m3, version, kind, b0, b1] = *header;
    let magic = u32::from_le_bytes([m0, m1, m2, m3]);
    if magic != MAGIC {
        return Err(DecodeError::BadMagic { found: magic });
    }
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version });
    }
    let body_len = usize::from(u16::from_le_bytes([b0, b1]));
    let expected = HEADER_LEN + body_len + CRC_LEN;
    if len < expected {
        return Err(DecodeError::Truncated {
            len,
            needed: expected,
        });
    }
    if len > expected {
        return Err(DecodeError::TrailingBytes { len, expected });
    }
    let (covered, crc) = bytes.split_at(HEADER_LEN + body_len);
    let stated = match <[u8; CRC_LEN]>::try_from(crc) {
        Ok(crc) => u32::from_le_bytes(crc),
        Err(_) => {
            return Err(DecodeError::Truncated {
                len,
                needed: expected,
            });
        }
    };
    let computed = crc32fast::hash(covered);
    if stated != computed {
        return Err(DecodeError::BadChecksum { stated, computed });
    }
    let mut r = private::Reader {
        body: covered.get(HEADER_LEN..).unwrap_or_default(),
        pos: 0,
        kind,
    };
    M::read(kind, &mut r)
}

/// Writes the header for a `body_len`-byte body already in `buf[HEADER_LEN..]`, then the
/// checksum; returns the message's total length.
pub(crate) fn seal(buf: &mut [u8; MSG_SIZE], kind: u8, body_len: usize) -> usize {
    debug_assert!(body_len <= MAX_BODY, "body of {body_len} bytes");
    let body_len = body_len.min(MAX_BODY);
    buf[..4].copy_from_slice(&MAGIC.to_le_bytes());
    buf[4] = VERSION;
    buf[5] = kind;
    // MAX_BODY < 256, so the length fits in u16.
    buf[6..8].copy_from_slice(&(body_len as u16).to_le_bytes());
    let end = HEADER_LEN + body_len;
    let crc = crc32fast::hash(&buf[..end]);
    buf[end..end + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    end + CRC_LEN
}

/// The encoding of each kind's body. Bodies are fixed-size; the largest, `FrameMeta`, is
/// 44 bytes, far below [`MAX_BODY`].
mod private;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn format() -> impl Strategy<Value = FrameFormat> {
        let pixel = prop::sample::select(PixelFormat::ALL.to_vec());
        (
            1..=frame_vocab::MAX_DIMENSION,
            1..=frame_vocab::MAX_DIMENSION,
            pixel,
        )
            .prop_map(|(w, h, pixel)| {
                // Round odd sizes down to even (at least 2) so every pixel format accepts them.
                let even = |v: u32| (v & !1).max(2);
                FrameFormat::new(even(w), even(h), pixel).expect("even sizes are valid")
            })
    }

    fn fps() -> impl Strategy<Value = f64> {
        prop_oneof![Just(0.0), Just(MAX_FPS), 0.0..=MAX_FPS]
    }

    fn plain_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            (any::<u32>(), any::<u32>()).prop_map(|(seat, pid)| Command::Hello { seat, pid }),
            any::<u32>().prop_map(|seat| Command::Bye { seat }),
            fps().prop_map(|fps| Command::SetFps { fps }),
            format().prop_map(Command::SetFormat),
            prop::sample::select(PatternKind::ALL.to_vec()).prop_map(Command::SetPattern),
            Just(Command::Pause),
            Just(Command::Resume),
            any::<u64>().prop_map(|nonce| Command::Ping { nonce }),
            Just(Command::Shutdown),
        ]
    }

    /// Every plain command, and each of them as a request.
    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            plain_command(),
            (any::<u64>(), 0..REPLY_QUEUES, plain_command()).prop_map(|(id, reply, command)| {
                Command::Request(Box::new(Request { id, reply, command }))
            }),
        ]
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Done),
            (any::<u64>(), format())
                .prop_map(|(epoch, format)| Outcome::FormatSet { epoch, format }),
            (prop::sample::select(Refusal::ALL.to_vec()), "\\PC{0,40}")
                .prop_map(|(reason, detail)| Outcome::refused(reason, detail)),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (
                any::<u64>(),
                any::<u32>(),
                format(),
                any::<u64>(),
                any::<u64>(),
                any::<u32>()
            )
                .prop_map(|(seq, slot, format, capture_ns, publish_ns, flags)| {
                    Event::FrameMeta {
                        seq,
                        slot,
                        format,
                        capture_ns,
                        publish_ns,
                        flags,
                    }
                }),
            any::<u64>().prop_map(|epoch| Event::FormatChanged { epoch }),
            any::<u64>().prop_map(|nonce| Event::Pong { nonce }),
            Just(Event::Stopping),
            any::<u64>().prop_map(|seq| Event::Demoted { seq }),
            (any::<u64>(), outcome()).prop_map(|(id, outcome)| Event::Reply { id, outcome }),
        ]
    }

    fn encoded<M: Message>(msg: &M) -> Vec<u8> {
        let mut buf = [0; MSG_SIZE];
        let len = encode(msg, &mut buf).expect("valid message");
        buf[..len].to_vec()
    }

    /// A message of any kind code and body, with a correct header and checksum, so decoding
    /// reaches the kind and field checks.
    fn sealed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut buf = [0; MSG_SIZE];
        buf[HEADER_LEN..HEADER_LEN + body.len()].copy_from_slice(body);
        let len = seal(&mut buf, kind, body.len());
        buf[..len].to_vec()
    }

    /// Decoding never panics, and whatever decodes re-encodes to the same bytes (the
    /// encoding is canonical, so nothing is silently lost or reinterpreted).
    fn check_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(cmd) = decode::<Command>(bytes) {
            prop_assert_eq!(encoded(&cmd), bytes);
        }
        if let Ok(event) = decode::<Event>(bytes) {
            prop_assert_eq!(encoded(&event), bytes);
        }
        Ok(())
    }

    /// Every single-byte corruption (each position, each nonzero xor) is rejected.
    fn check_corruptions<M: Message>(bytes: &[u8]) -> Result<(), TestCaseError> {
        let mut copy = bytes.to_vec();
        for pos in 0..bytes.len() {
            for flip in 1..=255u8 {
                copy[pos] = bytes[pos] ^ flip;
                let decoded = decode::<M>(&copy);
                prop_assert!(
                    decoded.is_err(),
                    "byte {} ^ {:#04x}: {:?}",
                    pos,
                    flip,
                    decoded
                );
            }
            copy[pos] = bytes[pos];
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn commands_round_trip(cmd in command()) {
            let bytes = encoded(&cmd);
            prop_assert!(bytes.len() <= MSG_SIZE);
            prop_assert_eq!(decode::<Command>(&bytes), Ok(cmd));
            let other = decode::<Event>(&bytes);
            prop_assert!(matches!(other, Err(DecodeError::UnknownKind { .. })), "{:?}", other);
        }

        #[test]
        fn events_round_trip(event in event()) {
            let bytes = encoded(&event);
            prop_assert!(bytes.len() <= MSG_SIZE);
            prop_assert_eq!(decode::<Event>(&bytes), Ok(event));
            let other = decode::<Command>(&bytes);
            prop_assert!(matches!(other, Err(DecodeError::UnknownKind { .. })), "{:?}", other);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=300)) {
            check_canonical(&bytes)?;
        }

        #[test]
        fn arbitrary_sealed_bodies_never_panic(
            kind in any::<u8>(),
            body in prop::collection::vec(any::<u8>(), 0..=MAX_BODY),
        ) {
            check_canonical(&sealed(kind, &body))?;
        }
    }

    proptest! {
        // Each case decodes 255 corruptions of every byte: keep the case count modest.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn corrupted_commands_are_rejected(cmd in command()) {
            check_corruptions::<Command>(&encoded(&cmd))?;
        }

        #[test]
        fn corrupted_events_are_rejected(event in event()) {
            check_corruptions::<Event>(&encoded(&event))?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000_000))]

        /// The long fuzz run (`cargo test --release -- --ignored`).
        #[test]
        #[ignore = "a million cases; run in release with --ignored"]
        fn million_arbitrary_inputs_never_panic(
            raw in prop::collection::vec(any::<u8>(), 0..=300),
            kind in any::<u8>(),
            body in prop::collection::vec(any::<u8>(), 0..=64),
        ) {
            check_canonical(&raw)?;
            check_canonical(&sealed(kind, &body))?;
        }
    }

    #[test]
    fn every_kind_fits_and_survives_every_corruption() {
        let format = FrameFormat::new(
            frame_vocab::MAX_DIMENSION,
            frame_vocab::MAX_DIMENSION,
            PixelFormat::I420,
        )
        .expect("valid format");
        let commands = [
            Command::Hello { seat: 1, pid: 2 },
            Command::Bye { seat: 3 },
            Command::SetFps { fps: 29.97 },
            Command::SetFormat(format),
            Command::SetPattern(PatternKind::Bars),
            Command::Pause,
            Command::Resume,
            Command::Ping { nonce: u64::MAX },
            Command::Shutdown,
            Command::Request(Box::new(Request {
                id: u64::MAX,
                reply: REPLY_QUEUES - 1,
                command: Command::SetFormat(format),
            })),
        ];
        let events = [
            Event::FrameMeta {
                seq: u64::MAX,
                slot: u32::MAX,
                format,
                capture_ns: 1,
                publish_ns: 2,
                flags: 0xffff_ffff,
            },
            Event::FormatChanged { epoch: 7 },
            Event::Pong { nonce: 0 },
            Event::Stopping,
            Event::Demoted { seq: u64::MAX },
            Event::Reply {
                id: 1,
                outcome: Outcome::FormatSet { epoch: 9, format },
            },
            Event::Reply {
                id: 2,
                outcome: Outcome::refused(Refusal::Unsupported, "é".repeat(MAX_DETAIL)),
            },
        ];
        for cmd in &commands {
            let bytes = encoded(cmd);
            assert_eq!(decode::<Command>(&bytes).as_ref(), Ok(cmd));
            check_corruptions::<Command>(&bytes).unwrap();
        }
        for event in &events {
            let bytes = encoded(event);
            assert_eq!(decode::<Event>(&bytes).as_ref(), Ok(event));
            check_corruptions::<Event>(&bytes).unwrap();
        }
        assert_eq!(encoded(&events[0]).len(), HEADER_LEN + 44 + CRC_LEN);
    }

    /// The wire format is a contract between processes built at different times: these
    /// bytes must not change.
    #[test]
    fn golden_bytes() {
        let bytes = encoded(&Command::Ping {
            nonce: 0x0807_0605_0403_0201,
        });
        let mut expected = vec![
            b'F', b'P', b'c', b'm', 1, 0x08, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        expected.extend_from_slice(&crc32fast::hash(&expected).to_le_bytes());
        assert_eq!(bytes, expected);

        let bytes = encoded(&Event::Stopping);
        assert_eq!(
            &bytes[..HEADER_LEN],
            [b'F', b'P', b'c', b'm', 1, 0x83, 0, 0]
        );
        assert_eq!(bytes.len(), HEADER_LEN + CRC_LEN);
    }

    #[test]
    fn framing_errors() {
        let good = encoded(&Command::Ping { nonce: 5 });
        assert_eq!(decode::<Command>(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode::<Command>(&good[..5]),
            Err(DecodeError::Truncated { len: 5, needed: 12 })
        );
        assert_eq!(
            decode::<Command>(&good[..good.len() - 1]),
            Err(DecodeError::Truncated {
                len: good.len() - 1,
                needed: good.len()
            })
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            decode::<Command>(&long),
            Err(DecodeError::TrailingBytes {
                len: good.len() + 1,
                expected: good.len()
            })
        );
        assert_eq!(
            decode::<Command>(&[0; MSG_SIZE + 1]),
            Err(DecodeError::TooLong { len: MSG_SIZE + 1 })
        );
        assert_eq!(
            decode::<Command>(&[0; 12]),
            Err(DecodeError::BadMagic { found: 0 })
        );

        // A future version is refused before its (possibly different) layout is read.
        let mut future = good.clone();
        future[4] = VERSION + 1;
        assert_eq!(
            decode::<Command>(&future),
            Err(DecodeError::UnsupportedVersion { found: VERSION + 1 })
        );

        let mut flipped = good.clone();
        flipped[HEADER_LEN] ^= 1;
        assert!(matches!(
            decode::<Command>(&flipped),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn kind_errors() {
        // A kind added later by a newer peer (same version) is a typed, countable error.
        assert_eq!(
            decode::<Command>(&sealed(0x0b, &[])),
            Err(DecodeError::UnknownKind { kind: 0x0b })
        );
        assert_eq!(
            decode::<Event>(&sealed(0x86, &[1, 2, 3])),
            Err(DecodeError::UnknownKind { kind: 0x86 })
        );
        assert_eq!(
            decode::<Command>(&sealed(kinds::PING, &[0; 7])),
            Err(DecodeError::BodyLength {
                kind: kinds::PING,
                expected: 8,
                found: 7
            })
        );
        assert_eq!(
            decode::<Command>(&sealed(kinds::PAUSE, &[0])),
            Err(DecodeError::BodyLength {
                kind: kinds::PAUSE,
                expected: 0,
                found: 1
            })
        );
    }

    #[test]
    fn requests_and_replies_refuse_what_they_cannot_carry() {
        let nested = Command::Request(Box::new(Request {
            id: 1,
            reply: 0,
            command: Command::Request(Box::new(Request {
                id: 2,
                reply: 0,
                command: Command::Pause,
            })),
        }));
        let mut buf = [0; MSG_SIZE];
        assert!(matches!(
            encode(&nested, &mut buf),
            Err(EncodeError::Field { .. })
        ));
        let far = Command::Request(Box::new(Request {
            id: 1,
            reply: REPLY_QUEUES,
            command: Command::Pause,
        }));
        assert!(matches!(
            encode(&far, &mut buf),
            Err(EncodeError::Field { .. })
        ));
        // id, reply 0, inner kind REQUEST, and another request header.
        let mut body = 1u64.to_le_bytes().to_vec();
        body.extend([0, kinds::REQUEST]);
        body.extend(2u64.to_le_bytes());
        body.extend([0, kinds::PAUSE]);
        assert!(matches!(
            decode::<Command>(&sealed(kinds::REQUEST, &body)),
            Err(DecodeError::BadField { .. })
        ));
        let mut body = 1u64.to_le_bytes().to_vec();
        body.extend([REPLY_QUEUES as u8, kinds::PAUSE]);
        assert!(matches!(
            decode::<Command>(&sealed(kinds::REQUEST, &body)),
            Err(DecodeError::BadField { .. })
        ));
        // A request header cut short.
        assert!(matches!(
            decode::<Command>(&sealed(kinds::REQUEST, &[1, 2, 3])),
            Err(DecodeError::BodyLength { .. })
        ));
        // A reply: done with a stray epoch, an unknown outcome, an unknown reason, a
        // detail that is not UTF-8 or longer than stated.
        let reply = |code: u8, reason: u8, epoch: u64, detail: &[u8], stated: u8| {
            let mut body = 7u64.to_le_bytes().to_vec();
            body.extend([code, reason]);
            body.extend(epoch.to_le_bytes());
            body.extend([0; 12]);
            body.push(stated);
            body.extend(detail);
            sealed(kinds::REPLY, &body)
        };
        assert_eq!(
            decode::<Event>(&reply(0, 0, 0, b"", 0)),
            Ok(Event::Reply {
                id: 7,
                outcome: Outcome::Done
            })
        );
        for bad in [
            reply(0, 0, 5, b"", 0),
            reply(3, 0, 0, b"", 0),
            reply(2, 99, 0, b"", 0),
            reply(2, 1, 0, &[0xff, 0xfe], 2),
            reply(2, 1, 0, b"ab", 3),
        ] {
            assert!(
                matches!(
                    decode::<Event>(&bad),
                    Err(DecodeError::BadField { .. } | DecodeError::BodyLength { .. })
                ),
                "{:?}",
                decode::<Event>(&bad)
            );
        }
        // A format-set reply with a garbage format.
        let mut body = 7u64.to_le_bytes().to_vec();
        body.extend([1, 0]);
        body.extend(3u64.to_le_bytes());
        body.extend(format_body(99_999, 1, 1));
        body.push(0);
        assert!(matches!(
            decode::<Event>(&sealed(kinds::REPLY, &body)),
            Err(DecodeError::Format(_))
        ));
    }

    #[test]
    fn value_errors() {
        let set_format =
            |w, h, p| decode::<Command>(&sealed(kinds::SET_FORMAT, &format_body(w, h, p)));
        assert!(matches!(
            set_format(0, 480, PixelFormat::Bgra.code()),
            Err(DecodeError::Format(frame_vocab::FormatError::Zero { .. }))
        ));
        assert!(matches!(
            set_format(640, u32::MAX, PixelFormat::Bgra.code()),
            Err(DecodeError::Format(
                frame_vocab::FormatError::TooLarge { .. }
            ))
        ));
        assert!(matches!(
            set_format(641, 480, PixelFormat::I420.code()),
            Err(DecodeError::Format(frame_vocab::FormatError::Odd { .. }))
        ));
        assert_eq!(
            set_format(640, 480, 0),
            Err(DecodeError::UnknownPixelFormat { code: 0 })
        );
        assert_eq!(
            set_format(640, 480, 99),
            Err(DecodeError::UnknownPixelFormat { code: 99 })
        );
        assert_eq!(
            set_format(640, 480, PixelFormat::Yuyv.code()),
            Ok(Command::SetFormat(
                FrameFormat::new(640, 480, PixelFormat::Yuyv).unwrap()
            ))
        );

        let mut meta = vec![0; 12];
        meta.extend(format_body(0, 0, 1));
        meta.extend([0; 20]);
        assert!(matches!(
            decode::<Event>(&sealed(kinds::FRAME_META, &meta)),
            Err(DecodeError::Format(_))
        ));

        assert_eq!(
            decode::<Command>(&sealed(kinds::SET_PATTERN, &[0])),
            Err(DecodeError::UnknownPattern { code: 0 })
        );
        assert_eq!(
            decode::<Command>(&sealed(kinds::SET_PATTERN, &[3])),
            Err(DecodeError::UnknownPattern { code: 3 })
        );

        let set_fps =
            |fps: f64| decode::<Command>(&sealed(kinds::SET_FPS, &fps.to_bits().to_le_bytes()));
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            MAX_FPS + 1.0,
        ] {
            assert!(
                matches!(set_fps(bad), Err(DecodeError::Fps { .. })),
                "{bad}"
            );
        }
        assert_eq!(set_fps(0.0), Ok(Command::SetFps { fps: 0.0 }));
        assert_eq!(set_fps(MAX_FPS), Ok(Command::SetFps { fps: MAX_FPS }));
    }

    #[test]
    fn encode_refuses_bad_fps() {
        let mut buf = [0; MSG_SIZE];
        for bad in [f64::NAN, f64::INFINITY, -0.5, MAX_FPS * 2.0] {
            assert!(matches!(
                encode(&Command::SetFps { fps: bad }, &mut buf),
                Err(EncodeError::Fps { .. })
            ));
        }
    }

    fn format_body(width: u32, height: u32, pixel: u32) -> Vec<u8> {
        [width, height, pixel]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }
}
