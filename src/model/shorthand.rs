//! `model.layers`, the MLP shorthand, as the layer list it stands for.
//!
//! An FS MLP of widths `[n_0, n_1, ..., n_L]` codes its input with FS
//! coding 0, and every hidden membrane with the next coding, before each
//! synaptic layer; the last layer is the non-spiking output:
//!
//! ```text
//! [121, 64, 124, 10]  →  ["fs", "fc 64", "fs", "fc 124", "fs", "fc 10"]
//! ```
//!
//! so the i-th `fs` of the list is coding i of `model.k`, `model.alpha`,
//! `model.learn` and `[[model.tables]]` (input coding first), exactly as
//! for the MLP.

use super::arch::{Plan, plan_from};

/// The layer list of the FS MLP of `widths` (input first, at least two).
pub fn mlp_arch(widths: &[usize]) -> Vec<String> {
    widths[1..]
        .iter()
        .flat_map(|w| ["fs".to_string(), format!("fc {w}")])
        .collect()
}

/// The checked plan of [`mlp_arch`] for `widths[0]` input features.
///
/// Panics on widths that a validated config cannot hold (fewer than two,
/// a zero width).
pub fn mlp_plan(widths: &[usize]) -> Plan {
    let classes = *widths.last().expect("widths");
    plan_from(&mlp_arch(widths), (widths[0], 1, 1), Some(classes)).expect("validated widths")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::arch::Op;

    #[test]
    fn reference_widths_expand_to_alternating_fs_and_fc() {
        let arch = mlp_arch(&[121, 64, 124, 64, 124, 10]);
        let want = [
            "fs", "fc 64", "fs", "fc 124", "fs", "fc 64", "fs", "fc 124", "fs", "fc 10",
        ];
        assert_eq!(arch, want);
    }

    #[test]
    fn plan_numbers_codings_and_layers_as_the_mlp() {
        let widths = [16, 12, 8, 10];
        let p = mlp_plan(&widths);
        let want = vec![
            Op::Fs(0),
            Op::Fc {
                layer: 0,
                inputs: 16,
                outputs: 12,
            },
            Op::Fs(1),
            Op::Fc {
                layer: 1,
                inputs: 12,
                outputs: 8,
            },
            Op::Fs(2),
            Op::Fc {
                layer: 2,
                inputs: 8,
                outputs: 10,
            },
        ];
        assert_eq!(p.ops, want);
        assert_eq!(p.num_codings(), widths.len() - 1);
        let sizes: Vec<usize> = p.shapes.iter().map(|s| s.0 * s.1 * s.2).collect();
        assert_eq!(sizes, [16, 16, 12, 12, 8, 8, 10]);
    }

    #[test]
    fn a_single_layer_is_the_input_coding_and_the_output() {
        assert_eq!(mlp_arch(&[4, 3]), ["fs", "fc 3"]);
        assert_eq!(mlp_plan(&[4, 3]).num_codings(), 1);
    }
}
