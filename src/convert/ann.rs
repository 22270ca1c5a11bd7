//! `fsnn convert`: turn a trained ANN (the `relu` variant: clipped ReLU at
//! each coding's range) into an FS network by swapping its activations for
//! FS codings — binary (K, α) or fitted tables — then evaluate it, and
//! optionally fine-tune it with STBP.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fit::FitResult;
use crate::checkpoint;
use crate::config::{Config, TableConfig};
use crate::error::{Error, Result};
use crate::metrics::{EvalResult, evaluate};
use crate::model::Network;
use crate::neuron::Variant;
use crate::outdir::{self, Claim, Kind};
use crate::report::output::write_json;
use crate::run::load_data;
use crate::train::job::{Observer, Silent, execute, fresh_progress};
use crate::train::{EpochStats, Trainer};

/// Options of `fsnn convert`.
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// The trained ANN (`model.safetensors` of a `variant = "relu"` run).
    pub checkpoint: PathBuf,
    /// New K per coding (default: the ANN's config).
    pub k: Option<Vec<usize>>,
    /// New α per coding (default: the ANN's config).
    pub alpha: Option<Vec<f32>>,
    /// Tables fitted by `fsnn fit` (its `fit.json`) for the hidden codings.
    pub tables: Option<PathBuf>,
    /// Convert to IF neurons over this many steps (rate coding) instead
    /// of FS codings.
    pub if_steps: Option<usize>,
    /// STBP fine-tuning epochs after the conversion (0 = none).
    pub finetune_epochs: usize,
    /// Fine-tuning learning rate (default: a tenth of the ANN's).
    pub finetune_lr: Option<f32>,
    /// Output directory (new or empty; see [`crate::outdir`]).
    pub out: PathBuf,
    /// Replace an earlier conversion in `out`.
    pub overwrite: bool,
    /// Dataset directory.
    pub data: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
}

/// `convert.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConvertReport {
    /// The ANN on the test set (no spikes).
    pub ann: EvalResult,
    /// The converted FS network, before fine-tuning.
    pub converted: EvalResult,
    /// After fine-tuning, if any.
    pub finetuned: Option<EvalResult>,
    /// The converted network's config.
    pub config: String,
}

/// The FS config of the converted network.
fn converted_config(ann: &Config, o: &ConvertOptions) -> Result<Config> {
    let mut cfg = ann.clone();
    cfg.name = format!("{}-fs", ann.name);
    cfg.model.variant = Variant::Fs;
    if let Some(k) = &o.k {
        cfg.model.k = k.clone();
    }
    if let Some(a) = &o.alpha {
        cfg.model.alpha = a.clone();
    }
    if let Some(p) = &o.tables {
        crate::data::check_regular_file(p)?;
        let text =
            std::fs::read_to_string(p).map_err(|e| Error::file(p, format!("cannot read: {e}")))?;
        let fit: FitResult = serde_json::from_str(&text)
            .map_err(|e| Error::file(p, format!("not a fit.json written by fsnn fit: {e}")))?;
        if [&fit.t, &fit.h, &fit.d].iter().any(|v| v.len() != fit.k) {
            return Err(Error::file(
                p,
                format!(
                    "k = {} but T, h and d have {}, {} and {} values",
                    fit.k,
                    fit.t.len(),
                    fit.h.len(),
                    fit.d.len()
                ),
            ));
        }
        cfg.model.tables = (1..cfg.num_codings())
            .map(|c| TableConfig {
                coding: c,
                t: fit.t.clone(),
                h: fit.h.clone(),
                d: fit.d.clone(),
            })
            .collect();
        for c in 1..cfg.num_codings() {
            if let Some(k) = cfg.model.k.get_mut(c) {
                *k = fit.k;
            }
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The fine-tuning config (`None` without fine-tuning epochs), validated
/// before anything is written.
fn finetune_config(cfg: &Config, ann_cfg: &Config, o: &ConvertOptions) -> Result<Option<Config>> {
    if o.finetune_epochs == 0 {
        return Ok(None);
    }
    let mut ft = cfg.clone();
    ft.name = format!("{}-finetuned", cfg.name);
    ft.train.epochs = o.finetune_epochs;
    ft.train.lr = o.finetune_lr.unwrap_or(ann_cfg.train.lr * 0.1);
    ft.train.lr_milestones.clear();
    ft.validate()
        .map_err(|e| Error::arg("--finetune-lr", e.to_string()))?;
    Ok(Some(ft))
}

/// Run `fsnn convert`.
pub fn run(o: &ConvertOptions) -> Result<ConvertReport> {
    let (ann, ann_cfg) = checkpoint::load(&o.checkpoint)?;
    if matches!(ann, Network::Lif(_)) {
        return Err(Error::file(
            &o.checkpoint,
            "convert needs an FS MLP or conv net checkpoint (neuron = \"fs\")",
        ));
    }
    if ann_cfg.model.variant != Variant::Relu {
        return Err(Error::file(
            &o.checkpoint,
            "convert needs an ANN checkpoint (model.variant = \"relu\"); this one is already a spiking network",
        ));
    }
    if o.out.exists() && !o.out.is_dir() {
        return Err(Error::file(
            &o.out,
            "output path exists and is not a directory",
        ));
    }
    if o.if_steps.is_some() && !ann_cfg.model.arch.is_empty() {
        return Err(Error::file(
            &o.checkpoint,
            "convert --neuron if needs an MLP checkpoint (model.layers)",
        ));
    }
    let claim = Claim::Fresh {
        overwrite: o.overwrite,
    };
    outdir::precheck(&o.out, Kind::Convert, claim)?;
    let cfg = match o.if_steps {
        Some(t) => super::rate::if_config(&ann_cfg, t)?,
        None => converted_config(&ann_cfg, o)?,
    };
    let ft = finetune_config(&cfg, &ann_cfg, o)?;
    let mut fs = Network::build(&cfg);
    for (dst, src) in fs.layers_mut().iter_mut().zip(ann.layers()) {
        dst.weight.assign(&src.weight);
        dst.bias.assign(&src.bias);
    }
    if o.if_steps.is_some() {
        super::rate::normalize(&ann, &mut fs);
    }
    let (train, test) = load_data(&cfg, o.data.as_deref())?;
    let bs = cfg.train.eval_batch_size;
    let ann_res = evaluate(&ann, &test, &mut ann.workspace(bs), bs);
    let conv_res = evaluate(&fs, &test, &mut fs.workspace(bs), bs);
    let _held = outdir::claim(&o.out, Kind::Convert, claim)?;
    checkpoint::save(&fs, &cfg, &o.out.join("model.safetensors"))?;
    let mut finetuned = None;
    if let Some(ft) = ft {
        let mut trainer = Trainer::new(ft.clone());
        trainer.model = fs.clone();
        let progress = fresh_progress(&trainer.model);
        let dir = o.out.join("finetune");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Under the lock of the conversion's directory.
        outdir::remove_stale_temps(&dir)?;
        let mut lines = Lines;
        let obs: &mut dyn Observer = if o.quiet { &mut Silent } else { &mut lines };
        let (_, _, last) = execute(
            &ft,
            &train,
            &test,
            Some(&dir),
            obs,
            Some((trainer, progress)),
        )?;
        finetuned = Some(last);
    }
    let report = ConvertReport {
        ann: ann_res,
        converted: conv_res,
        finetuned,
        config: cfg.to_toml(),
    };
    write_json(&o.out.join("convert.json"), &report)?;
    if !o.quiet {
        print_report(&report, &o.out);
    }
    Ok(report)
}

/// One line per fine-tuning epoch.
struct Lines;

impl Observer for Lines {
    fn epoch(&mut self, s: &EpochStats) {
        println!(
            "fine-tune epoch {:>3}  loss {:.5}  test {:6.2}%  spikes/image {:.1}",
            s.epoch, s.train_loss, s.test.accuracy, s.test.spikes_per_image
        );
    }
}

fn print_report(r: &ConvertReport, out: &Path) {
    let row = |name: &str, e: &EvalResult| {
        let spn: Vec<String> = e
            .spikes_per_neuron
            .iter()
            .map(|s| format!("{s:.3}"))
            .collect();
        println!(
            "{name:<12} {:>7.2}%  spikes/image {:>8.1}  SOPs/image {:>9.0}  spikes/neuron [{}]",
            e.accuracy,
            e.spikes_per_image,
            e.cost.sops_per_image,
            spn.join(" ")
        );
    };
    row("ANN", &r.ann);
    row("converted", &r.converted);
    if let Some(f) = &r.finetuned {
        row("fine-tuned", f);
    }
    println!("results in {}", out.display());
}
