//! `consumer list` and `consumer info`: the streams on this machine and one stream in
//! detail, read with shm-frames' [`peek`] (read-only, header only, no lock, no seat) and
//! the queues' `mq_getattr` (nothing received), so looking never disturbs a stream.

use std::fmt::{self, Write as _};

use frame_vocab::StreamName;
use serde_json::{Value, json};
use shm_frames::{Health, Hold, PeekError, Peeked, RegionView, SeatStatus, own_streams, peek};

/// Why `list` or `info` could not look.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// /dev/shm could not be listed.
    #[error("cannot list /dev/shm")]
    List(#[source] std::io::Error),
    /// The stream could not be looked at (absent, another user's, a failed call).
    #[error(transparent)]
    Peek(#[from] PeekError),
}

impl InspectError {
    /// Whether the error means "no such stream" (exit code 3).
    pub fn is_no_producer(&self) -> bool {
        matches!(self, InspectError::Peek(PeekError::NoStream { .. }))
    }
}

/// One stream as `list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The stream.
    pub name: StreamName,
    /// What was found under it.
    pub peeked: Peeked,
}

/// Every stream of this user on the machine, each looked at once. A stream that vanishes
/// between the directory listing and the look is left out.
pub fn list() -> Result<Vec<Listed>, InspectError> {
    let names = own_streams().map_err(InspectError::List)?;
    let mut listed = Vec::with_capacity(names.len());
    for name in names {
        match peek(&name) {
            Ok(peeked) => listed.push(Listed { name, peeked }),
            Err(PeekError::NoStream { .. }) => {}
            Err(e) => listed.push(Listed {
                peeked: Peeked::Unusable {
                    reason: e.to_string(),
                    size: 0,
                    producer_alive: false,
                },
                name,
            }),
        }
    }
    Ok(listed)
}

fn state_word(peeked: &Peeked) -> &'static str {
    match peeked {
        Peeked::Region(view) => view.health().as_str(),
        Peeked::Unusable {
            producer_alive: true,
            ..
        } => "starting",
        Peeked::Unusable { .. } => "garbage",
    }
}

fn ms(duration: Option<std::time::Duration>) -> Option<u64> {
    duration.map(|d| d.as_millis() as u64)
}

impl Listed {
    /// One JSON object.
    pub fn to_json(&self) -> Value {
        match &self.peeked {
            Peeked::Region(view) => json!({
                "name": self.name.to_string(),
                "state": state_word(&self.peeked),
                "format": view.format.to_string(),
                "producer_pid": view.producer_pid,
                "epoch": view.epoch,
                "seats_used": view.seats_used(),
                "seats": view.seats,
                "heartbeat_age_ms": ms(view.heartbeat_age),
                "published": view.published,
                "skipped": view.skipped_no_slot,
                "fps": view.measured_fps,
            }),
            Peeked::Unusable {
                reason,
                size,
                producer_alive,
            } => json!({
                "name": self.name.to_string(),
                "state": state_word(&self.peeked),
                "reason": reason,
                "size": size,
                "producer_alive": producer_alive,
            }),
        }
    }
}

/// `list`'s human table (header line included; "no streams" when empty).
pub fn list_table(listed: &[Listed]) -> String {
    if listed.is_empty() {
        return "no streams of this user (start one with `producer`)\n".to_owned();
    }
    let mut out = format!(
        "{:<20} {:<9} {:<16} {:>8} {:>5} {:>6} {:>9} {:>10} {:>8} {:>7}\n",
        "NAME",
        "STATE",
        "FORMAT",
        "PID",
        "EPOCH",
        "SEATS",
        "HEARTBEAT",
        "PUBLISHED",
        "SKIPPED",
        "FPS"
    );
    for item in listed {
        let name = item.name.to_string();
        let state = state_word(&item.peeked);
        let _ = match &item.peeked {
            Peeked::Region(view) => writeln!(
                out,
                "{:<20} {:<9} {:<16} {:>8} {:>5} {:>6} {:>9} {:>10} {:>8} {:>7}",
                name,
                state,
                view.format.to_string(),
                view.producer_pid,
                view.epoch,
                format!("{}/{}", view.seats_used(), view.seats),
                match ms(view.heartbeat_age) {
                    Some(ms) => format!("{ms} ms"),
                    None => "future".to_owned(),
                },
                view.published,
                view.skipped_no_slot,
                match view.measured_fps {
                    Some(fps) => format!("{fps:.1}"),
                    None => "-".to_owned(),
                }
            ),
            Peeked::Unusable { reason, .. } => writeln!(out, "{name:<20} {state:<9} {reason}"),
        };
    }
    out
}

/// One stream in detail, for `info`.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    /// The stream.
    pub name: StreamName,
    /// What was found.
    pub peeked: Peeked,
    /// Each seat's event queue depth (queued, capacity), where the queue could be opened.
    pub queue_depths: Vec<Option<(u64, u64)>>,
}

/// Looks at stream `name` in detail.
pub fn info(name: &StreamName) -> Result<Info, InspectError> {
    let peeked = peek(name)?;
    let queue_depths = match &peeked {
        Peeked::Region(view) => (0..view.seats)
            .map(|seat| control_msg::queue_depth(name, &name.event_queue_name(seat)).ok())
            .collect(),
        Peeked::Unusable { .. } => Vec::new(),
    };
    Ok(Info {
        name: name.clone(),
        peeked,
        queue_depths,
    })
}

fn hold_json(hold: Hold) -> Value {
    match hold {
        Hold::Nothing => Value::Null,
        Hold::Slot(slot) => json!(slot),
        Hold::Garbage(value) => json!(format!("garbage {value:#x}")),
    }
}

impl Info {
    /// One JSON object.
    pub fn to_json(&self) -> Value {
        let Peeked::Region(view) = &self.peeked else {
            return Listed {
                name: self.name.clone(),
                peeked: self.peeked.clone(),
            }
            .to_json();
        };
        let seats: Vec<Value> = view
            .seat_views
            .iter()
            .map(|seat| {
                let depth = self.queue_depths.get(seat.seat as usize).copied().flatten();
                json!({
                    "seat": seat.seat,
                    "state": seat.status.as_str(),
                    "pid": seat.pid,
                    "generation": seat.generation,
                    "alive": seat.locked,
                    "hold": hold_json(seat.hold),
                    "delivery": seat.delivery.as_str(),
                    "queue_depth": depth.map(|d| d.0),
                    "queue_capacity": depth.map(|d| d.1),
                })
            })
            .collect();
        let slots: Vec<Value> = view
            .slot_views
            .iter()
            .map(|slot| json!({"seq": slot.seq, "capture_ns": slot.capture_ns, "publish_ns": slot.publish_ns}))
            .collect();
        json!({
            "name": self.name.to_string(),
            "object": self.name.shm_name(),
            "state": view.health().as_str(),
            "producer_pid": view.producer_pid,
            "producer_alive": view.producer_alive,
            "epoch": view.epoch,
            "source": view.source,
            "nominal_fps": view.nominal_fps,
            "no_backpressure": view.no_backpressure,
            "fps": view.measured_fps,
            "heartbeat_age_ms": ms(view.heartbeat_age),
            "published": view.published,
            "skipped": view.skipped_no_slot,
            "latest_seq": view.latest_seq,
            "layout": {
                "version": view.layout_version,
                "header_size": view.header_size,
                "total_size": view.total_size,
                "width": view.format.width(),
                "height": view.format.height(),
                "stride": view.format.stride(),
                "pixel_format": view.format.pixel().name(),
                "frame_bytes": view.format.frame_bytes(),
                "slot_count": view.slots,
                "seat_count": view.seats,
                "slot_offset": view.slot_offset,
                "slot_stride": view.slot_stride,
            },
            "seats": seats,
            "slots": slots,
        })
    }
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view: &RegionView = match &self.peeked {
            Peeked::Region(view) => view,
            Peeked::Unusable {
                reason,
                size,
                producer_alive,
            } => {
                return writeln!(
                    f,
                    "stream {}: {} object of {size} bytes, not usable: {reason}{}",
                    self.name,
                    if *producer_alive {
                        "a starting"
                    } else {
                        "a garbage"
                    },
                    if *producer_alive {
                        ""
                    } else {
                        " (the next producer of the name replaces it)"
                    }
                );
            }
        };
        writeln!(f, "Stream {} ({})", self.name, self.name.shm_name())?;
        writeln!(
            f,
            "  State          : {}{}",
            view.health().as_str(),
            if view.health() == Health::Leftover {
                " (its producer is gone; the next producer of the name replaces it)"
            } else {
                ""
            }
        )?;
        writeln!(f, "  Producer pid   : {}", view.producer_pid)?;
        writeln!(f, "  Epoch          : {}", view.epoch)?;
        writeln!(f, "  Source         : {}", view.source)?;
        writeln!(
            f,
            "  Nominal fps    : {}",
            if view.nominal_fps > 0.0 {
                format!("{}", view.nominal_fps)
            } else {
                "as fast as the source gives".to_owned()
            }
        )?;
        writeln!(
            f,
            "  Measured fps   : {}",
            view.measured_fps
                .map_or("-".to_owned(), |fps| format!("{fps:.1}"))
        )?;
        writeln!(
            f,
            "  Heartbeat age  : {}",
            ms(view.heartbeat_age).map_or("in the future (garbage)".to_owned(), |ms| format!(
                "{ms} ms"
            ))
        )?;
        writeln!(
            f,
            "  Published      : {} (latest seq {}), skipped for want of a slot: {}",
            view.published,
            view.latest_seq.map_or("-".to_owned(), |s| s.to_string()),
            view.skipped_no_slot
        )?;
        writeln!(
            f,
            "  Backpressure   : {}",
            if view.no_backpressure {
                "refused (--no-backpressure)"
            } else {
                "allowed"
            }
        )?;
        writeln!(f, "Format")?;
        writeln!(
            f,
            "  Width/Height   : {}/{}",
            view.format.width(),
            view.format.height()
        )?;
        writeln!(f, "  Pixel format   : {}", view.format.pixel().name())?;
        writeln!(f, "  Stride         : {}", view.format.stride())?;
        writeln!(f, "  Frame bytes    : {}", view.format.frame_bytes())?;
        writeln!(f, "Layout")?;
        writeln!(f, "  Version        : {}", view.layout_version)?;
        writeln!(f, "  Header size    : {}", view.header_size)?;
        writeln!(f, "  Total size     : {}", view.total_size)?;
        writeln!(
            f,
            "  Slots          : {} (offset {}, stride {})",
            view.slots, view.slot_offset, view.slot_stride
        )?;
        writeln!(
            f,
            "  Seats          : {} ({} used)",
            view.seats,
            view.seats_used()
        )?;
        for seat in &view.seat_views {
            let depth = self.queue_depths.get(seat.seat as usize).copied().flatten();
            if seat.status == SeatStatus::Free {
                writeln!(f, "  Seat {:<2}        : free", seat.seat)?;
                continue;
            }
            writeln!(
                f,
                "  Seat {:<2}        : {} pid {}{}, holds {}, delivery {}, queue {}",
                seat.seat,
                seat.status.as_str(),
                seat.pid,
                if seat.locked { "" } else { " (dead)" },
                match seat.hold {
                    Hold::Nothing => "nothing".to_owned(),
                    Hold::Slot(slot) => format!("slot {slot}"),
                    Hold::Garbage(v) => format!("garbage {v:#x}"),
                },
                seat.delivery.as_str(),
                depth.map_or("-".to_owned(), |(n, max)| format!("{n}/{max}")),
            )?;
        }
        Ok(())
    }
}
