//! Plain-text tables for the terminal.

use crate::metrics::EvalResult;
use crate::model::Mlp;

/// Name of coding `c`: `input`, `h1`, `h2`, ...
pub fn coding_name(c: usize) -> String {
    if c == 0 {
        "input".into()
    } else {
        format!("h{c}")
    }
}

/// One line per epoch: loss, accuracies, spikes per neuron per coding, time.
#[allow(clippy::too_many_arguments)]
pub fn epoch_line(
    epoch: usize,
    epochs: usize,
    lr: f32,
    loss: f64,
    train_acc: f64,
    test: &EvalResult,
    seconds: f64,
) -> String {
    let spikes: Vec<String> = test
        .spikes_per_neuron
        .iter()
        .map(|s| format!("{s:.3}"))
        .collect();
    format!(
        "epoch {epoch:>3}/{epochs}  lr {lr:.0e}  loss {loss:.5}  train {train_acc:6.2}%  test {:6.2}%  spikes/neuron [{}]  {seconds:.2}s",
        test.accuracy,
        spikes.join(" ")
    )
}

/// The final table: one row per FS coding, then totals.
pub fn final_table(model: &Mlp, test: &EvalResult, best: Option<(f64, usize)>) -> String {
    let mut s = String::new();
    s.push_str("coding  neurons   K      alpha  spikes/neuron  spikes/image  SOPs/image\n");
    for (c, coding) in model.codings.iter().enumerate() {
        let alpha = 2.0 * coding.tables.t[0];
        s.push_str(&format!(
            "{:<7} {:>7} {:>3} {:>10} {:>14.4} {:>13.2} {:>11.1}\n",
            coding_name(c),
            model.widths[c],
            coding.k(),
            format!("{alpha}"),
            test.spikes_per_neuron[c],
            test.spikes_total[c] as f64 / test.images.max(1) as f64,
            test.cost.sops_per_coding[c],
        ));
    }
    let c = &test.cost;
    s.push_str(&format!(
        "total   {:>7} {:>3} {:>10} {:>14.4} {:>13.2} {:>11.1}\n",
        model.widths[..model.codings.len()].iter().sum::<usize>(),
        c.latency_steps,
        "",
        mean_spikes_per_neuron(model, test),
        test.spikes_per_image,
        c.sops_per_image,
    ));
    match best {
        Some((acc, epoch)) => s.push_str(&format!(
            "test accuracy {:.2}% (best {acc:.2}% at epoch {epoch}) on {} images\n",
            test.accuracy, test.images
        )),
        None => s.push_str(&format!(
            "test accuracy {:.2}% on {} images\n",
            test.accuracy, test.images
        )),
    }
    s.push_str(&format!(
        "energy/image: SNN {:.1} nJ vs same-shape ANN {:.1} nJ (float32, 45 nm); SNN {:.2} nJ vs ANN {:.2} nJ (int8)\n",
        c.snn_energy_pj_float32 / 1e3,
        c.ann_energy_pj_float32 / 1e3,
        c.snn_energy_pj_int8 / 1e3,
        c.ann_energy_pj_int8 / 1e3,
    ));
    s.push_str(&format!(
        "latency: {} steps (pipelined: a new image every {} steps)\n",
        c.latency_steps, c.pipeline_interval_steps
    ));
    s
}

/// Spikes per neuron over all codings: all spikes ÷ (all coding neurons × images).
pub fn mean_spikes_per_neuron(model: &Mlp, test: &EvalResult) -> f64 {
    let neurons: usize = model.widths[..model.codings.len()].iter().sum();
    test.spikes_per_image / neurons.max(1) as f64
}
