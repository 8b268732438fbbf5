//! The two plots (plotters, bitmap backend): handoff p50 and GB/s against frame size,
//! log-log, one line per mechanism, with the memory-bandwidth ceiling drawn.
#![forbid(unsafe_code)]

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{MeasureError, Result, sys};
use crate::matrix::{MECHANISMS, Results};
use crate::size::SIZES;

/// Where a TrueType font is looked for (plotters draws text with it); the first found wins.
/// `FRAMEPIPE_REPORT_FONT` overrides.
pub const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(23, 190, 207),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

/// Registers the first font found as "sans-serif" (once per process).
pub fn load_font() -> Result<()> {
    static DONE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let env = std::env::var("FRAMEPIPE_REPORT_FONT").ok();
        let path = env
            .iter()
            .map(String::as_str)
            .chain(FONT_PATHS)
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| {
                "no TrueType font for the plots: install fonts-dejavu-core or set FRAMEPIPE_REPORT_FONT".to_owned()
            })?;
        let bytes = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
        register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
            .map_err(|_| format!("{path} is not a usable font"))
    })
    .clone()
    .map_err(MeasureError::Data)
}

fn plot_error(e: impl std::fmt::Display) -> MeasureError {
    MeasureError::Data(format!("plot: {e}"))
}

/// A log-log chart of `series` (label, points) into `path`, with a dashed `reference` line.
fn chart(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    reference: (&str, Vec<(f64, f64)>),
) -> Result<()> {
    load_font()?;
    let all = series.iter().flat_map(|(_, p)| p).chain(&reference.1);
    let (lo, hi) = all.fold((f64::INFINITY, 0f64), |(lo, hi), &(_, y)| {
        (lo.min(y), hi.max(y))
    });
    if !(lo.is_finite() && hi > 0.0) {
        return Err(MeasureError::Data(format!("plot {title}: nothing to draw")));
    }
    let x_range = (SIZES[0].bytes() as f64 / 2.0)..(SIZES[SIZES.len() - 1].bytes() as f64 * 2.0);
    let y_range = (lo.max(1e-6) / 2.0)..(hi * 2.0);
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("frame size, bytes (BGRA: 64 B, 4 KiB, 64 KiB, 640x480 … 3840x2160)")
        .y_desc(y_label)
        .x_label_formatter(&|x| human_bytes(*x))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(plot_error)?;
    for (i, (label, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(3),
            ))
            .map_err(plot_error)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(plot_error)?;
    }
    let dashed = dashes(&reference.1);
    chart
        .draw_series(
            dashed
                .into_iter()
                .map(|seg| PathElement::new(seg, BLACK.stroke_width(2))),
        )
        .map_err(plot_error)?
        .label(reference.0)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

/// Short segments along a log-log polyline: a dashed line.
fn dashes(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let steps = 12;
        for k in (0..steps).step_by(2) {
            let at = |t: f64| {
                let lx = x0.ln() + (x1.ln() - x0.ln()) * t;
                let ly = y0.ln() + (y1.ln() - y0.ln()) * t;
                (lx.exp(), ly.exp())
            };
            out.push(vec![
                at(k as f64 / steps as f64),
                at((k + 1) as f64 / steps as f64),
            ]);
        }
    }
    out
}

fn human_bytes(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.0} MB", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} kB", x / 1e3)
    } else {
        format!("{x:.0} B")
    }
}

/// Writes `latency.png` and `throughput.png` into `dir`.
pub fn write_plots(results: &Results, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(sys(format!("create {}", dir.display())))?;
    let per_mechanism = |value: &dyn Fn(&crate::matrix::Cell) -> f64| {
        MECHANISMS
            .iter()
            .map(|m| {
                let points = SIZES
                    .iter()
                    .filter_map(|s| results.cell(*m, *s))
                    .map(|c| (c.size.bytes() as f64, value(c)))
                    .collect();
                (m.label().to_owned(), points)
            })
            .collect::<Vec<_>>()
    };
    let ceiling: Vec<(f64, f64, f64)> = results
        .ceiling
        .iter()
        .map(|(s, r)| {
            (
                s.bytes() as f64,
                r.gbps(),
                s.bytes() as f64 / (r.gbps() * 1e3),
            )
        })
        .collect();
    chart(
        &dir.join("latency.png"),
        "Handoff latency p50 (one frame every 5 ms)",
        "publish/write → fully available, µs",
        &per_mechanism(&|c| c.latency.p50_ns as f64 / 1e3),
        (
            "one private write of the frame at the ceiling's rate",
            ceiling.iter().map(|&(x, _, us)| (x, us)).collect(),
        ),
    )?;
    chart(
        &dir.join("throughput.png"),
        "Throughput, every byte written and read (flat out)",
        "GB/s",
        &per_mechanism(&|c| c.rate.gbps()),
        (
            "ceiling: one core writing a private buffer",
            ceiling.iter().map(|&(x, gbps, _)| (x, gbps)).collect(),
        ),
    )
}
