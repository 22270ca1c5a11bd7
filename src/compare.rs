//! `fsnn compare`: train each config over several seeds (one single-
//! threaded training per worker thread, data loaded once per dataset and
//! shared), then write `report.md`, `report.csv`, `runs.csv`, `bars.png` and
//! `bars.svg` into the output directory, each atomically.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::{Config, EnergyConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::outdir::{self, Claim, Kind};
use crate::report::bars::{Panel, bars};
use crate::report::output::{atomic_write, temp_path};
use crate::run::{TrainOptions, load_data, resolve_config};
use crate::train::{Silent, Summary, execute};

/// Options of `fsnn compare`.
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// Config files, in report order.
    pub configs: Vec<PathBuf>,
    /// Seeds per config: `seed, seed + 1, ...` from each config's seed.
    pub seeds: usize,
    /// Worker threads (default: available cores).
    pub jobs: Option<usize>,
    /// Output directory (new or empty; see [`crate::outdir`]).
    pub out: PathBuf,
    /// Replace an earlier comparison in `out`.
    pub overwrite: bool,
    /// Dataset directory.
    pub data: Option<PathBuf>,
    /// Override `train.epochs` of every config.
    pub epochs: Option<usize>,
    /// Override `data.train_limit` of every config.
    pub train_limit: Option<usize>,
    /// Override `data.test_limit` of every config.
    pub test_limit: Option<usize>,
    /// User energy figures (override any `[cost]` of the configs).
    pub energy: Option<EnergyConfig>,
    /// No progress lines.
    pub quiet: bool,
}

/// Mean and sample standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

/// The aggregated numbers of one config over its seeds.
struct Row {
    name: String,
    file: String,
    neuron: String,
    runs: Vec<Summary>,
}

impl Row {
    fn col(&self, f: impl Fn(&Summary) -> f64) -> (f64, f64) {
        mean_std(&self.runs.iter().map(f).collect::<Vec<_>>())
    }

    fn spikes_per_neuron(&self) -> Vec<(String, f64)> {
        let first = &self.runs[0];
        (0..first.spikes_per_neuron.len())
            .map(|c| {
                let name = first.coding_names.get(c).cloned().unwrap_or_default();
                (name, self.col(|s| s.spikes_per_neuron[c]).0)
            })
            .collect()
    }
}

fn resolve(opts: &CompareOptions) -> Result<Vec<Config>> {
    if opts.configs.is_empty() {
        return Err(Error::config("--config", "give at least one config"));
    }
    if opts.seeds == 0 {
        return Err(Error::config("--seeds", "must be > 0"));
    }
    let mut out = Vec::new();
    for path in &opts.configs {
        let mut cfg = resolve_config(&TrainOptions {
            config: path.clone(),
            epochs: opts.epochs,
            ..Default::default()
        })?;
        if let Some(n) = opts.train_limit {
            cfg.data.train_limit = n;
        }
        if let Some(n) = opts.test_limit {
            cfg.data.test_limit = n;
        }
        if opts.energy.is_some() {
            cfg.cost = opts.energy;
        }
        cfg.validate()
            .map_err(|e| Error::file(path, e.to_string()))?;
        out.push(cfg);
    }
    Ok(out)
}

type Split = Arc<(Dataset, Dataset)>;

/// Run `fsnn compare`.
pub fn run(opts: &CompareOptions) -> Result<()> {
    let configs = resolve(opts)?;
    let claim = Claim::Fresh {
        overwrite: opts.overwrite,
    };
    outdir::precheck(&opts.out, Kind::Compare, claim)?;
    // data: once per (dataset, size, limits)
    let mut cache: HashMap<String, Split> = HashMap::new();
    let mut data: Vec<Split> = Vec::new();
    for cfg in &configs {
        let key = format!("{:?}", cfg.data);
        if !cache.contains_key(&key) {
            let (tr, te) = load_data(cfg, opts.data.as_deref())?;
            cache.insert(key.clone(), Arc::new((tr, te)));
        }
        data.push(cache[&key].clone());
    }
    let _held = outdir::claim(&opts.out, Kind::Compare, claim)?;
    let jobs: Vec<(usize, Config)> = configs
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            (0..opts.seeds).map(move |s| {
                let mut c = c.clone();
                c.seed = c.seed.wrapping_add(s as u64);
                (i, c)
            })
        })
        .collect();
    let workers = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len());
    if !opts.quiet {
        eprintln!("compare: {} trainings on {workers} thread(s)", jobs.len());
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Summary>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some((ci, cfg)) = jobs.get(j) else { break };
                    let d = &data[*ci];
                    let r = execute(cfg, &d.0, &d.1, None, &mut Silent, None).map(|r| r.0);
                    if !opts.quiet {
                        match &r {
                            Ok(sm) => eprintln!(
                                "  {} seed {}: {:.2}% ({:.0} s elapsed)",
                                cfg.name,
                                cfg.seed,
                                sm.test_acc,
                                start.elapsed().as_secs_f64()
                            ),
                            Err(e) => eprintln!("  {} seed {}: {}", cfg.name, cfg.seed, e.line()),
                        }
                    }
                    results.lock().expect("no panics")[j] = Some(r);
                }
            });
        }
    });
    let mut rows: Vec<Row> = configs
        .iter()
        .zip(&opts.configs)
        .map(|(c, p)| Row {
            name: c.name.clone(),
            file: p.display().to_string(),
            neuron: String::new(),
            runs: Vec::new(),
        })
        .collect();
    for ((ci, _), r) in jobs.iter().zip(results.into_inner().expect("no panics")) {
        let sm = r.expect("every job ran")?;
        rows[*ci].neuron = sm.neuron.clone();
        rows[*ci].runs.push(sm);
    }
    write_reports(opts, &rows)
}

fn write_reports(opts: &CompareOptions, rows: &[Row]) -> Result<()> {
    let out = &opts.out;
    atomic_write(&out.join("report.md"), markdown(opts, rows).as_bytes())?;
    atomic_write(&out.join("report.csv"), csv_summary(rows).as_bytes())?;
    atomic_write(&out.join("runs.csv"), csv_runs(rows).as_bytes())?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let panels = vec![
        Panel {
            title: "test accuracy % (± std)".into(),
            values: rows.iter().map(|r| r.col(|s| s.test_acc)).collect(),
            zoom: true,
        },
        Panel {
            title: "spikes / image".into(),
            values: rows.iter().map(|r| r.col(|s| s.spikes_per_image)).collect(),
            zoom: false,
        },
        Panel {
            title: "SOPs / image".into(),
            values: rows.iter().map(|r| r.col(|s| s.sops_per_image)).collect(),
            zoom: false,
        },
        Panel {
            title: "SNN energy / image, nJ (fp32 45nm)".into(),
            values: rows
                .iter()
                .map(|r| r.col(|s| s.cost.snn_energy_pj_float32 / 1e3))
                .collect(),
            zoom: false,
        },
    ];
    // draw to temporaries in the output directory, then rename
    let tmp_png = temp_path(out, "bars.png");
    let tmp_svg = temp_path(out, "bars.svg");
    bars(&names, &panels, &tmp_png, &tmp_svg)?;
    for (tmp, dst) in [(tmp_png, "bars.png"), (tmp_svg, "bars.svg")] {
        let dst = out.join(dst);
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    }
    Ok(())
}

fn pm(v: (f64, f64), prec: usize) -> String {
    format!("{:.prec$} ± {:.prec$}", v.0, v.1)
}

fn markdown(opts: &CompareOptions, rows: &[Row]) -> String {
    let mut s = String::from("# fsnn compare\n\n");
    s.push_str(&format!(
        "{} seed(s) per config; test-set numbers after the last epoch; mean ± sample std over seeds. \
         Spikes are counted per test image (LIF: over all T steps); SOPs = spikes × fan-out. \
         Energy per image: SNN = SOPs·AC + MACs the SNN still does (analog LIF input through \
         layer 1, once per image)·MAC; ANN = one MAC per weight (45 nm, Horowitz 2014: \
         fp32 MAC 4.6 / AC 0.9 pJ, int8 MAC 0.23 / AC 0.03 pJ).\n\n",
        opts.seeds
    ));
    s.push_str("| config | neuron | file | accuracy % | spikes/image | SOPs/image | SNN MACs/image | SNN fp32 nJ | ANN fp32 nJ | SNN int8 nJ | ANN int8 nJ | latency steps | pipelined interval | s/epoch |\n");
    s.push_str(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let c = &r.runs[0].cost;
        s.push_str(&format!(
            "| {} | {} | `{}` | {} | {} | {} | {:.0} | {} | {:.1} | {} | {:.2} | {} | {} | {:.2} |\n",
            r.name,
            r.neuron,
            r.file,
            pm(r.col(|s| s.test_acc), 2),
            pm(r.col(|s| s.spikes_per_image), 1),
            pm(r.col(|s| s.sops_per_image), 0),
            c.snn_macs_per_image,
            pm(r.col(|s| s.cost.snn_energy_pj_float32 / 1e3), 2),
            c.ann_energy_pj_float32 / 1e3,
            pm(r.col(|s| s.cost.snn_energy_pj_int8 / 1e3), 3),
            c.ann_energy_pj_int8 / 1e3,
            c.latency_steps,
            c.pipeline_interval_steps,
            r.col(|s| s.seconds_per_epoch).0,
        ));
    }
    if let Some(e) = rows[0].runs[0].cost.user_energy {
        s.push_str(&format!(
            "\nAt the user's figures (MAC {} pJ, AC {} pJ):\n\n| config | SNN nJ/image | ANN nJ/image |\n| --- | --- | --- |\n",
            e.mac_pj, e.ac_pj
        ));
        for r in rows {
            s.push_str(&format!(
                "| {} | {} | {:.2} |\n",
                r.name,
                pm(r.col(|s| s.cost.snn_energy_pj_user.unwrap_or(0.0) / 1e3), 3),
                r.runs[0].cost.ann_energy_pj_user.unwrap_or(0.0) / 1e3
            ));
        }
    }
    s.push_str("\nSpikes per neuron per image, per layer (input first; mean over seeds):\n\n| config | spikes per neuron |\n| --- | --- |\n");
    for r in rows {
        let cells: Vec<String> = r
            .spikes_per_neuron()
            .iter()
            .map(|(n, v)| format!("{n} {v:.3}"))
            .collect();
        s.push_str(&format!("| {} | {} |\n", r.name, cells.join(", ")));
    }
    s.push_str("\n![bars](bars.svg)\n");
    s
}

const CSV_HEAD: &str = "config,neuron,seeds,acc_mean,acc_std,spikes_per_image,sops_per_image,snn_macs_per_image,snn_energy_nj_fp32,ann_energy_nj_fp32,snn_energy_nj_int8,ann_energy_nj_int8,snn_energy_nj_user,ann_energy_nj_user,latency_steps,pipeline_interval_steps,seconds_per_epoch,spikes_per_neuron";

fn csv_summary(rows: &[Row]) -> String {
    let mut s = format!("{CSV_HEAD}\n");
    for r in rows {
        let c = &r.runs[0].cost;
        let acc = r.col(|s| s.test_acc);
        let opt = |v: Option<f64>| v.map(|v| format!("{}", v / 1e3)).unwrap_or_default();
        let spn: Vec<String> = r
            .spikes_per_neuron()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.name,
            r.neuron,
            r.runs.len(),
            acc.0,
            acc.1,
            r.col(|s| s.spikes_per_image).0,
            r.col(|s| s.sops_per_image).0,
            c.snn_macs_per_image,
            r.col(|s| s.cost.snn_energy_pj_float32).0 / 1e3,
            c.ann_energy_pj_float32 / 1e3,
            r.col(|s| s.cost.snn_energy_pj_int8).0 / 1e3,
            c.ann_energy_pj_int8 / 1e3,
            opt(r.runs[0]
                .cost
                .snn_energy_pj_user
                .map(|_| { r.col(|s| s.cost.snn_energy_pj_user.unwrap_or(0.0)).0 })),
            opt(c.ann_energy_pj_user),
            c.latency_steps,
            c.pipeline_interval_steps,
            r.col(|s| s.seconds_per_epoch).0,
            spn.join(";"),
        ));
    }
    s
}

fn csv_runs(rows: &[Row]) -> String {
    let mut s = String::from(
        "config,seed,test_acc,best_test_acc,spikes_per_image,sops_per_image,snn_energy_nj_fp32,seconds_per_epoch,spikes_per_neuron\n",
    );
    for r in rows {
        for sm in &r.runs {
            let spn: Vec<String> = sm.spikes_per_neuron.iter().map(|v| v.to_string()).collect();
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                r.name,
                sm.seed,
                sm.test_acc,
                sm.best_test_acc,
                sm.spikes_per_image,
                sm.sops_per_image,
                sm.cost.snn_energy_pj_float32 / 1e3,
                sm.seconds_per_epoch,
                spn.join(";")
            ));
        }
    }
    s
}
