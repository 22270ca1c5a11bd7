//! `fsnn report`: merge results files of sweeps into `report.md`,
//! `report.csv` and the Pareto plots.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::aggregate::{PointRow, aggregate, pareto_front};
use super::output::atomic_write;
#[cfg(feature = "cli")]
use super::pareto;
use super::table::coding_name;
use super::welch::{Welch, ci95_half_width, front_cell, front_tests};
use crate::error::{Error, Result};
use crate::outdir::{self, Claim, Kind};
use crate::sweep::results::{self, RunRecord};

/// Options of `fsnn report`.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Results files (or sweep directories holding `results.jsonl`).
    pub inputs: Vec<PathBuf>,
    /// Output directory (default: the first input's directory).
    pub out: Option<PathBuf>,
    /// Do not print the table.
    pub quiet: bool,
}

/// Files written by a report.
#[derive(Clone, Debug)]
pub struct ReportOutcome {
    /// Output directory.
    pub out: PathBuf,
    /// Runs merged.
    pub runs: usize,
    /// Configurations.
    pub points: usize,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Read and merge results files (a directory stands for its `results.jsonl`
/// and its shards' `shard-I/results.jsonl`); a run id seen twice is kept once.
pub fn read_all(inputs: &[PathBuf]) -> Result<Vec<RunRecord>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            // DIR/results.jsonl and the shards of a Slurm sweep, DIR/shard-I/results.jsonl.
            let found = crate::sweep::slurm::results_files(input);
            if found.is_empty() {
                return Err(Error::file(
                    input,
                    "no results.jsonl and no shard-*/results.jsonl in this directory",
                ));
            }
            paths.extend(found);
        } else if input.is_file() {
            paths.push(input.clone());
        } else {
            return Err(Error::file(input, "no such results file"));
        }
    }
    for path in paths {
        let f = results::read(&path)?;
        if f.bad_lines > 0 || f.valid_len < f.file_len {
            eprintln!(
                "warning: {}: skipped {} unreadable line(s) / a partial last line",
                path.display(),
                f.bad_lines
            );
        }
        for r in f.records {
            if seen.insert(r.run_id.clone()) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

fn spikes_cell(row: &PointRow) -> String {
    let v: Vec<String> = row
        .spikes_per_neuron
        .iter()
        .map(|s| format!("{:.3}", s.mean))
        .collect();
    v.join(" ")
}

/// Markdown table of `rows`; with `tests` (one per row, a Pareto front's
/// neighbour tests) a last column holds them.
fn md_table(
    rows: &[&PointRow],
    codings: usize,
    with_setting: bool,
    tests: Option<&[Option<Welch>]>,
) -> String {
    let names: Vec<String> = (0..codings).map(coding_name).collect();
    let mut s = String::new();
    s.push_str("| α / K |");
    if with_setting {
        s.push_str(" setting |");
    }
    s.push_str(&format!(
        " acc % | 95 % CI | spikes per neuron ({}) | spikes / image | SOPs / image | energy / image nJ (f32) | seeds |",
        names.join(" ")
    ));
    if tests.is_some() {
        s.push_str(" vs previous (Welch) |");
    }
    let cols = 8 + usize::from(with_setting) + usize::from(tests.is_some());
    s.push_str(&format!("\n|{}\n", " --- |".repeat(cols)));
    for (j, r) in rows.iter().enumerate() {
        s.push_str(&format!("| {} |", r.alpha_k));
        if with_setting {
            s.push_str(&format!(" {} |", r.setting));
        }
        s.push_str(&format!(
            " {} | {} | {} | {} | {} | {} | {} |",
            r.acc.fmt(2),
            ci_cell(r),
            spikes_cell(r),
            r.spikes_per_image.fmt(1),
            r.sops_per_image.fmt(0),
            format_args!("{:.2}", r.energy_pj_float32.mean / 1e3),
            r.seeds.len()
        ));
        if let Some(t) = tests {
            let delta = j
                .checked_sub(1)
                .map_or(0.0, |p| r.acc.mean - rows[p].acc.mean);
            s.push_str(&format!(" {} |", front_cell(t[j].as_ref(), delta)));
        }
        s.push('\n');
    }
    s
}

/// `± half-width` of the t-based 95 % CI of the accuracy (— for one seed).
fn ci_cell(r: &PointRow) -> String {
    if r.acc.n > 1 {
        format!("± {:.2}", ci95_half_width(&r.acc))
    } else {
        "—".into()
    }
}

/// The section of one Pareto front: its table with the neighbour tests.
fn front_section(rows: &[PointRow], front: &[usize], codings: usize, with_setting: bool) -> String {
    let fr: Vec<&PointRow> = front.iter().map(|&i| &rows[i]).collect();
    let tests = front_tests(rows, front);
    md_table(&fr, codings, with_setting, Some(&tests))
}

/// How to read the last column of a front table.
const FRONT_NOTE: &str = "Sorted by cost. *vs previous*: the accuracy difference to the \
previous (cheaper) configuration on the front and the two-sided p-value of Welch's t-test \
over seeds; `*` marks a difference beyond seed noise (p < 0.05). With 3 seeds the test \
has little power: no `*` means *not shown* to differ, not *equal*.\n\n";

/// The Markdown report.
pub fn markdown(rows: &[PointRow], runs: usize) -> String {
    let codings = rows
        .iter()
        .map(|r| r.spikes_per_neuron.len())
        .max()
        .unwrap_or(0);
    let with_setting = rows.iter().any(|r| !r.setting.is_empty());
    let mut seeds: Vec<usize> = rows.iter().map(|r| r.seeds.len()).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let epochs: HashSet<usize> = rows.iter().map(|r| r.epochs).collect();
    let mut epochs: Vec<usize> = epochs.into_iter().collect();
    epochs.sort_unstable();
    let mut s = String::from("# Sweep report\n\n");
    s.push_str(&format!(
        "{runs} runs, {} configurations, seeds per configuration: {:?}, epochs: {:?}, test images: {}.\n\
         Accuracy is the final test accuracy, mean ± sample std over seeds where there are several; \
         95 % CI: mean ± t(0.975, n − 1)·std/√n (also the error bars of the plots). \
         Spikes per neuron are real spike counts of every FS coding, input coding first \
         (the design document counted half-values and left the input out). \
         Energy: SNN synaptic operations × 0.9 pJ (float32 AC, 45 nm; science.md §6).\n\n",
        rows.len(),
        seeds,
        epochs,
        rows.first().map(|r| r.test_images).unwrap_or(0)
    ));
    let all: Vec<&PointRow> = rows.iter().collect();
    s.push_str("## All configurations\n\n");
    s.push_str(&md_table(&all, codings, with_setting, None));
    let mut by_acc = all.clone();
    by_acc.sort_by(|a, b| {
        b.acc
            .mean
            .total_cmp(&a.acc.mean)
            .then(a.spikes_per_image.mean.total_cmp(&b.spikes_per_image.mean))
            .then(a.index.cmp(&b.index))
    });
    s.push_str("\n## Best accuracy\n\n");
    s.push_str(&md_table(&by_acc, codings, with_setting, None));
    let mut by_spikes = all.clone();
    by_spikes.sort_by(|a, b| {
        a.spikes_per_image
            .mean
            .total_cmp(&b.spikes_per_image.mean)
            .then(b.acc.mean.total_cmp(&a.acc.mean))
            .then(a.index.cmp(&b.index))
    });
    s.push_str("\n## Fewest spikes per image\n\n");
    s.push_str(&md_table(&by_spikes, codings, with_setting, None));
    let fs = pareto_front(rows, |r| r.spikes_per_image.mean);
    s.push_str("\n## Pareto front: accuracy vs spikes per image\n\n");
    s.push_str(FRONT_NOTE);
    s.push_str(&front_section(rows, &fs, codings, with_setting));
    s.push_str("\n![accuracy vs spikes per image](pareto-spikes.svg)\n");
    let fe = pareto_front(rows, |r| r.energy_pj_float32.mean);
    s.push_str("\n## Pareto front: accuracy vs energy per image\n\n");
    s.push_str(FRONT_NOTE);
    s.push_str(&front_section(rows, &fe, codings, with_setting));
    s.push_str("\n![accuracy vs energy per image](pareto-energy.svg)\n");
    s
}

/// The CSV report: one row per configuration, means and stds.
pub fn csv(rows: &[PointRow]) -> Result<String> {
    let codings = rows
        .iter()
        .map(|r| r.spikes_per_neuron.len())
        .max()
        .unwrap_or(0);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "alpha_k",
        "alpha",
        "k",
        "setting",
        "seeds",
        "n",
        "acc_mean",
        "acc_std",
        "best_acc_mean",
        "best_acc_std",
        "acc_ci95",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for c in 0..codings {
        header.push(format!("spikes_per_neuron_{}_mean", coding_name(c)));
        header.push(format!("spikes_per_neuron_{}_std", coding_name(c)));
    }
    for h in [
        "spikes_per_image_mean",
        "spikes_per_image_std",
        "sops_per_image_mean",
        "energy_pj_float32_mean",
        "energy_pj_int8_mean",
        "latency_steps",
        "epochs",
        "pareto_spikes",
        "pareto_energy",
        "pareto_spikes_p_prev",
        "pareto_energy_p_prev",
    ] {
        header.push(h.into());
    }
    let err = |e: csv::Error| Error::Sweep(format!("cannot write CSV: {e}"));
    w.write_record(&header).map_err(err)?;
    let join = |v: Vec<String>| v.join(" ");
    let p_spikes = front_p_values(rows, |r| r.spikes_per_image.mean);
    let p_energy = front_p_values(rows, |r| r.energy_pj_float32.mean);
    for (i, r) in rows.iter().enumerate() {
        let mut rec = vec![
            r.alpha_k.clone(),
            join(r.alpha.iter().map(|a| a.to_string()).collect()),
            join(r.k.iter().map(|k| k.to_string()).collect()),
            r.setting.clone(),
            join(r.seeds.iter().map(|s| s.to_string()).collect()),
            r.seeds.len().to_string(),
            r.acc.mean.to_string(),
            r.acc.std.to_string(),
            r.best_acc.mean.to_string(),
            r.best_acc.std.to_string(),
            ci95_half_width(&r.acc).to_string(),
        ];
        for c in 0..codings {
            match r.spikes_per_neuron.get(c) {
                Some(s) => {
                    rec.push(s.mean.to_string());
                    rec.push(s.std.to_string());
                }
                None => rec.extend([String::new(), String::new()]),
            }
        }
        rec.extend([
            r.spikes_per_image.mean.to_string(),
            r.spikes_per_image.std.to_string(),
            r.sops_per_image.mean.to_string(),
            r.energy_pj_float32.mean.to_string(),
            r.energy_pj_int8.mean.to_string(),
            r.latency_steps.to_string(),
            r.epochs.to_string(),
            r.pareto_spikes.to_string(),
            r.pareto_energy.to_string(),
            p_spikes[i].clone(),
            p_energy[i].clone(),
        ]);
        w.write_record(&rec).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Sweep(format!("cannot write CSV: {e}")))?;
    Ok(String::from_utf8(bytes).expect("CSV is UTF-8"))
}

/// A report replaces earlier reports in its directory, which may hold sweep
/// results but nothing else ([`crate::outdir`]).
const REPORT_CLAIM: Claim = Claim::Fresh { overwrite: false };

/// Per row: the Welch p-value against the previous neighbour on the
/// Pareto front of `cost` (empty off the front, for its first
/// configuration, and for single seeds).
fn front_p_values(rows: &[PointRow], cost: impl Fn(&PointRow) -> f64) -> Vec<String> {
    let front = pareto_front(rows, cost);
    let mut out = vec![String::new(); rows.len()];
    for (&i, w) in front.iter().zip(front_tests(rows, &front)) {
        if let Some(w) = w {
            out[i] = w.p.to_string();
        }
    }
    out
}

/// Run `fsnn report`.
pub fn report(opts: &ReportOptions) -> Result<ReportOutcome> {
    if opts.inputs.is_empty() {
        return Err(Error::config("RESULTS", "give at least one results file"));
    }
    let records = read_all(&opts.inputs)?;
    if records.is_empty() {
        return Err(Error::file(&opts.inputs[0], "no finished runs to report"));
    }
    let out = opts.out.clone().unwrap_or_else(|| {
        let first = &opts.inputs[0];
        if first.is_dir() {
            first.clone()
        } else {
            match first.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            }
        }
    });
    outdir::precheck(&out, Kind::Report, REPORT_CLAIM)?;
    let rows = aggregate(&records);
    let md = markdown(&rows, records.len());
    let csv_text = csv(&rows)?;
    let _held = outdir::claim(&out, Kind::Report, REPORT_CLAIM)?;
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = out.join(name);
        atomic_write(&p, bytes)?;
        files.push(p);
        Ok(())
    };
    write("report.md", md.as_bytes())?;
    write("report.csv", csv_text.as_bytes())?;
    #[cfg(feature = "cli")] // without plotters: the tables only
    match pareto::pareto_plots(&rows, &out) {
        Ok(mut written) => files.append(&mut written),
        Err(e) => eprintln!("warning: plots skipped: {}", crate::error::one_line(&e)),
    }
    if !opts.quiet {
        print!("{md}");
        println!();
        for f in &files {
            println!("wrote {}", f.display());
        }
    }
    Ok(ReportOutcome {
        out: out.to_path_buf(),
        runs: records.len(),
        points: rows.len(),
        files,
    })
}

/// Does `path` look like a report directory (used by tests and docs)?
pub fn report_files(dir: &Path) -> Vec<PathBuf> {
    outdir::REPORT_FILES.iter().map(|n| dir.join(n)).collect()
}
