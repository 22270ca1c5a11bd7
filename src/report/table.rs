//! Plain-text tables for the terminal.

use crate::metrics::EvalResult;
use crate::model::{Cnn, Network};

/// Name of FS coding `c`: `input`, `h1`, `h2`, ... (see
/// [`Network::coding_name`] for LIF's `out`).
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
pub fn final_table(model: &Network, test: &EvalResult, best: Option<(f64, usize)>) -> String {
    let mut s = String::new();
    let steps = match model {
        Network::Cnn(_) => "  K",
        Network::Lif(_) => "  T",
    };
    s.push_str(&format!(
        "coding  neurons {steps}      alpha  spikes/neuron  spikes/image  SOPs/image\n"
    ));
    for c in 0..model.num_codings() {
        let alpha = match model {
            Network::Cnn(Cnn { neurons, .. }) => {
                format!("{}", 2.0 * neurons[c].coding.tables.t[0])
            }
            Network::Lif(m) => match (&m.input_coding, c) {
                (Some(ic), 0) => format!("{}", 2.0 * ic.tables.t[0]),
                _ => "-".into(),
            },
        };
        s.push_str(&format!(
            "{:<7} {:>7} {:>3} {:>10} {:>14.4} {:>13.2} {:>11.1}\n",
            model.coding_name(c),
            model.coding_width(c),
            model.coding_steps(c),
            alpha,
            test.spikes_per_neuron[c],
            test.spikes_total[c] as f64 / test.images.max(1) as f64,
            test.cost.sops_per_coding[c],
        ));
    }
    let c = &test.cost;
    s.push_str(&format!(
        "total   {:>7} {:>3} {:>10} {:>14.4} {:>13.2} {:>11.1}\n",
        coding_neurons(model),
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
    if let (Some(e), Some(snn), Some(ann)) =
        (c.user_energy, c.snn_energy_pj_user, c.ann_energy_pj_user)
    {
        s.push_str(&format!(
            "energy/image at MAC {} pJ, AC {} pJ: SNN {:.2} nJ vs ANN {:.2} nJ\n",
            e.mac_pj,
            e.ac_pj,
            snn / 1e3,
            ann / 1e3
        ));
    }
    s.push_str(&format!(
        "latency: {} steps (pipelined: a new image every {} steps)\n",
        c.latency_steps, c.pipeline_interval_steps
    ));
    s
}

/// Spikes per neuron over all codings: all spikes ÷ (all coding neurons × images).
pub fn mean_spikes_per_neuron(model: &Network, test: &EvalResult) -> f64 {
    test.spikes_per_image / coding_neurons(model).max(1) as f64
}

/// Neurons behind all spike counters.
pub fn coding_neurons(model: &Network) -> usize {
    (0..model.num_codings())
        .map(|c| model.coding_width(c))
        .sum()
}
