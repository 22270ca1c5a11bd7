//! Preallocated activation and gradient buffers of an [`Mlp`](super::Mlp),
//! sized for a maximum batch, so that training allocates nothing per step.

/// Buffers for one forward/backward pass of up to `capacity` rows.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// Rows the buffers can hold.
    pub capacity: usize,
    /// `u[c]`: what FS coding `c` receives `[batch × width_c]` (pixels for
    /// c = 0, the membrane `W·f̂ + b` of the previous layer otherwise).
    pub u: Vec<Vec<f32>>,
    /// `a[c]`: coded output f̂ of coding `c`, the input of layer `c`.
    pub a: Vec<Vec<f32>>,
    /// `du[c]`: surrogate derivative ∂a/∂u of coding `c` (training only;
    /// empty for the input coding, which needs no gradient).
    pub du: Vec<Vec<f32>>,
    /// Output membrane `[batch × classes]`.
    pub out: Vec<f32>,
    /// Gradient w.r.t. the output membrane.
    pub g_out: Vec<f32>,
    /// Gradient w.r.t. a coding's output (largest width).
    pub g_a: Vec<f32>,
    /// Gradient w.r.t. a layer's membrane (largest width).
    pub g_u: Vec<f32>,
    /// Spikes emitted by each coding since the last reset.
    pub spikes: Vec<u64>,
    /// Loss weight of one spike of each coding in the current batch (the
    /// spike penalty; 0 = none), set by the trainer.
    pub spike_lam: Vec<f32>,
    /// Rows whose `du` the last forward pass filled (0 after an
    /// evaluation forward): backward checks it.
    pub train_rows: usize,
}

impl Workspace {
    /// Buffers for a network of the given widths (input first).
    pub fn new(widths: &[usize], capacity: usize) -> Self {
        let n = widths.len() - 1;
        let maxw = widths.iter().copied().max().unwrap_or(0);
        Workspace {
            capacity,
            u: (0..n).map(|c| vec![0.0; capacity * widths[c]]).collect(),
            a: (0..n).map(|c| vec![0.0; capacity * widths[c]]).collect(),
            du: (0..n)
                .map(|c| {
                    if c == 0 {
                        Vec::new()
                    } else {
                        vec![0.0; capacity * widths[c]]
                    }
                })
                .collect(),
            out: vec![0.0; capacity * widths[n]],
            g_out: vec![0.0; capacity * widths[n]],
            g_a: vec![0.0; capacity * maxw],
            g_u: vec![0.0; capacity * maxw],
            spikes: vec![0; n],
            spike_lam: vec![0.0; n],
            train_rows: 0,
        }
    }

    /// Input buffer (coding 0's input) for `batch` rows.
    pub fn input_mut(&mut self, batch: usize) -> &mut [f32] {
        let w = self.u[0].len() / self.capacity;
        &mut self.u[0][..batch * w]
    }

    /// Zero the spike counters.
    pub fn reset_spikes(&mut self) {
        self.spikes.iter_mut().for_each(|s| *s = 0);
    }
}
