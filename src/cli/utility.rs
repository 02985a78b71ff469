//! `workload-generator utility`: the reference's `utility.py --mode concat|merge --input-files A B
//! --output-file OUT`, plus `time-scale`, `slice`, `sample`, `shift` and `stats`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};

use super::generate::FormatArg;
use crate::domain::spec::OutputFormat;
use crate::domain::utility::{
    Input, Operation, OutputOptions, UtilityReport, apply, workload_stats,
};

/// Utility modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Files one after another (`--gap-ms`; 0 = reference, the boundary entries collide).
    Concat,
    /// Interleave on original timestamps; equal timestamps combined.
    Merge,
    /// Multiply timestamps by `--factor`.
    TimeScale,
    /// Keep `[--start-ms, --end-ms)`, re-based to 0.
    Slice,
    /// Keep a `--fraction` of requests (whole sessions), seeded by `--seed`.
    Sample,
    /// Add `--offset-ms` to every timestamp.
    Shift,
    /// Print counts, span, rate and length percentiles (JSON).
    Stats,
}

/// Flags of `utility`.
#[derive(Debug, Args)]
pub struct UtilityArgs {
    /// What to do.
    #[arg(long, value_enum)]
    pub mode: ModeArg,
    /// Input workload files (JSONL or JSON array); concat and merge take several, in order.
    #[arg(long, num_args = 1.., required = true)]
    pub input_files: Vec<PathBuf>,
    /// Output workload file (stats: optional; the summary goes to stdout without it).
    #[arg(long)]
    pub output_file: Option<PathBuf>,
    /// concat: ms between one file's largest timestamp and the next file's time 0 (default 0, the reference).
    #[arg(long)]
    pub gap_ms: Option<u64>,
    /// time-scale: factor > 0 for every timestamp (0.5 = twice as fast).
    #[arg(long)]
    pub factor: Option<f64>,
    /// slice: window start, ms (default 0).
    #[arg(long)]
    pub start_ms: Option<u64>,
    /// slice: window end (exclusive), ms (default: the end).
    #[arg(long)]
    pub end_ms: Option<u64>,
    /// sample: fraction of requests (or sessions) to keep, in (0, 1].
    #[arg(long)]
    pub fraction: Option<f64>,
    /// sample: seed (random and printed when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// shift: offset to add, ms (may be negative).
    #[arg(long, allow_hyphen_values = true)]
    pub offset_ms: Option<i64>,
    /// `jsonl` or `json` (an indented array); default: `json` for a `.json` output file, else `jsonl`.
    #[arg(long, value_enum)]
    pub output_format: Option<FormatArg>,
    /// Escape non-ASCII as `\uXXXX`, like the reference.
    #[arg(long)]
    pub ascii: bool,
}

impl UtilityArgs {
    /// The operation these flags describe; flags of another mode are refused.
    pub fn operation(&self) -> anyhow::Result<Operation> {
        let given: [(&str, bool, ModeArg); 7] = [
            ("--gap-ms", self.gap_ms.is_some(), ModeArg::Concat),
            ("--factor", self.factor.is_some(), ModeArg::TimeScale),
            ("--start-ms", self.start_ms.is_some(), ModeArg::Slice),
            ("--end-ms", self.end_ms.is_some(), ModeArg::Slice),
            ("--fraction", self.fraction.is_some(), ModeArg::Sample),
            ("--seed", self.seed.is_some(), ModeArg::Sample),
            ("--offset-ms", self.offset_ms.is_some(), ModeArg::Shift),
        ];
        for (flag, set, mode) in given {
            if set && mode != self.mode {
                bail!(
                    "{flag} applies to --mode {} only",
                    mode.to_possible_value().expect("named").get_name()
                );
            }
        }
        let need = |v: Option<f64>, flag: &str| match v {
            Some(v) => Ok(v),
            None => bail!("--mode {} needs {flag}", self.mode_name()),
        };
        Ok(match self.mode {
            ModeArg::Concat => Operation::Concat {
                gap_ms: self.gap_ms.unwrap_or(0),
            },
            ModeArg::Merge => Operation::Merge,
            ModeArg::TimeScale => Operation::TimeScale {
                factor: need(self.factor, "--factor")?,
            },
            ModeArg::Slice => Operation::Slice {
                start_ms: self.start_ms.unwrap_or(0),
                end_ms: self.end_ms,
            },
            ModeArg::Sample => Operation::Sample {
                fraction: need(self.fraction, "--fraction")?,
                seed: self.seed,
            },
            ModeArg::Shift => match self.offset_ms {
                Some(offset_ms) => Operation::Shift { offset_ms },
                None => bail!("--mode shift needs --offset-ms"),
            },
            ModeArg::Stats => Operation::Stats,
        })
    }

    fn mode_name(&self) -> String {
        self.mode
            .to_possible_value()
            .expect("named")
            .get_name()
            .to_string()
    }
}

/// Runs `utility`.
pub fn run(args: UtilityArgs) -> anyhow::Result<()> {
    let op = args.operation()?;
    let inputs: Vec<Input> = args.input_files.iter().map(Input::path).collect();
    let never = || false;
    let Some(dest) = &args.output_file else {
        if op != Operation::Stats {
            bail!("--mode {} needs --output-file", args.mode_name());
        }
        op.validated(inputs.len())?;
        let stats = workload_stats(&inputs[0], &never)?;
        let text = serde_json::to_string_pretty(&stats).expect("stats serialize");
        let mut stdout = std::io::stdout().lock();
        return match writeln!(stdout, "{text}") {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        };
    };
    let format = match args.output_format {
        Some(FormatArg::Json) => OutputFormat::Json,
        Some(FormatArg::Jsonl) => OutputFormat::Jsonl,
        None if dest.extension().is_some_and(|e| e == "json") && op != Operation::Stats => {
            OutputFormat::Json
        }
        None => OutputFormat::Jsonl,
    };
    let report = apply(
        &op,
        &inputs,
        dest,
        OutputOptions {
            format,
            ascii: args.ascii,
        },
        &never,
    )?;
    print_report(&report, dest);
    Ok(())
}

fn print_report(r: &UtilityReport, dest: &std::path::Path) {
    if let Some(o) = &r.output {
        let span = match (o.first_timestamp_ms, o.last_timestamp_ms) {
            (Some(f), Some(l)) => format!(", timestamps {f}..{l} ms"),
            _ => String::new(),
        };
        eprintln!(
            "{}: wrote {} entries ({} requests{span}) to {}",
            r.operation.mode(),
            o.entries,
            o.requests,
            dest.display()
        );
    } else {
        eprintln!("stats: wrote {}", dest.display());
    }
    if let Operation::Sample { seed: Some(s), .. } = r.operation {
        eprintln!("seed: {s}");
    }
    for n in &r.notes {
        eprintln!("note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> anyhow::Result<Operation> {
        let cli = Cli::try_parse_from(
            ["workload-generator", "utility"]
                .iter()
                .chain(args)
                .copied(),
        )?;
        match cli.command {
            Some(Command::Utility(a)) => a.operation(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn reference_command_line_parses() {
        let cli = Cli::try_parse_from([
            "workload-generator",
            "utility",
            "--mode",
            "concat",
            "--input-files",
            "A",
            "B",
            "--output-file",
            "OUT",
        ])
        .unwrap();
        let Some(Command::Utility(a)) = cli.command else {
            unreachable!()
        };
        assert_eq!(a.input_files, [PathBuf::from("A"), PathBuf::from("B")]);
        assert_eq!(a.operation().unwrap(), Operation::Concat { gap_ms: 0 });
    }

    #[test]
    fn mode_options() {
        let base = ["--input-files", "A", "--output-file", "O"];
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = extra.to_vec();
            v.extend(base);
            parse(&v)
        };
        assert_eq!(
            with(&["--mode", "shift", "--offset-ms", "-20"]).unwrap(),
            Operation::Shift { offset_ms: -20 }
        );
        assert_eq!(
            with(&["--mode", "time-scale", "--factor", "0.5"]).unwrap(),
            Operation::TimeScale { factor: 0.5 }
        );
        assert_eq!(
            with(&["--mode", "slice", "--end-ms", "10"]).unwrap(),
            Operation::Slice {
                start_ms: 0,
                end_ms: Some(10)
            }
        );
        assert_eq!(
            with(&["--mode", "sample", "--fraction", "0.1", "--seed", "3"]).unwrap(),
            Operation::Sample {
                fraction: 0.1,
                seed: Some(3)
            }
        );
        assert_eq!(
            with(&["--mode", "merge", "--factor", "2"])
                .unwrap_err()
                .to_string(),
            "--factor applies to --mode time-scale only"
        );
        assert_eq!(
            with(&["--mode", "sample"]).unwrap_err().to_string(),
            "--mode sample needs --fraction"
        );
    }

    #[test]
    fn end_to_end_concat_and_stats() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(
            &a,
            "{\"timestamp\": 0, \"requests\": []}\n{\"timestamp\": 7, \"requests\": []}\n",
        )
        .unwrap();
        let out = dir.path().join("out.json");
        let cli = Cli::try_parse_from([
            "workload-generator".as_ref(),
            "utility".as_ref(),
            "--mode".as_ref(),
            "concat".as_ref(),
            "--input-files".as_ref(),
            a.as_os_str(),
            a.as_os_str(),
            "--output-file".as_ref(),
            out.as_os_str(),
        ])
        .unwrap();
        crate::cli::run(cli).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let ts: Vec<u64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["timestamp"].as_u64().unwrap())
            .collect();
        assert_eq!(ts, [0, 7, 7, 14]);
    }
}
