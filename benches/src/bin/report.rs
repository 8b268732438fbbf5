//! `report [--quick] [--out DIR] [--check FILE]`: runs the mechanisms matrix (or checks a
//! report's completeness) and writes REPORT.md, latency.png and throughput.png.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use benches::complexity::{count_crate, workspace_root};
use benches::matrix::{self, Plan};
use benches::report::{self, Header};
use clap::Parser;

/// Measures every IPC mechanism of the "which mechanism when" table on this machine.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A short run (under two minutes): few samples, short windows.
    #[arg(long)]
    quick: bool,
    /// Where REPORT.md and the plots go.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Only check that this REPORT.md is complete (every table filled), then exit.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    if let Some(code) = benches::child::run_if_child(matrix::ROLES) {
        return code;
    }
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("report: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(file) = cli.check {
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        return match report::check_complete(&text) {
            Ok(()) => {
                eprintln!("{}: complete", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(problems) => {
                for p in &problems {
                    eprintln!("{}: {p}", file.display());
                }
                bail!(
                    "{} is incomplete ({} problems)",
                    file.display(),
                    problems.len()
                )
            }
        };
    }
    let plan = if cli.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let root = workspace_root();
    let shm = count_crate(&root, "shm-frames").context("count shm-frames' source")?;
    let messages = count_crate(&root, "control-msg").context("count control-msg's source")?;
    benches::plot::load_font().context("plots")?;
    std::fs::create_dir_all(&cli.out).with_context(|| format!("create {}", cli.out.display()))?;
    eprintln!(
        "report: {} run, writing to {}; load average {}",
        if cli.quick { "quick" } else { "full" },
        cli.out.display(),
        matrix::loadavg()
    );
    let results =
        matrix::run(plan, &mut |line| eprintln!("report: {line}")).context("measuring")?;
    let header = Header {
        when: report::utc(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        cpu: cpu_model(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into()),
        command: format!(
            "cargo run --release -p benches --bin report{}",
            if cli.quick { " -- --quick" } else { "" }
        ),
    };
    let text = report::render(&results, &header, shm, messages);
    let path = cli.out.join("REPORT.md");
    std::fs::write(&path, &text).with_context(|| format!("write {}", path.display()))?;
    eprintln!("report: plots");
    benches::plot::write_plots(&results, &cli.out).context("plots")?;
    if let Err(problems) = report::check_complete(&text) {
        bail!("the report is incomplete: {}", problems.join("; "));
    }
    eprintln!(
        "report: done in {:.0} s: {}, latency.png, throughput.png",
        results.elapsed.as_secs_f64(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
