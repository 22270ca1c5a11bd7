//! The layer list of a convolutional network (`model.arch`), parsed and
//! checked against the input shape.
//!
//! Entries (one string each): `fs`, `conv OUT KxK [stride S] [pad P]`,
//! `avgpool S`, `maxpool S`, `flatten`, `fc OUT`. Example:
//! `["fs", "conv 32 3x3 pad 1", "fs", "avgpool 2", "conv 32 3x3 pad 1",
//! "fs", "avgpool 2", "fc 128", "fs", "fc 10"]`.

use crate::error::{Error, Result};
use crate::layer::{ConvGeom, PoolGeom};

/// A resolved operation with its shapes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// FS coding number `.0` (elementwise; shape unchanged).
    Fs(usize),
    /// Convolution: synaptic layer number `layer`.
    Conv {
        /// Index into the network's synaptic layers.
        layer: usize,
        /// Shape.
        geom: ConvGeom,
    },
    /// Average pooling.
    AvgPool(PoolGeom),
    /// Max pooling.
    MaxPool(PoolGeom),
    /// Fully connected: synaptic layer `layer`, `inputs → outputs`.
    Fc {
        /// Index into the network's synaptic layers.
        layer: usize,
        /// Input features (the flattened `H·W·C` map, order h, w, c).
        inputs: usize,
        /// Output features.
        outputs: usize,
    },
}

/// Map shape `(C, H, W)`; a flat vector of F features is `(F, 1, 1)`.
pub type Shape = (usize, usize, usize);

/// The checked plan of a layer list.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Operations (flatten resolved away: it is free in NHWC layout).
    pub ops: Vec<Op>,
    /// `shapes[i]`: shape of the input of op `i`; `shapes[ops.len()]` is
    /// the output.
    pub shapes: Vec<Shape>,
}

/// Largest channel count, fc width, kernel, stride or padding accepted
/// (keeps every shape product far from overflow; the size limits on the
/// whole network are checked by the config).
pub const MAX_DIM: usize = 1 << 16;

fn num(tok: Option<&str>, key: &str, what: &str) -> Result<usize> {
    tok.and_then(|t| t.parse::<usize>().ok())
        .filter(|&v| v > 0 && v <= MAX_DIM)
        .ok_or_else(|| Error::config(key, format!("{what} must be an integer in 1..={MAX_DIM}")))
}

/// `C·H·W`, or an error if it is absurdly large.
fn features(c: usize, h: usize, w: usize, key: &str) -> Result<usize> {
    c.checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .filter(|&v| v <= 1 << 28)
        .ok_or_else(|| Error::config(key, format!("a {c}×{h}×{w} map is too large to flatten")))
}

impl Plan {
    /// Weights of all synaptic layers (saturating).
    pub fn weights(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Conv { geom: g, .. } => {
                    g.c_out.saturating_mul(g.k * g.k).saturating_mul(g.c_in)
                }
                Op::Fc {
                    inputs, outputs, ..
                } => inputs.saturating_mul(*outputs),
                _ => 0,
            })
            .fold(0usize, |a, b| a.saturating_add(b))
    }

    /// Largest buffer one image needs: a map, or a convolution's im2col
    /// columns (saturating).
    pub fn per_image_buffer(&self) -> usize {
        let maps = self
            .shapes
            .iter()
            .map(|&(c, h, w)| c.saturating_mul(h).saturating_mul(w));
        let cols = self.ops.iter().map(|op| match op {
            Op::Conv { geom: g, .. } => (g.ho() * g.wo())
                .saturating_mul(g.k * g.k)
                .saturating_mul(g.c_in),
            _ => 0,
        });
        maps.chain(cols).max().unwrap_or(0)
    }
}

/// Parse and check `arch` for `side × side` single-channel images and
/// `classes` outputs (any number when `None`).
pub fn plan(arch: &[String], side: usize, classes: Option<usize>) -> Result<Plan> {
    plan_from(arch, (1, side, side), classes)
}

/// [`plan`] for inputs of shape `input` (a flat vector of F features is
/// `(F, 1, 1)`).
pub fn plan_from(arch: &[String], input: Shape, classes: Option<usize>) -> Result<Plan> {
    let mut shape: Shape = input;
    let mut flat = false;
    let (mut ops, mut shapes) = (Vec::new(), Vec::new());
    let (mut codings, mut layers) = (0, 0);
    for (i, entry) in arch.iter().enumerate() {
        let key = format!("model.arch[{i}]");
        let toks: Vec<&str> = entry.split_whitespace().collect();
        let (c, h, w) = shape;
        let spatial = |name: &str| -> Result<()> {
            if flat {
                Err(Error::config(
                    &key,
                    format!("`{name}` after fc/flatten needs a 2-D map"),
                ))
            } else {
                Ok(())
            }
        };
        let op = match toks.first().copied() {
            Some("fs") if toks.len() == 1 => {
                codings += 1;
                Op::Fs(codings - 1)
            }
            Some("flatten") if toks.len() == 1 => {
                flat = true;
                shape = (features(c, h, w, &key)?, 1, 1);
                continue;
            }
            Some("conv") => {
                spatial("conv")?;
                let out = num(toks.get(1).copied(), &key, "conv's output channels")?;
                let k = toks
                    .get(2)
                    .and_then(|t| t.split_once('x'))
                    .filter(|(a, b)| a == b)
                    .and_then(|(a, _)| a.parse::<usize>().ok())
                    .filter(|&k| k > 0 && k <= MAX_DIM)
                    .ok_or_else(|| Error::config(&key, "conv needs a square kernel like 3x3"))?;
                let (mut stride, mut pad) = (1, 0);
                let mut rest = toks[3..].chunks(2);
                for pair in &mut rest {
                    match pair {
                        ["stride", v] => stride = num(Some(v), &key, "stride")?,
                        ["pad", v] => {
                            pad = v.parse().ok().filter(|&p| p <= MAX_DIM).ok_or_else(|| {
                                Error::config(
                                    &key,
                                    format!("pad must be an integer in 0..={MAX_DIM}"),
                                )
                            })?
                        }
                        _ => {
                            return Err(Error::config(
                                &key,
                                format!("`{entry}`: expected `conv OUT KxK [stride S] [pad P]`"),
                            ));
                        }
                    }
                }
                if h + 2 * pad < k || w + 2 * pad < k || pad >= k {
                    return Err(Error::config(
                        &key,
                        format!(
                            "kernel {k}x{k} with pad {pad} does not fit the {h}x{w} map (pad must be < k)"
                        ),
                    ));
                }
                let geom = ConvGeom {
                    c_in: c,
                    h,
                    w,
                    c_out: out,
                    k,
                    stride,
                    pad,
                };
                layers += 1;
                Op::Conv {
                    layer: layers - 1,
                    geom,
                }
            }
            Some(p @ ("avgpool" | "maxpool")) if toks.len() == 2 => {
                spatial(p)?;
                let s = num(toks.get(1).copied(), &key, "pool size")?;
                if s > h || s > w {
                    return Err(Error::config(
                        &key,
                        format!("pool size {s} exceeds the {h}x{w} map"),
                    ));
                }
                let g = PoolGeom { c, h, w, s };
                if p == "avgpool" {
                    Op::AvgPool(g)
                } else {
                    Op::MaxPool(g)
                }
            }
            Some("fc") if toks.len() == 2 => {
                let out = num(toks.get(1).copied(), &key, "fc's output width")?;
                flat = true;
                layers += 1;
                Op::Fc {
                    layer: layers - 1,
                    inputs: features(c, h, w, &key)?,
                    outputs: out,
                }
            }
            _ => {
                return Err(Error::config(
                    &key,
                    format!(
                        "`{entry}` is not one of `fs`, `conv OUT KxK [stride S] [pad P]`, `avgpool S`, `maxpool S`, `flatten`, `fc OUT`"
                    ),
                ));
            }
        };
        shapes.push(shape);
        shape = match op {
            Op::Fs(_) => shape,
            Op::Conv { geom, .. } => (geom.c_out, geom.ho(), geom.wo()),
            Op::AvgPool(g) | Op::MaxPool(g) => (g.c, g.ho(), g.wo()),
            Op::Fc { outputs, .. } => (outputs, 1, 1),
        };
        ops.push(op);
    }
    shapes.push(shape);
    let last = arch.len().saturating_sub(1);
    match ops.last() {
        Some(Op::Fc { outputs, .. }) if classes.is_none_or(|c| c == *outputs) => {}
        Some(Op::Fc { outputs, .. }) => {
            return Err(Error::config(
                format!("model.arch[{last}]"),
                format!(
                    "the last fc has {outputs} outputs but the dataset has {} classes",
                    classes.unwrap_or(0)
                ),
            ));
        }
        _ => {
            return Err(Error::config(
                format!("model.arch[{last}]"),
                "the list must end with `fc CLASSES` (the non-spiking output layer)",
            ));
        }
    }
    Ok(Plan { ops, shapes })
}

impl Plan {
    /// Number of FS codings.
    pub fn num_codings(&self) -> usize {
        self.ops.iter().filter(|o| matches!(o, Op::Fs(_))).count()
    }
}
