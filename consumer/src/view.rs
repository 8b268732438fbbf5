//! `consumer view`: the live stream in a minifb window (X11).
//!
//! Each frame is converted straight into the window's `u32` buffer (BGRA bytes are
//! minifb's `0RGB` on little-endian, so `bgra` is one copy; other formats go through
//! `frame_vocab::Converter`), with no allocation per frame; minifb scales the buffer to the
//! window. The producer paces the window (no frame-rate limit of minifb's own).
//!
//! Keys: space pauses (stops taking frames), `s` saves a PNG of the shown frame, `+`/`-`
//! ask the producer for another frame rate, `q`/Esc quit. While the producer is gone the
//! window dims, its title says "waiting for producer", and it follows the producer back
//! (also into a new format) for up to `--wait`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_msg::Command;
use frame_vocab::Converter;
use frame_vocab::{FrameFormat, PixelFormat};
use minifb::{InputCallback, Key, Scale, ScaleMode, Window, WindowOptions};

use crate::error::Error;
use crate::latency::Latency;
use crate::session::{End, OnStop, Outcome, Session};
use crate::snapshot::PngWriter;

/// How long one step of the follower may keep the window from handling events.
const FRAME_SLICE: Duration = Duration::from_millis(15);

/// How often the title (fps, latency) is refreshed.
const TITLE_EVERY: Duration = Duration::from_millis(500);

/// The largest window opened at start (the stream is scaled down to fit, keeping its
/// aspect ratio; the window can be resized).
const MAX_WINDOW: (usize, usize) = (1600, 900);

/// Frame rates `+` and `-` step through.
const FPS_STEPS: [f64; 12] = [
    1.0, 5.0, 10.0, 15.0, 24.0, 25.0, 30.0, 50.0, 60.0, 120.0, 240.0, 480.0,
];

/// What the viewer does besides showing frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewOptions {
    /// Where `s` writes snapshots.
    pub snapshot_dir: PathBuf,
    /// Close the window after this long (for measurements).
    pub duration: Option<Duration>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            snapshot_dir: PathBuf::from("."),
            duration: None,
        }
    }
}

/// What a viewing session did.
#[derive(Debug)]
pub struct Viewed {
    /// How it ended.
    pub end: End,
    /// Frames shown.
    pub frames: u64,
    /// How long the window was open.
    pub seconds: f64,
    /// Frames the viewer was too slow for (or paused through).
    pub skipped: u64,
    /// Moves to a new region (producer restarts, format changes).
    pub reopens: u64,
}

/// Fails with a clear error when there is no X display to open a window on.
pub fn check_display() -> Result<(), Error> {
    match std::env::var_os("DISPLAY") {
        Some(display) if !display.is_empty() => Ok(()),
        _ => Err(Error::NoDisplay {
            reason: "DISPLAY is not set".to_owned(),
        }),
    }
}

/// The window's pixels: the shown frame in minifb's `0RGB` layout.
#[derive(Debug)]
struct Screen {
    format: FrameFormat,
    pixels: Vec<u32>,
    converter: Converter,
}

impl Screen {
    fn new(format: FrameFormat) -> Screen {
        Screen {
            format,
            pixels: vec![0; pixel_count(format)],
            converter: Converter::new(),
        }
    }

    /// Draws one frame of `format` (reallocating only when the format changes).
    fn show(&mut self, format: FrameFormat, frame: &[u8]) -> Result<(), Error> {
        if format != self.format {
            self.format = format;
            self.pixels = vec![0; pixel_count(format)];
        }
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.pixels);
        self.converter
            .convert(format, frame, PixelFormat::Bgra, bytes)?;
        Ok(())
    }

    /// Halves every colour (the look of a stream that is not live).
    fn dim(&mut self) {
        for pixel in &mut self.pixels {
            *pixel = (*pixel >> 1) & 0x007f_7f7f;
        }
    }

    fn size(&self) -> (usize, usize) {
        (self.format.width() as usize, self.format.height() as usize)
    }

    /// The shown frame as BGRA bytes and its format.
    fn bgra(&self) -> (FrameFormat, &[u8]) {
        let format = self
            .format
            .with_pixel(PixelFormat::Bgra)
            .unwrap_or(self.format);
        (format, bytemuck::cast_slice(&self.pixels))
    }
}

fn pixel_count(format: FrameFormat) -> usize {
    format.width() as usize * format.height() as usize
}

/// The window size for a frame: the frame itself, scaled down to fit [`MAX_WINDOW`].
fn window_size(format: FrameFormat) -> (usize, usize) {
    let (w, h) = (format.width() as f64, format.height() as f64);
    let scale = (MAX_WINDOW.0 as f64 / w)
        .min(MAX_WINDOW.1 as f64 / h)
        .min(1.0);
    (
        ((w * scale).round() as usize).max(1),
        ((h * scale).round() as usize).max(1),
    )
}

/// What the user asked for with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Pause,
    Snapshot,
    Faster,
    Slower,
    Quit,
}

/// Every key press, in order, as minifb reports it: polling key state between two window
/// updates would miss a key pressed and released in between (a quick tap, or xdotool).
#[derive(Clone, Debug, Default)]
struct KeyLog(Rc<RefCell<VecDeque<Action>>>);

impl KeyLog {
    fn next(&self) -> Option<Action> {
        self.0.borrow_mut().pop_front()
    }
}

impl InputCallback for KeyLog {
    fn add_char(&mut self, c: u32) {
        // + and - as typed, whatever the layout or key (main row or keypad); = is + unshifted.
        let action = match char::from_u32(c) {
            Some('+' | '=') => Action::Faster,
            Some('-') => Action::Slower,
            _ => return,
        };
        self.0.borrow_mut().push_back(action);
    }

    fn set_key_state(&mut self, key: Key, down: bool) {
        let action = match key {
            _ if !down => return,
            Key::Space => Action::Pause,
            Key::S => Action::Snapshot,
            Key::Q | Key::Escape => Action::Quit,
            _ => return,
        };
        self.0.borrow_mut().push_back(action);
    }
}

/// Where the viewer is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Live,
    Waiting { since: Instant },
}

/// Counters of the title's current interval.
#[derive(Debug)]
struct Interval {
    started: Instant,
    frames: u64,
    latency: Latency,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            started: Instant::now(),
            frames: 0,
            latency: Latency::new(),
        }
    }

    fn restart(&mut self) {
        self.started = Instant::now();
        self.frames = 0;
        self.latency.reset();
    }
}

/// Opens the window and shows the stream until the user quits, `--duration` passes, the
/// producer is gone for longer than `--wait`, or `stop`.
pub fn run(
    session: &mut Session,
    options: &ViewOptions,
    stop: &AtomicBool,
) -> Result<Viewed, Error> {
    check_display()?;
    // A viewer is a monitor: a producer that stops may come back within --wait.
    session.on_stop(OnStop::Wait);
    let name = session.attach().stream.clone();
    let wait = session.attach().wait;
    let mut format = session.format();
    let (width, height) = window_size(format);
    let mut window = Window::new(
        &format!("framepipe {name}"),
        width,
        height,
        WindowOptions {
            resize: true,
            scale: Scale::X1,
            scale_mode: ScaleMode::AspectRatioStretch,
            ..WindowOptions::default()
        },
    )
    .map_err(|e| Error::NoDisplay {
        reason: format!("cannot open a window: {e}"),
    })?;
    // The producer paces the window: no frame-rate limit of minifb's own.
    window.set_target_fps(0);
    let keys = KeyLog::default();
    window.set_input_callback(Box::new(keys.clone()));
    tracing::info!(stream = %name, %format, width, height, "window open");

    let start = Instant::now();
    let mut screen = Screen::new(format);
    let mut png = PngWriter::new();
    let mut phase = Phase::Live;
    let mut paused = false;
    let mut last_seq = 0u64;
    let mut shown = 0u64;
    let mut fps_target: Option<f64> = None;
    let mut interval = Interval::new();
    let mut title_due = Instant::now();
    let mut fps = 0.0;

    let end = loop {
        if stop.load(Ordering::Relaxed) {
            break End::Interrupted;
        }
        if !window.is_open() {
            break End::Done;
        }
        if options.duration.is_some_and(|d| start.elapsed() >= d) {
            break End::Done;
        }
        let mut quit = false;
        while let Some(action) = keys.next() {
            match action {
                Action::Quit => quit = true,
                Action::Pause => {
                    paused = !paused;
                    tracing::info!(paused, "pause toggled");
                    title_due = Instant::now();
                }
                Action::Snapshot => {
                    let path = options.snapshot_dir.join(format!("{name}-{last_seq}.png"));
                    let (bgra, bytes) = screen.bgra();
                    match png.save(&path, bgra, bytes) {
                        Ok(()) => tracing::info!(path = %path.display(), "snapshot saved"),
                        Err(error) => {
                            tracing::warn!(error = %format!("{error:#}"), "snapshot failed")
                        }
                    }
                }
                Action::Faster | Action::Slower => {
                    // The rate asked for last, else the measured one (before the first
                    // title update: the average since the window opened).
                    let measured = if fps > 0.0 {
                        fps
                    } else {
                        shown as f64 / start.elapsed().as_secs_f64().max(1e-3)
                    };
                    let next = step_fps(fps_target.unwrap_or(measured), action == Action::Faster);
                    if session.send(&Command::SetFps { fps: next }) {
                        tracing::info!(fps = next, "asked the producer for a new frame rate");
                        fps_target = Some(next);
                    } else {
                        tracing::warn!("cannot reach the producer's command queue");
                    }
                }
            }
        }
        if quit {
            break End::Done;
        }

        if paused && phase == Phase::Live {
            update(&mut window, &screen)?;
            // Nothing to wait for while paused but the user: poll the keys at ~100 Hz.
            std::thread::sleep(Duration::from_millis(10));
        } else {
            match session.step(FRAME_SLICE, stop)? {
                Outcome::Frame(frame) => {
                    let info = frame.info();
                    screen.show(format, &frame)?;
                    drop(frame);
                    interval.latency.record_span(info.publish_ns, info.taken_ns);
                    interval.frames += 1;
                    shown += 1;
                    last_seq = info.seq;
                }
                Outcome::Idle | Outcome::Waiting => {}
                Outcome::Lost(_) | Outcome::Corrupt(_) => {
                    // The follower reattaches from here on, within --wait.
                    phase = Phase::Waiting {
                        since: Instant::now(),
                    };
                    screen.dim();
                    title_due = Instant::now();
                }
                Outcome::Reattached { new, .. } => {
                    phase = Phase::Live;
                    format = new;
                    title_due = Instant::now();
                }
                Outcome::End(end) => break end,
            }
            update(&mut window, &screen)?;
        }

        if Instant::now() >= title_due {
            let elapsed = interval.started.elapsed().as_secs_f64();
            if elapsed > 0.0 && interval.frames > 0 {
                fps = interval.frames as f64 / elapsed;
            } else if phase != Phase::Live || paused {
                fps = 0.0;
            }
            let title = Title {
                stream: name.as_str(),
                format,
                phase,
                paused,
                fps,
                latency: &interval.latency,
                skipped: session.stats().skipped,
                wait,
            };
            window.set_title(&title.to_string());
            interval.restart();
            title_due = Instant::now() + TITLE_EVERY;
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let stats = session.stats();
    Ok(Viewed {
        end,
        frames: shown,
        seconds,
        skipped: stats.skipped,
        reopens: stats.reopens,
    })
}

/// Shows the screen's pixels (minifb scales them to the window) and handles events.
fn update(window: &mut Window, screen: &Screen) -> Result<(), Error> {
    let (width, height) = screen.size();
    window
        .update_with_buffer(&screen.pixels, width, height)
        .map_err(Error::Window)
}

/// The next frame rate up or down the steps from `current` (a measured rate, or 0 when
/// unknown). A measured rate is noisy (a 30 fps stream reads 28 to 32 over half a second),
/// so a step within 10% of it counts as the current one.
fn step_fps(current: f64, up: bool) -> f64 {
    let first = FPS_STEPS[0];
    let last = FPS_STEPS[FPS_STEPS.len() - 1];
    if up {
        FPS_STEPS
            .into_iter()
            .find(|&step| step > current * 1.1)
            .unwrap_or(last)
    } else {
        FPS_STEPS
            .into_iter()
            .rev()
            .find(|&step| step < current / 1.1)
            .unwrap_or(first)
    }
}

/// The window title: stream, format, fps, latency p50/p99, skipped (or the waiting state).
struct Title<'a> {
    stream: &'a str,
    format: FrameFormat,
    phase: Phase,
    paused: bool,
    fps: f64,
    latency: &'a Latency,
    skipped: u64,
    wait: Duration,
}

impl std::fmt::Display for Title<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Plain ASCII: X11 window names are Latin-1.
        write!(f, "framepipe {} | {}", self.stream, self.format)?;
        if let Phase::Waiting { since, .. } = self.phase {
            let left = self.wait.saturating_sub(since.elapsed());
            return write!(
                f,
                " | waiting for producer ({:.0} s left)",
                left.as_secs_f64().ceil()
            );
        }
        if self.paused {
            f.write_str(" | paused")?;
        }
        write!(f, " | {:.1} fps | latency", self.fps)?;
        match (
            self.latency.quantile_us(0.5),
            self.latency.quantile_us(0.99),
        ) {
            (Some(p50), Some(p99)) => write!(f, " p50 {} p99 {}", Ms(p50), Ms(p99))?,
            _ => f.write_str(" -")?,
        }
        write!(f, " | skipped {}", self.skipped)
    }
}

/// Microseconds written as milliseconds.
struct Ms(f64);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} ms", self.0 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_steps() {
        assert_eq!(step_fps(59.9, true), 120.0);
        assert_eq!(step_fps(60.0, false), 50.0);
        assert_eq!(step_fps(0.0, true), 1.0);
        assert_eq!(step_fps(0.0, false), 1.0);
        assert_eq!(step_fps(3000.0, true), 480.0);
        assert_eq!(step_fps(3000.0, false), 480.0);
        assert_eq!(step_fps(27.0, false), 24.0);
        assert_eq!(step_fps(28.0, true), 50.0);
        assert_eq!(step_fps(32.0, true), 50.0);
        assert_eq!(step_fps(32.0, false), 25.0);
    }

    #[test]
    fn windows_fit_and_keep_the_aspect() {
        let f = |w, h| FrameFormat::new(w, h, PixelFormat::Bgra).unwrap();
        assert_eq!(window_size(f(640, 480)), (640, 480));
        assert_eq!(window_size(f(3840, 2160)), (1600, 900));
        assert_eq!(window_size(f(1920, 1080)), (1600, 900));
        assert_eq!(window_size(f(2000, 100)), (1600, 80));
    }

    #[test]
    fn screen_converts_any_format_to_0rgb() {
        let bgra = FrameFormat::new(2, 2, PixelFormat::Bgra).unwrap();
        let mut screen = Screen::new(bgra);
        screen
            .show(bgra, &[1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 10, 11, 12, 0])
            .unwrap();
        assert_eq!(screen.pixels, [0x030201, 0x060504, 0x090807, 0x0c0b0a]);
        let rgb = FrameFormat::new(2, 1, PixelFormat::Rgb24).unwrap();
        screen
            .show(rgb, &[0x10, 0x20, 0x30, 0x40, 0x50, 0x60])
            .unwrap();
        assert_eq!(screen.size(), (2, 1));
        assert_eq!(
            screen
                .pixels
                .iter()
                .map(|p| p & 0xff_ffff)
                .collect::<Vec<_>>(),
            [0x102030, 0x405060]
        );
        screen.dim();
        assert_eq!(screen.pixels[0] & 0xff_ffff, 0x081018);
    }

    #[test]
    fn title_says_what_is_going_on() {
        let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
        let mut latency = Latency::new();
        latency.record_span(0, 250_000);
        let mut title = Title {
            stream: "cam0",
            format,
            phase: Phase::Live,
            paused: false,
            fps: 59.94,
            latency: &latency,
            skipped: 3,
            wait: Duration::from_secs(5),
        };
        let live = title.to_string();
        assert_eq!(
            live,
            "framepipe cam0 | 64x48 bgra | 59.9 fps | latency p50 0.25 ms p99 0.25 ms | skipped 3"
        );
        title.phase = Phase::Waiting {
            since: Instant::now(),
        };
        assert!(
            title
                .to_string()
                .contains("waiting for producer (5 s left)")
        );
    }
}
