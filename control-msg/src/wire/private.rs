//! The encoding of each kind's body. Bodies are fixed-size; the largest, `FrameMeta`, is
//! 44 bytes, far below [`MAX_BODY`].

use super::*;

/// Per-type encoding; private so only this module defines wire forms.
pub trait Wire: Sized {
    /// Writes the body and returns the kind code.
    fn write(&self, w: &mut Writer<'_>) -> Result<u8, EncodeError>;
    /// Reads the body of a message of kind `kind`.
    fn read(kind: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Appends little-endian fields after the header.
#[derive(Debug)]
pub struct Writer<'a> {
    pub(super) buf: &'a mut [u8; MSG_SIZE],
    pub(super) pos: usize,
}

impl Writer<'_> {
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        self.buf[self.pos..self.pos + N].copy_from_slice(&bytes);
        self.pos += N;
    }
    fn u8(&mut self, v: u8) {
        self.put([v]);
    }
    fn u32(&mut self, v: u32) {
        self.put(v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(v.to_le_bytes());
    }
    fn format(&mut self, f: &FrameFormat) {
        self.u32(f.width());
        self.u32(f.height());
        self.u32(f.pixel().code());
    }
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

/// Reads little-endian fields from a body. Reads past the end give zeros and are
/// reported by `finish`, so each kind's layout is written once, in its read order.
#[derive(Debug)]
pub struct Reader<'a> {
    pub(super) body: &'a [u8],
    pub(super) pos: usize,
    pub(super) kind: u8,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let field = self
            .body
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<N>())
            .copied()
            .unwrap_or([0; N]);
        self.pos += N;
        field
    }
    fn u8(&mut self) -> u8 {
        u8::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    /// The next `n` bytes (`None` past the end, which `finish` then reports).
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let field = self.body.get(self.pos..)?.get(..n);
        self.pos += n;
        field
    }
    /// The rest of the body, as the body of a message of kind `kind`.
    fn rest(&self, kind: u8) -> Reader<'_> {
        Reader {
            body: self.body.get(self.pos..).unwrap_or_default(),
            pos: 0,
            kind,
        }
    }
    fn raw_format(&mut self) -> RawFormat {
        RawFormat {
            width: self.u32(),
            height: self.u32(),
            pixel: self.u32(),
        }
    }
    /// Checks that the fields read so far are exactly the body.
    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.body.len() {
            Ok(())
        } else {
            Err(DecodeError::BodyLength {
                kind: self.kind,
                expected: self.pos,
                found: self.body.len(),
            })
        }
    }
}

/// A frame format as read, before validation.
struct RawFormat {
    width: u32,
    height: u32,
    pixel: u32,
}

impl RawFormat {
    fn validate(self) -> Result<FrameFormat, DecodeError> {
        let pixel = PixelFormat::from_code(self.pixel)
            .ok_or(DecodeError::UnknownPixelFormat { code: self.pixel })?;
        FrameFormat::new(self.width, self.height, pixel).map_err(DecodeError::Format)
    }
}

impl Wire for Command {
    fn write(&self, w: &mut Writer<'_>) -> Result<u8, EncodeError> {
        Ok(match *self {
            Command::Hello { seat, pid } => {
                w.u32(seat);
                w.u32(pid);
                kinds::HELLO
            }
            Command::Bye { seat } => {
                w.u32(seat);
                kinds::BYE
            }
            Command::SetFps { fps } => {
                if !valid_fps(fps) {
                    return Err(EncodeError::Fps { fps });
                }
                w.u64(fps.to_bits());
                kinds::SET_FPS
            }
            Command::SetFormat(ref format) => {
                w.format(format);
                kinds::SET_FORMAT
            }
            Command::SetPattern(pattern) => {
                w.u8(pattern.code());
                kinds::SET_PATTERN
            }
            Command::Pause => kinds::PAUSE,
            Command::Resume => kinds::RESUME,
            Command::Ping { nonce } => {
                w.u64(nonce);
                kinds::PING
            }
            Command::Shutdown => kinds::SHUTDOWN,
            Command::Request(ref request) => {
                let Request {
                    id,
                    reply,
                    ref command,
                } = **request;
                if matches!(command, Command::Request(_)) {
                    return Err(EncodeError::Field {
                        what: "a request inside a request",
                    });
                }
                let reply = u8::try_from(reply)
                    .ok()
                    .filter(|&r| u32::from(r) < REPLY_QUEUES)
                    .ok_or(EncodeError::Field {
                        what: "reply queue index out of range",
                    })?;
                w.u64(id);
                w.u8(reply);
                let kind_at = w.pos;
                w.u8(0);
                let inner = command.write(w)?;
                w.buf[kind_at] = inner;
                kinds::REQUEST
            }
        })
    }

    fn read(kind: u8, r: &mut Reader<'_>) -> Result<Command, DecodeError> {
        match kind {
            kinds::HELLO => {
                let seat = r.u32();
                let pid = r.u32();
                r.finish()?;
                Ok(Command::Hello { seat, pid })
            }
            kinds::BYE => {
                let seat = r.u32();
                r.finish()?;
                Ok(Command::Bye { seat })
            }
            kinds::SET_FPS => {
                let fps = f64::from_bits(r.u64());
                r.finish()?;
                if !valid_fps(fps) {
                    return Err(DecodeError::Fps { fps });
                }
                Ok(Command::SetFps { fps })
            }
            kinds::SET_FORMAT => {
                let format = r.raw_format();
                r.finish()?;
                Ok(Command::SetFormat(format.validate()?))
            }
            kinds::SET_PATTERN => {
                let code = r.u8();
                r.finish()?;
                let pattern =
                    PatternKind::from_code(code).ok_or(DecodeError::UnknownPattern { code })?;
                Ok(Command::SetPattern(pattern))
            }
            kinds::PAUSE => r.finish().map(|()| Command::Pause),
            kinds::RESUME => r.finish().map(|()| Command::Resume),
            kinds::PING => {
                let nonce = r.u64();
                r.finish()?;
                Ok(Command::Ping { nonce })
            }
            kinds::SHUTDOWN => r.finish().map(|()| Command::Shutdown),
            kinds::REQUEST => {
                let id = r.u64();
                let reply = r.u8();
                let inner = r.u8();
                if r.pos > r.body.len() {
                    return Err(DecodeError::BodyLength {
                        kind,
                        expected: r.pos,
                        found: r.body.len(),
                    });
                }
                if u32::from(reply) >= REPLY_QUEUES {
                    return Err(DecodeError::BadField {
                        kind,
                        field: "reply queue index",
                    });
                }
                if inner == kinds::REQUEST {
                    return Err(DecodeError::BadField {
                        kind,
                        field: "request inside a request",
                    });
                }
                let command = Command::read(inner, &mut r.rest(inner))?;
                Ok(Command::Request(Box::new(Request {
                    id,
                    reply: u32::from(reply),
                    command,
                })))
            }
            _ => Err(DecodeError::UnknownKind { kind }),
        }
    }
}

impl Wire for Event {
    fn write(&self, w: &mut Writer<'_>) -> Result<u8, EncodeError> {
        Ok(match *self {
            Event::FrameMeta {
                seq,
                slot,
                ref format,
                capture_ns,
                publish_ns,
                flags,
            } => {
                w.u64(seq);
                w.u32(slot);
                w.format(format);
                w.u64(capture_ns);
                w.u64(publish_ns);
                w.u32(flags);
                kinds::FRAME_META
            }
            Event::FormatChanged { epoch } => {
                w.u64(epoch);
                kinds::FORMAT_CHANGED
            }
            Event::Pong { nonce } => {
                w.u64(nonce);
                kinds::PONG
            }
            Event::Stopping => kinds::STOPPING,
            Event::Demoted { seq } => {
                w.u64(seq);
                kinds::DEMOTED
            }
            Event::Reply { id, ref outcome } => {
                w.u64(id);
                let (code, reason, epoch, format, detail) = match outcome {
                    Outcome::Done => (0, 0, 0, None, ""),
                    Outcome::FormatSet { epoch, format } => (1, 0, *epoch, Some(format), ""),
                    Outcome::Refused { reason, detail } => {
                        (2, reason.code(), 0, None, detail.as_str())
                    }
                };
                if detail.len() > MAX_DETAIL {
                    return Err(EncodeError::Field {
                        what: "refusal detail longer than MAX_DETAIL",
                    });
                }
                w.u8(code);
                w.u8(reason);
                w.u64(epoch);
                match format {
                    Some(format) => w.format(format),
                    None => {
                        w.u32(0);
                        w.u32(0);
                        w.u32(0);
                    }
                }
                // MAX_DETAIL < 256.
                w.u8(detail.len() as u8);
                w.bytes(detail.as_bytes());
                kinds::REPLY
            }
        })
    }

    fn read(kind: u8, r: &mut Reader<'_>) -> Result<Event, DecodeError> {
        match kind {
            kinds::FRAME_META => {
                let seq = r.u64();
                let slot = r.u32();
                let format = r.raw_format();
                let capture_ns = r.u64();
                let publish_ns = r.u64();
                let flags = r.u32();
                r.finish()?;
                Ok(Event::FrameMeta {
                    seq,
                    slot,
                    format: format.validate()?,
                    capture_ns,
                    publish_ns,
                    flags,
                })
            }
            kinds::FORMAT_CHANGED => {
                let epoch = r.u64();
                r.finish()?;
                Ok(Event::FormatChanged { epoch })
            }
            kinds::PONG => {
                let nonce = r.u64();
                r.finish()?;
                Ok(Event::Pong { nonce })
            }
            kinds::STOPPING => r.finish().map(|()| Event::Stopping),
            kinds::DEMOTED => {
                let seq = r.u64();
                r.finish()?;
                Ok(Event::Demoted { seq })
            }
            // Reserved, body not defined yet: rejected like any unknown kind.
            kinds::REPLY => {
                let id = r.u64();
                let code = r.u8();
                let reason = r.u8();
                let epoch = r.u64();
                let format = r.raw_format();
                let detail_len = usize::from(r.u8());
                let detail = r.bytes(detail_len).map(<[u8]>::to_vec);
                r.finish()?;
                let bad = |field| DecodeError::BadField { kind, field };
                let detail = detail.ok_or(bad("detail"))?;
                let zero_format = (format.width, format.height, format.pixel) == (0, 0, 0);
                let outcome = match code {
                    0 if reason == 0 && epoch == 0 && zero_format && detail.is_empty() => {
                        Outcome::Done
                    }
                    1 if reason == 0 && detail.is_empty() => Outcome::FormatSet {
                        epoch,
                        format: format.validate()?,
                    },
                    2 if epoch == 0 && zero_format => Outcome::Refused {
                        reason: Refusal::from_code(reason).ok_or(bad("refusal reason"))?,
                        detail: String::from_utf8(detail).map_err(|_| bad("detail"))?,
                    },
                    0..=2 => return Err(bad("fields for the outcome")),
                    _ => return Err(bad("outcome")),
                };
                Ok(Event::Reply { id, outcome })
            }
            _ => Err(DecodeError::UnknownKind { kind }),
        }
    }
}
