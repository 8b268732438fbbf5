//! The report, as pure functions of the [`Results`]: the tables, the crossover sizes, the
//! seed table's six rows with their evidence and verdicts, the four targets, the
//! whole REPORT.md, and the completeness check CI runs on it.
#![forbid(unsafe_code)]

use crate::complexity::Counts;
use crate::matrix::{MECHANISMS, Mechanism, Results};
use crate::measure::PERIOD;
use crate::roundtrip::ROUND_TRIPS;
use crate::size::{SIZES, Size};
use crate::wake::{PRIMITIVES, Primitive};

mod verdict;

pub use verdict::{SeedRow, Target, Verdict, seed_rows, targets};

/// A markdown table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    /// The table in GitHub markdown.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        out.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// µs with a precision that suits the value.
pub fn us(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn three(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// One mechanism across every size.
pub fn mechanism_table(results: &Results, mechanism: Mechanism) -> Table {
    let mut t = Table::new(&[
        "size",
        "bytes",
        "handoff p50 µs",
        "handoff p99 µs",
        "samples",
        "GB/s",
        "max frames/s",
    ]);
    for size in SIZES {
        let Some(c) = results.cell(mechanism, size) else {
            continue;
        };
        t.push(vec![
            size.label.to_owned(),
            size.bytes().to_string(),
            us(c.latency.p50_ns),
            us(c.latency.p99_ns),
            c.latency.samples.to_string(),
            three(c.rate.gbps()),
            format!("{:.0}", c.rate.fps()),
        ]);
    }
    t
}

/// Handoff p50 of every mechanism (columns) at every size (rows).
pub fn p50_overview(results: &Results) -> Table {
    let mut header = vec!["size"];
    header.extend(MECHANISMS.iter().map(|m| m.label()));
    let mut t = Table::new(&header);
    for size in SIZES {
        let mut row = vec![size.label.to_owned()];
        for m in MECHANISMS {
            row.push(
                results
                    .cell(m, size)
                    .map(|c| us(c.latency.p50_ns))
                    .unwrap_or_default(),
            );
        }
        t.push(row);
    }
    t
}

/// GB/s of every mechanism beside the private-write ceiling, at every size.
pub fn gbps_overview(results: &Results) -> Table {
    let mut header = vec!["size", "ceiling: private writes"];
    header.extend(MECHANISMS.iter().map(|m| m.label()));
    let mut t = Table::new(&header);
    for size in SIZES {
        let mut row = vec![
            size.label.to_owned(),
            results
                .ceiling_at(size)
                .map(|r| three(r.gbps()))
                .unwrap_or_default(),
        ];
        for m in MECHANISMS {
            row.push(
                results
                    .cell(m, size)
                    .map(|c| three(c.rate.gbps()))
                    .unwrap_or_default(),
            );
        }
        t.push(row);
    }
    t
}

/// From which size on shm beats every copying mechanism, if it does at the largest size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossover {
    /// shm wins at this size and every larger one.
    From(Size),
    /// shm does not win at the largest size.
    Never,
}

impl Crossover {
    fn describe(self) -> String {
        match self {
            Crossover::From(s) if s == SIZES[0] => format!("{} (every size measured)", s.label),
            Crossover::From(s) => s.label.to_owned(),
            Crossover::Never => "none: shm does not win at the largest size".into(),
        }
    }
}

/// The smallest size from which `wins(size)` holds for it and every larger size.
pub fn crossover(wins: impl Fn(Size) -> Option<bool>) -> Crossover {
    let mut from = Crossover::Never;
    for size in SIZES.iter().rev() {
        if wins(*size) == Some(true) {
            from = Crossover::From(*size);
        } else {
            break;
        }
    }
    from
}

fn best_copy<F: Fn(&crate::matrix::Cell) -> f64>(
    results: &Results,
    size: Size,
    key: F,
    max: bool,
) -> Option<(Mechanism, f64)> {
    MECHANISMS
        .iter()
        .filter(|m| m.copies())
        .filter_map(|m| results.cell(*m, size).map(|c| (*m, key(c))))
        .reduce(|a, b| if (b.1 > a.1) == max { b } else { a })
}

/// Where `shm`'s handoff p50 beats every copying mechanism's.
pub fn latency_crossover(results: &Results, shm: Mechanism) -> Crossover {
    crossover(|size| {
        let mine = results.cell(shm, size)?.latency.p50_ns as f64;
        let (_, best) = best_copy(results, size, |c| c.latency.p50_ns as f64, false)?;
        Some(mine < best)
    })
}

/// Where `shm`'s frames/s beats every copying mechanism's.
pub fn throughput_crossover(results: &Results, shm: Mechanism) -> Crossover {
    crossover(|size| {
        let mine = results.cell(shm, size)?.rate.fps();
        let (_, best) = best_copy(results, size, |c| c.rate.fps(), true)?;
        Some(mine > best)
    })
}

/// Everything REPORT.md says about the machine and the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// When the run ended (UTC).
    pub when: String,
    /// CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// The command that produced it.
    pub command: String,
}

fn met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "missed",
        None => "not measured",
    }
}

/// The whole REPORT.md.
pub fn render(results: &Results, header: &Header, shm: Counts, messages: Counts) -> String {
    let mut out = String::new();
    let plan = if results.plan.quick {
        "--quick"
    } else {
        "full"
    };
    out.push_str("# Which mechanism when: measured\n\n");
    out.push_str(&format!(
        "Generated by `{}` ({plan} run) at {} in {:.0} s. CPU: {} ({} CPUs; writer and reader pinned to different CPUs{}). Kernel {}. Load average (1/5/15 min) before: {}, after: {}. Other work on the machine makes these numbers noisy; every ratio below comes from this one run.\n\n",
        header.command,
        header.when,
        results.elapsed.as_secs_f64(),
        header.cpu,
        results.cpus,
        if results.cpus > 1 { "" } else { " — impossible here: one CPU" },
        header.kernel,
        results.loadavg.0,
        results.loadavg.1,
    ));
    out.push_str(&format!(
        "Latency cases publish one frame every {} ms for every mechanism (a sleeping wake-up costs more the longer the sleeper was idle, so only equal periods compare); a case whose handoff takes longer than the period runs back to back. Handoff = publish/write starts → the frame is fully available to the reader: for shm-frames the library's `publish_ns → taken_ns` (the reader holds the slot, zero copies); for the copying mechanisms the writer's stamp just before its first write → the last byte in the reader's buffer. Throughput cases run flat out: the writer writes every byte of every frame (in place for shm, into its buffer before sending for the others), the reader reads every byte of every frame it gets; shm's newest-frame delivery may skip frames, and frames/s counts those read. The ceiling is one core writing a private buffer of the frame's size, measured right after shm-frames Block's throughput case of that size (the load on a shared machine changes during a run).\n\n",
        PERIOD.as_millis()
    ));
    out.push_str("Set-up of the copying mechanisms:\n\n");
    for (m, detail) in &results.setup {
        out.push_str(&format!("- {}: {detail}\n", m.label()));
    }

    out.push_str("\n## Targets\n\n");
    let mut t = Table::new(&["target", "measured", "result"]);
    for target in targets(results) {
        t.push(vec![
            target.goal.into(),
            target.measured,
            met(target.met).into(),
        ]);
    }
    out.push_str(&t.markdown());

    out.push_str("\n## The seed's table, measured\n\n");
    let mut t = Table::new(&[
        "criterion",
        "shared memory",
        "IPC messages",
        "evidence",
        "verdict",
    ]);
    for row in seed_rows(results, shm, messages) {
        t.push(vec![
            row.criterion.into(),
            row.shm.into(),
            row.messages.into(),
            row.evidence,
            row.verdict.describe(),
        ]);
    }
    out.push_str(&t.markdown());

    out.push_str("\n## Crossovers\n\n");
    let mut t = Table::new(&[
        "shm strategy",
        "wins on handoff latency from",
        "wins on throughput from",
    ]);
    for m in [Mechanism::ShmBlock, Mechanism::ShmSpin] {
        t.push(vec![
            m.label().into(),
            latency_crossover(results, m).describe(),
            throughput_crossover(results, m).describe(),
        ]);
    }
    out.push_str(&t.markdown());
    out.push_str("\n\"Wins\" means lower p50 (or more frames/s) than every copying mechanism at that size and at every larger size.\n");

    out.push_str("\n## Handoff p50 (µs), every mechanism\n\n");
    out.push_str(&p50_overview(results).markdown());
    out.push_str("\n## Throughput (GB/s), every mechanism, beside the ceiling\n\n");
    out.push_str(&gbps_overview(results).markdown());

    out.push_str("\n## Per mechanism\n");
    for m in MECHANISMS {
        out.push_str(&format!("\n### {}\n\n", m.label()));
        out.push_str(&mechanism_table(results, m).markdown());
    }

    out.push_str("\n## Wake-up primitives alone\n\n");
    let mut t = Table::new(&["primitive", "p50 µs", "p99 µs", "samples"]);
    for p in PRIMITIVES {
        if let Some(l) = results.wake(p) {
            t.push(vec![
                p.label().into(),
                us(l.p50_ns),
                us(l.p99_ns),
                l.samples.to_string(),
            ]);
        }
    }
    out.push_str(&t.markdown());

    out.push_str("\n## Small messages, both ways (round trips)\n\n");
    let mut t = Table::new(&["round trip", "p50 µs", "p99 µs", "samples"]);
    for k in ROUND_TRIPS {
        if let Some(l) = results.round_trip(k) {
            t.push(vec![
                k.label().into(),
                us(l.p50_ns),
                us(l.p99_ns),
                l.samples.to_string(),
            ]);
        }
    }
    out.push_str(&t.markdown());

    out.push_str("\n## Fan-out: consumers of one 1920x1080 stream (Block)\n\n");
    let mut t = Table::new(&[
        "consumers",
        "each consumer's handoff p50 / p99 µs",
        "last woken p50 µs",
        "last woken p99 µs",
        "producer CPU µs/frame",
    ]);
    for f in &results.fanouts {
        let each = f
            .each
            .iter()
            .map(|l| format!("{} / {}", us(l.p50_ns), us(l.p99_ns)))
            .collect::<Vec<_>>()
            .join("; ");
        t.push(vec![
            f.consumers.to_string(),
            each,
            us(f.last_woken.p50_ns),
            us(f.last_woken.p99_ns),
            us(f.producer_cpu_ns as u64),
        ]);
    }
    out.push_str(&t.markdown());
    out.push_str("\nProducer CPU is `CLOCK_PROCESS_CPUTIME_ID` over its publishing loop divided by the frames, heartbeat thread included; the producer writes only each frame's first 8 bytes, so this is the cost of publishing and waking, not of rendering.\n");
    out.push_str("\n## Plots\n\n![handoff latency against size](latency.png)\n\n![throughput against size](throughput.png)\n");
    out
}

/// Checks a REPORT.md for completeness (not its numbers): every table cell filled, every
/// mechanism's table with a row per size, the four targets and the six seed rows present.
/// Returns the problems found.
pub fn check_complete(markdown: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = markdown.lines().collect();
    // Every table: same cell count as its header, no empty cell.
    let mut header_cells: Option<usize> = None;
    for (n, line) in lines.iter().enumerate() {
        if !line.starts_with('|') {
            header_cells = None;
            continue;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        match header_cells {
            None => header_cells = Some(cells.len()),
            Some(count) => {
                if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
                    continue;
                }
                if cells.len() != count {
                    problems.push(format!(
                        "line {}: {} cells, header has {count}",
                        n + 1,
                        cells.len()
                    ));
                }
                if cells.iter().any(|c| c.is_empty()) {
                    problems.push(format!("line {}: an empty cell", n + 1));
                }
            }
        }
    }
    let section = |title: &str| -> Vec<&str> {
        let Some(start) = lines.iter().position(|l| l.trim() == title) else {
            return Vec::new();
        };
        lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .filter(|l| l.starts_with('|'))
            .skip(2)
            .copied()
            .collect()
    };
    for m in MECHANISMS {
        let rows = section(&format!("### {}", m.label()));
        for size in SIZES {
            if !rows
                .iter()
                .any(|r| r.starts_with(&format!("| {} |", size.label)))
            {
                problems.push(format!("{}: no row for {}", m.label(), size.label));
            }
        }
    }
    let expect = [
        ("## Targets", 4),
        ("## The seed's table, measured", 6),
        ("## Crossovers", 2),
        ("## Handoff p50 (µs), every mechanism", SIZES.len()),
        (
            "## Throughput (GB/s), every mechanism, beside the ceiling",
            SIZES.len(),
        ),
        ("## Wake-up primitives alone", PRIMITIVES.len()),
        (
            "## Small messages, both ways (round trips)",
            ROUND_TRIPS.len(),
        ),
        (
            "## Fan-out: consumers of one 1920x1080 stream (Block)",
            crate::fanout::CONSUMERS.len(),
        ),
    ];
    for (title, rows) in expect {
        let found = section(title).len();
        if found != rows {
            problems.push(format!("{title}: {found} rows, {rows} expected"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A UTC timestamp `YYYY-MM-DD HH:MM UTC` from seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::Fanout;
    use crate::matrix::{Cell, Plan};
    use crate::measure::{Latency, Rate};
    use crate::roundtrip::RoundTrip;
    use std::time::Duration;

    fn lat(p50_ns: u64) -> Latency {
        Latency {
            samples: 100,
            p50_ns,
            p99_ns: p50_ns * 2,
            max_ns: p50_ns * 3,
        }
    }

    fn rate(fps: f64, size: Size) -> Rate {
        Rate {
            frames: fps as u64,
            secs: 1.0,
            frame_bytes: size.bytes() as u64,
        }
    }

    /// shm: 30 µs everywhere; copies: 10 µs at 64 B growing with size; shm wins from 64 KiB.
    fn synthetic() -> Results {
        let mut cells = Vec::new();
        for (i, size) in SIZES.iter().enumerate() {
            for m in MECHANISMS {
                let (p50, fps) = match m {
                    Mechanism::ShmBlock => (30_000, 1e6 / (1.0 + i as f64)),
                    Mechanism::ShmSpin => (500, 1e6 / (1.0 + i as f64)),
                    _ => (10_000 * 3u64.pow(i as u32), 2e6 / 4f64.powi(i as i32)),
                };
                cells.push(Cell {
                    mechanism: m,
                    size: *size,
                    latency: lat(p50),
                    rate: rate(fps, *size),
                });
            }
        }
        Results {
            plan: Plan::quick(),
            cells,
            ceiling: SIZES.iter().map(|s| (*s, rate(1e7, *s))).collect(),
            wakes: PRIMITIVES.iter().map(|p| (*p, lat(20_000))).collect(),
            round_trips: ROUND_TRIPS.iter().map(|k| (*k, lat(50_000))).collect(),
            fanouts: crate::fanout::CONSUMERS
                .iter()
                .map(|&n| Fanout {
                    consumers: n,
                    each: vec![lat(30_000); n as usize],
                    last_woken: lat(40_000),
                    producer_cpu_ns: 5000.0,
                })
                .collect(),
            setup: vec![(Mechanism::Mq, "msgsize 8192 B".into())],
            loadavg: ("1.00 1.00 1.00".into(), "2.00 1.00 1.00".into()),
            cpus: 2,
            elapsed: Duration::from_secs(60),
        }
    }

    fn header() -> Header {
        Header {
            when: utc(0),
            cpu: "test".into(),
            kernel: "6".into(),
            command: "report".into(),
        }
    }

    #[test]
    fn crossover_is_the_start_of_the_last_winning_run() {
        let wins =
            |from: usize| move |s: Size| Some(SIZES.iter().position(|x| *x == s).unwrap() >= from);
        assert_eq!(crossover(wins(0)), Crossover::From(SIZES[0]));
        assert_eq!(crossover(wins(3)), Crossover::From(SIZES[3]));
        assert_eq!(crossover(|_| Some(false)), Crossover::Never);
        // A win at a small size followed by a loss does not count.
        let patchy = |s: Size| Some(s == SIZES[0] || s == SIZES[6]);
        assert_eq!(crossover(patchy), Crossover::From(SIZES[6]));
        assert_eq!(crossover(|_| None), Crossover::Never);
    }

    #[test]
    fn crossovers_of_the_synthetic_run() {
        let r = synthetic();
        // Copies at 10, 30, 90 µs: shm's 30 µs is lower from the third size (64 KiB) on.
        assert_eq!(
            latency_crossover(&r, Mechanism::ShmBlock),
            Crossover::From(SIZES[2])
        );
        assert_eq!(
            latency_crossover(&r, Mechanism::ShmSpin),
            Crossover::From(SIZES[0])
        );
        // Copies 2e6, 5e5, ...; shm 1e6, 5e5, 3.3e5: ahead from the third size (4 KiB ties).
        assert_eq!(
            throughput_crossover(&r, Mechanism::ShmBlock),
            Crossover::From(SIZES[2])
        );
    }

    #[test]
    fn tables_have_a_row_per_size_and_no_empty_cell() {
        let r = synthetic();
        let t = mechanism_table(&r, Mechanism::Mq);
        assert_eq!(t.rows.len(), SIZES.len());
        assert!(
            t.rows
                .iter()
                .all(|row| row.len() == t.header.len() && row.iter().all(|c| !c.is_empty()))
        );
        assert_eq!(t.rows[0][2], "10.0");
        let md = t.markdown();
        assert!(md.starts_with("| size | bytes |"));
        assert_eq!(md.lines().count(), SIZES.len() + 2);
    }

    #[test]
    fn a_full_report_passes_the_check_and_a_damaged_one_fails() {
        let r = synthetic();
        let md = render(
            &r,
            &header(),
            Counts {
                sync_points: 3,
                unsafe_blocks: 2,
                ..Counts::default()
            },
            Counts::default(),
        );
        assert_eq!(check_complete(&md), Ok(()));
        // A missing size row.
        let without = md.replace("| 1280x720 | 3686400 |", "| skipped |");
        assert!(check_complete(&without).is_err());
        // An empty cell.
        let empty = md.replacen("| 64 B | 64 |", "| 64 B |  |", 1);
        assert!(
            check_complete(&empty)
                .unwrap_err()
                .iter()
                .any(|p| p.contains("empty cell"))
        );
        // A results set with a missing cell renders an incomplete overview.
        let mut partial = r.clone();
        partial
            .cells
            .retain(|c| !(c.mechanism == Mechanism::PipeBig && c.size == SIZES[6]));
        let md = render(&partial, &header(), Counts::default(), Counts::default());
        assert!(check_complete(&md).is_err());
    }

    #[test]
    fn targets_and_verdicts_follow_the_numbers() {
        let r = synthetic();
        let t = targets(&r);
        assert_eq!(t.len(), 4);
        // Spin 0.5 µs vs copies 7.29 ms at 4K: 14580x.
        assert_eq!(t[0].met, Some(true));
        assert_eq!(t[1].met, Some(true));
        assert_eq!(t[2].met, Some(true));
        // 1e6/7 frames/s against 1e7: far below 0.8.
        assert_eq!(t[3].met, Some(false));
        let shm = Counts {
            sync_points: 10,
            unsafe_blocks: 5,
            validation_sites: 20,
            ..Counts::default()
        };
        let rows = seed_rows(
            &r,
            shm,
            Counts {
                validation_sites: 5,
                ..Counts::default()
            },
        );
        assert_eq!(rows.len(), 6);
        assert!(
            matches!(rows[0].verdict, Verdict::Caveat(_)),
            "{:?}",
            rows[0]
        );
        assert_eq!(rows[1].verdict, Verdict::Holds);
        assert_eq!(rows[2].verdict, Verdict::Holds);
        // Semaphore and mq wakes equal: a caveat.
        assert!(matches!(rows[3].verdict, Verdict::Caveat(_)));
        // Isolation and scalability: the project's evidence, with its caveat.
        assert!(matches!(rows[4].verdict, Verdict::Caveat(_)));
        assert!(matches!(rows[5].verdict, Verdict::Caveat(_)));
        // Messages that validate more: a caveat on complexity.
        let rows = seed_rows(
            &r,
            shm,
            Counts {
                validation_sites: 50,
                ..Counts::default()
            },
        );
        assert!(matches!(rows[2].verdict, Verdict::Caveat(_)));
        let _ = RoundTrip::Shm64;
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400 + 3_660), "2000-02-29 01:01 UTC");
        assert_eq!(utc(1_798_761_600), "2027-01-01 00:00 UTC");
    }
}
