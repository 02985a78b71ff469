//! Grafana-exported statistics (`stat` trace type): a rate CSV plus optional prompt/completion length CSVs,
//! turned into a timeline of rows. Each row lasts until the next row's time; its rate drives the arrivals
//! and its length percentiles, fitted to a lognormal, give each arrival's length targets.
//!
//! Sub-types:
//! * `maas`: traffic `Time,Total,Success,4xx Error[,5xx Error]` (the `Success` column is the rate), length
//!   files `Time,P50,P70,P90,P99` / `Time,P50,P70,P95,P99`: every `P<q>` column is the q-th percentile it
//!   names (P95 is 0.95). Length files without a `Time` column (the README form `P50,P70,P99`) are matched to
//!   the traffic rows by position and must have the same row count.
//! * `cloudide`: traffic `Time,<rate column>` (epoch ms); a length file whose `recv_bytes…` columns (summed)
//!   give prompt bytes and `sent_bytes…` columns give completion bytes per second; divided by the rate and by
//!   `bytes_per_token` they are the lengths per request (the reference uses received bytes for both: W14).
//!
//! Files are joined on their parsed `Time`: a time in one file and not in another is an error naming the row.

pub mod fit;
pub mod read;
pub mod spec;
pub mod time;
pub mod timeline;

pub use self::fit::*;
pub use self::read::CsvInput;
pub use self::spec::*;
pub use self::time::*;
pub use self::timeline::*;
use crate::domain::arrival::Arrivals;
use crate::domain::arrival::expected_requests;
use crate::domain::emit::{GenerateError, GenerateInput, Summary, emit_matched, rng_for, streams};
use crate::domain::spec::ValidatedSpec;
use crate::domain::writer::EntrySink;

/// Generates a `stat` workload.
pub(crate) fn generate_stat(
    spec: &ValidatedSpec,
    stat: &StatSpec,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    let s = spec.spec();
    let timeline = StatTimeline::load(stat, s.interval_ms, input.files)?;
    let mut rng = rng_for(spec.seed(), streams::LENGTHS);
    let pieces = timeline.pieces(stat.qps_scale, stat.rate_noise, s.duration_ms, &mut rng);
    spec.limits()
        .check_requests("stat.qps_scale", expected_requests(&pieces))?;
    let target_rate = pieces.clone();
    let arrivals = Arrivals::new(
        s.traffic.arrival,
        s.traffic.burstiness,
        pieces,
        rng_for(spec.seed(), streams::ARRIVALS),
    );
    // A side without a length file falls back to the fixed targets of `lengths` (if any).
    let (fin, fout) = (s.lengths.target_prompt_len, s.lengths.target_completion_len);
    let times = timeline
        .with_lengths(arrivals, rng)
        .map(|(t, tin, tout)| (t as u64, tin.or(fin), tout.or(fout)));
    let mut summary = emit_matched(spec, input, sink, times)?;
    summary.target_rate = Some(target_rate);
    let span = timeline.span_ms();
    if span < s.duration_ms as f64 {
        summary.notes.push(format!(
            "the statistics cover {span:.0} ms ({} rows), less than duration_ms = {}; the workload ends there",
            timeline.rows.len(),
            s.duration_ms
        ));
    } else if span > s.duration_ms as f64 {
        summary.notes.push(format!(
            "the statistics cover {span:.0} ms ({} rows); duration_ms = {} cut them (raise --duration-ms to use all)",
            timeline.rows.len(),
            s.duration_ms
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::files::InputError;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn normal_quantile_is_accurate() {
        for (p, z) in [
            (0.5, 0.0),
            (0.7, 0.524_400_512_708_041),
            (0.9, 1.281_551_565_544_6),
            (0.95, 1.644_853_626_951_47),
            (0.99, 2.326_347_874_040_84),
            (0.01, -2.326_347_874_040_84),
            (0.001, -3.090_232_306_167_81),
            (0.999_99, 4.264_890_793_922_6),
        ] {
            assert!(
                (normal_quantile(p) - z).abs() < 1e-8 * z.abs().max(1.0),
                "{p}: {}",
                normal_quantile(p)
            );
        }
    }

    #[test]
    fn lognormal_fit_recovers_exact_percentiles() {
        let truth = LogNormal {
            mu: 500f64.ln(),
            sigma: 0.6,
        };
        let pts: Vec<(f64, f64)> = [0.5, 0.7, 0.95, 0.99]
            .iter()
            .map(|&p| (p, truth.quantile(p)))
            .collect();
        let fit = LogNormal::fit(&pts);
        assert!(
            (fit.mu - truth.mu).abs() < 1e-9 && (fit.sigma - 0.6).abs() < 1e-9,
            "{fit:?}"
        );
        // Constant percentiles: sigma 0; one percentile: sigma 0; zeros count as 1.
        assert_eq!(LogNormal::fit(&[(0.5, 7.0), (0.9, 7.0)]).sigma, 0.0);
        assert_eq!(LogNormal::fit(&[(0.5, 7.0)]), LogNormal::constant(7.0));
        let z = LogNormal::fit(&[(0.5, 0.0), (0.9, 0.0)]);
        assert_eq!(z.sample(&mut ChaCha8Rng::seed_from_u64(1)), 1);
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(
            parse_time("2024-10-1 00:00:00"),
            parse_time("2024-10-01T00:00:00Z")
        );
        assert_eq!(
            parse_time("2024-10-01 01:00:00+01:00"),
            parse_time("2024-10-01 00:00:00")
        );
        assert_eq!(parse_time("2024-10-01 00:00:00.250").unwrap() % 1000, 250);
        assert_eq!(parse_time("1727740800000"), Some(1_727_740_800_000));
        assert_eq!(parse_time("2024-10-01 00:00:00"), Some(1_727_740_800_000));
        assert_eq!(parse_time("2024-02-30 00:00:00"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2024-10-01 25:00:00"), None);
    }

    fn parse(
        stat: &StatSpec,
        traffic: &str,
        prompt: Option<&str>,
        completion: Option<&str>,
    ) -> Result<StatTimeline, InputError> {
        StatTimeline::parse(
            stat,
            1000,
            CsvInput::text("traffic.csv", traffic),
            prompt.map(|t| CsvInput::text("prompt.csv", t)),
            completion.map(|t| CsvInput::text("completion.csv", t)),
        )
    }

    fn quantile(sorted: &[u32], p: f64) -> f64 {
        sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1] as f64
    }

    /// The issue's fidelity test: a synthetic maas export with known percentiles; the generated length targets
    /// (before prompt matching) are within 10% of the requested percentiles, and per-row request counts are
    /// within 3σ of the expected Poisson counts.
    #[test]
    fn fidelity_lengths_and_counts_follow_the_rows() {
        let rates = [20.0, 40.0, 0.0, 25.0, 30.0];
        let prompt_dists = [
            (300.0, 0.8),
            (800.0, 0.5),
            (100.0, 0.3),
            (1500.0, 0.6),
            (60.0, 0.9),
        ];
        let out_dists = [
            (150.0, 0.6),
            (90.0, 0.4),
            (50.0, 0.2),
            (400.0, 0.7),
            (30.0, 0.5),
        ];
        let time = |i: usize| format!("2024-10-01 {:02}:{:02}:00", i / 6, (i % 6) * 10);
        let mut traffic =
            String::from("\"Time\",\"Total\",\"Success\",\"4xx Error\",\"5xx Error\"\n");
        let mut prompt = String::from("\"Time\",\"P50\",\"P70\",\"P90\",\"P99\"\n");
        let mut completion = String::from("\"Time\",\"P50\",\"P70\",\"P95\",\"P99\"\n");
        let q = |(m, s): (f64, f64), p: f64| {
            LogNormal {
                mu: f64::ln(m),
                sigma: s,
            }
            .quantile(p)
            .round()
        };
        for i in 0..rates.len() {
            traffic.push_str(&format!("{},{},{},0,0\n", time(i), rates[i], rates[i]));
            let d = prompt_dists[i];
            prompt.push_str(&format!(
                "{},{},{},{},{}\n",
                time(i),
                q(d, 0.5),
                q(d, 0.7),
                q(d, 0.9),
                q(d, 0.99)
            ));
            let d = out_dists[i];
            completion.push_str(&format!(
                "{},{},{},{},{}\n",
                time(i),
                q(d, 0.5),
                q(d, 0.7),
                q(d, 0.95),
                q(d, 0.99)
            ));
        }
        let stat = StatSpec::default();
        let tl = parse(&stat, &traffic, Some(&prompt), Some(&completion)).unwrap();
        assert_eq!(tl.rows.len(), 5);
        assert_eq!(tl.span_ms(), 3_000_000.0); // 10-minute rows; the last lasts the gap before it
        let mut rng = rng_for(7, streams::LENGTHS);
        let pieces = tl.pieces(1.0, RateNoise::None, 3_000_000, &mut rng);
        let arrivals = Arrivals::new(
            crate::domain::arrival::ArrivalKind::Poisson,
            1.0,
            pieces,
            rng_for(7, streams::ARRIVALS),
        );
        let reqs: Vec<(f64, Option<u32>, Option<u32>)> = tl.with_lengths(arrivals, rng).collect();
        for (i, row) in tl.rows.iter().enumerate() {
            let in_row: Vec<_> = reqs
                .iter()
                .filter(|r| r.0 >= row.start_ms && r.0 < row.start_ms + row.duration_ms)
                .collect();
            let expected = rates[i] * row.duration_ms / 1000.0;
            let n = in_row.len() as f64;
            assert!(
                (n - expected).abs() <= 3.0 * expected.sqrt(),
                "row {i}: {n} requests, expected {expected}"
            );
            if expected == 0.0 {
                continue;
            }
            let mut p: Vec<u32> = in_row.iter().map(|r| r.1.unwrap()).collect();
            let mut c: Vec<u32> = in_row.iter().map(|r| r.2.unwrap()).collect();
            p.sort_unstable();
            c.sort_unstable();
            for (pp, want) in [0.5, 0.7, 0.9, 0.99].map(|pp| (pp, q(prompt_dists[i], pp))) {
                let got = quantile(&p, pp);
                assert!(
                    (got - want).abs() <= 0.1 * want,
                    "row {i} prompt p{pp}: {got} vs {want}"
                );
            }
            // P95 is the 95th percentile (the reference reads it as p90: W16).
            for (pp, want) in [0.5, 0.7, 0.95, 0.99].map(|pp| (pp, q(out_dists[i], pp))) {
                let got = quantile(&c, pp);
                assert!(
                    (got - want).abs() <= 0.1 * want,
                    "row {i} output p{pp}: {got} vs {want}"
                );
            }
        }
        // qps_scale divides the rate; input_scale divides the lengths.
        let scaled = StatSpec {
            qps_scale: 4.0,
            input_scale: 2.0,
            ..StatSpec::default()
        };
        let tl2 = parse(&scaled, &traffic, Some(&prompt), None).unwrap();
        let pieces = tl2.pieces(
            scaled.qps_scale,
            RateNoise::None,
            3_000_000,
            &mut rng_for(1, 2),
        );
        assert_eq!(pieces[1].rate_per_s, 10.0);
        let row0 = tl2.rows[0].input.unwrap();
        assert!((row0.quantile(0.5) - q(prompt_dists[0], 0.5) / 2.0).abs() < 1.0);
        assert!(tl2.rows[0].output.is_none());
    }

    #[test]
    fn rate_noise_modes() {
        let traffic =
            "Time,Success\n2024-10-01 00:00:00,5\n2024-10-01 00:01:00,0\n2024-10-01 00:02:00,0.5\n";
        let tl = parse(&StatSpec::default(), traffic, None, None).unwrap();
        let mut rng = rng_for(3, streams::LENGTHS);
        let p = tl.pieces(1.0, RateNoise::Poisson, 1_000_000, &mut rng);
        // 60 one-second pieces for rows 0 and 2, one piece for the zero row.
        assert_eq!(p.len(), 121);
        assert_eq!(
            (p[60].start_ms, p[60].end_ms, p[60].rate_per_s),
            (60_000.0, 120_000.0, 0.0)
        );
        let mean = p[..60].iter().map(|x| x.rate_per_s).sum::<f64>() / 60.0;
        assert!((mean - 5.0).abs() < 1.0, "{mean}");
        let sm = tl.pieces(2.0, RateNoise::Smoothed, 1_000_000, &mut rng);
        // The reference: integers ≥ 1 (before qps_scale), also for a 0.5 row.
        assert!(
            sm.iter()
                .filter(|x| x.start_ms < 60_000.0 || x.start_ms >= 120_000.0)
                .all(|x| x.rate_per_s >= 0.5 && (x.rate_per_s * 2.0).fract() == 0.0)
        );
        // duration_ms cuts the pieces.
        let cut = tl.pieces(1.0, RateNoise::Poisson, 30_500, &mut rng);
        assert_eq!(cut.len(), 31);
        assert_eq!(cut.last().unwrap().end_ms, 30_500.0);
    }

    #[test]
    fn row_durations_use_actual_gaps_and_one_row_files() {
        let traffic =
            "Time,Success\n2024-10-01 00:00:00,1\n2024-10-01 00:00:30,1\n2024-10-01 00:02:00,1\n";
        let tl = parse(&StatSpec::default(), traffic, None, None).unwrap();
        let d: Vec<f64> = tl.rows.iter().map(|r| r.duration_ms).collect();
        assert_eq!(d, vec![30_000.0, 90_000.0, 90_000.0]);
        let fixed = StatSpec {
            row_duration_ms: Some(5000),
            ..StatSpec::default()
        };
        let tl = parse(&fixed, traffic, None, None).unwrap();
        assert_eq!(tl.rows[2].duration_ms, 5000.0);
        // A UTF-8 BOM and blank lines are fine.
        let bom = "\u{feff}\"Time\",\"Success\"\n\n2024-10-01 00:00:00,3\n\n";
        assert_eq!(
            parse(&StatSpec::default(), bom, None, None).unwrap().rows[0].rate,
            3.0
        );
        let one = "Time,Success\n2024-10-01 00:00:00,3\n";
        assert_eq!(
            parse(&StatSpec::default(), one, None, None)
                .unwrap()
                .span_ms(),
            1000.0
        );
        assert_eq!(parse(&fixed, one, None, None).unwrap().span_ms(), 5000.0);
        // No Time column: every row lasts row_duration_ms (or interval_ms).
        let untimed = "Success\n1\n2\n";
        let tl = parse(&fixed, untimed, None, None).unwrap();
        assert_eq!((tl.rows[1].start_ms, tl.span_ms()), (5000.0, 10_000.0));
    }

    #[test]
    fn readme_form_and_missing_5xx_column_work() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/stat/maas-readme-form/"
        );
        let traffic = std::fs::read_to_string(format!("{dir}traffic.csv")).unwrap();
        let prompt = std::fs::read_to_string(format!("{dir}prompt-len.csv")).unwrap();
        let tl = parse(&StatSpec::default(), &traffic, Some(&prompt), None).unwrap();
        assert_eq!(tl.rows.len(), 3);
        let d = tl.rows[0].input.unwrap();
        // P50,P70,P99 = 2000,4000,10000: the least-squares lognormal lies near all three.
        assert!(
            (d.quantile(0.5) / 2000.0).ln().abs() < 0.25,
            "{}",
            d.quantile(0.5)
        );
        assert!(
            (d.quantile(0.99) / 10000.0).ln().abs() < 0.25,
            "{}",
            d.quantile(0.99)
        );
        let short = "P50,P70,P99\n1,2,3\n";
        assert_eq!(
            parse(&StatSpec::default(), &traffic, Some(short), None)
                .unwrap_err()
                .to_string(),
            "prompt.csv: has 1 rows but traffic.csv has 3; without Time columns rows are matched by position"
        );
    }

    #[test]
    fn cloudide_uses_sent_bytes_for_outputs() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stat/cloudide/");
        let traffic = std::fs::read_to_string(format!("{dir}traffic.csv")).unwrap();
        let bytes = std::fs::read_to_string(format!("{dir}bytes.csv")).unwrap();
        let stat = StatSpec {
            stat_trace_type: StatTraceType::Cloudide,
            bytes_per_token: 4.0,
            ..StatSpec::default()
        };
        let tl = parse(&stat, &traffic, Some(&bytes), Some(&bytes)).unwrap();
        let mut rng = rng_for(1, 2);
        let r0 = tl.rows[0];
        assert_eq!((r0.rate, r0.duration_ms), (3.0, 30_000.0));
        assert_eq!(r0.input.unwrap().sample(&mut rng), 300); // (2400+1200)/3/4
        assert_eq!(r0.output.unwrap().sample(&mut rng), 100); // (900+300)/3/4 (W14: sent bytes)
        assert!(tl.rows[2].input.is_none()); // rate 0
        assert_eq!(tl.rows[3].input.unwrap().sample(&mut rng), 200); // 3200 + undefined, /4/4
    }

    #[test]
    fn bad_files_name_file_row_and_column() {
        let stat = StatSpec::default();
        let t = "Time,Success\n2024-10-01 00:00:00,1\n2024-10-01 00:01:00,2\n";
        let cases: Vec<(&str, Option<&str>, &str)> = vec![
            (
                t,
                Some("Time,P50,P90\n2024-10-01 00:00:00,10,20\n2024-10-01 00:01:00,30,20\n"),
                "prompt.csv:3: column 'P90': percentiles must not decrease: P90 = 20 is below P50 = 30",
            ),
            (
                t,
                Some("Time,P50,P90\n2024-10-01 00:00:00,ten,20\n2024-10-01 00:01:00,30,40\n"),
                "prompt.csv:2: column 'P50': 'ten' is not a number",
            ),
            (
                t,
                Some("Time,P50,P90\n2024-10-01 00:00:00,-1,20\n2024-10-01 00:01:00,30,40\n"),
                "prompt.csv:2: column 'P50': -1 is negative",
            ),
            (
                t,
                Some("Time,P50,P90\n2024-10-01 00:00:00,1,20\n2024-10-01 00:02:00,30,40\n"),
                "traffic.csv:3: column 'Time': prompt.csv has no row with this time",
            ),
            (
                t,
                Some(
                    "Time,P50\n2024-10-01 00:00:00,1\n2024-10-01 00:01:00,3\n2024-10-01 00:03:00,3\n",
                ),
                "prompt.csv:4: column 'Time': traffic.csv has no row with this time",
            ),
            (
                t,
                Some("Time,P50\n2024-10-01 00:00:00,1\n2024-10-01 00:00:00,3\n"),
                "prompt.csv:3: column 'Time': the same time as line 2",
            ),
            (
                t,
                Some("Time,Mean\n2024-10-01 00:00:00,1\n"),
                "prompt.csv:1: no percentile columns (expected names like P50, P70, P90, P99)",
            ),
            (
                t,
                Some("Time,P50\n2024-10-01 00:00:00,1,5\n"),
                "prompt.csv:2: has 3 cells, the header has 2",
            ),
            (
                "Time,Total\n2024-10-01 00:00:00,1\n",
                None,
                "traffic.csv:1: column 'Success': missing (maas traffic files have Time, Total, Success, 4xx Error columns)",
            ),
            (
                "Time,Success\n2024-10-01 00:01:00,1\n2024-10-01 00:00:00,1\n",
                None,
                "traffic.csv:3: column 'Time': not after the previous row's time (line 2)",
            ),
            (
                "Time,Success\nnoon,1\n",
                None,
                "traffic.csv:2: column 'Time': 'noon' is not a time (epoch ms or YYYY-MM-DD HH:MM:SS)",
            ),
            (
                "Time,Success\n2024-10-01 00:00:00,NaN\n",
                None,
                "traffic.csv:2: column 'Success': 'NaN' is not a finite number",
            ),
            ("Time,Success\n", None, "traffic.csv: has no data rows"),
            ("", None, "traffic.csv: is empty (no header row)"),
        ];
        for (traffic, prompt, want) in cases {
            let e = parse(&stat, traffic, prompt, None).unwrap_err().to_string();
            assert_eq!(e, want);
        }
    }

    #[test]
    fn spec_validation_names_dotted_fields() {
        let mut s = StatSpec::default();
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "stat.traffic_file is required"
        );
        s.traffic_file = Some("t.csv".into());
        s.qps_scale = 0.0;
        assert_eq!(s.validate().unwrap_err().field, "stat.qps_scale");
        s.qps_scale = 1.0;
        s.bytes_per_token = -1.0;
        assert_eq!(s.validate().unwrap_err().field, "stat.bytes_per_token");
        s.bytes_per_token = 1.0;
        s.row_duration_ms = Some(0);
        assert_eq!(s.validate().unwrap_err().field, "stat.row_duration_ms");
        s.row_duration_ms = None;
        assert!(s.validate().is_ok());
        s.completion_len_file = Some("c.csv".into());
        assert_eq!(
            s.files(),
            vec![
                ("stat.traffic_file", "t.csv"),
                ("stat.completion_len_file", "c.csv")
            ]
        );
        let j: StatSpec = serde_json::from_str(
            r#"{"traffic_file": "t.csv", "stat_trace_type": "cloudide", "rate_noise": "smoothed"}"#,
        )
        .unwrap();
        assert_eq!(
            (j.stat_trace_type, j.rate_noise, j.qps_scale),
            (StatTraceType::Cloudide, RateNoise::Smoothed, 1.0)
        );
        assert!(serde_json::from_str::<StatSpec>(r#"{"trafic_file": "t"}"#).is_err());
    }
}
