//! Average and max pooling over non-overlapping `s × s` windows (kernel =
//! stride = s, no padding; a remainder row/column is dropped, as PyTorch's
//! floor mode does).
//!
//! Layout "NHWC" as in [`conv`](super::conv): input `[n·H·W × C]`, output
//! `[n·Ho·Wo × C]` with `Ho = H / s`, `Wo = W / s`. The loops are compiled
//! per SIMD level ([`multiversion!`]).

use crate::simd::multiversion;

/// Shape of one pooling (one image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window side = stride.
    pub s: usize,
}

impl PoolGeom {
    /// Output height.
    pub fn ho(&self) -> usize {
        self.h / self.s
    }
    /// Output width.
    pub fn wo(&self) -> usize {
        self.w / self.s
    }
    /// Input elements per image.
    pub fn in_len(&self) -> usize {
        self.h * self.w * self.c
    }
    /// Output elements per image.
    pub fn out_len(&self) -> usize {
        self.ho() * self.wo() * self.c
    }
    /// Output pixel (row-major `[Ho·Wo]`) that input pixel `(y, x)` feeds,
    /// or `None` in a dropped remainder.
    pub fn target(&self, y: usize, x: usize) -> Option<usize> {
        let (oy, ox) = (y / self.s, x / self.s);
        (oy < self.ho() && ox < self.wo()).then_some(oy * self.wo() + ox)
    }
}

multiversion! {
    /// `y = mean over each window of x`, for `n` images.
    pub fn avg_forward(g: &PoolGeom, x: &[f32], n: usize, y: &mut [f32]) {
        let (c, s, ho, wo) = (g.c, g.s, g.ho(), g.wo());
        let inv = 1.0 / (s * s) as f32;
        for img in 0..n {
            let xi = &x[img * g.in_len()..(img + 1) * g.in_len()];
            let yi = &mut y[img * g.out_len()..(img + 1) * g.out_len()];
            for oy in 0..ho {
                for ox in 0..wo {
                    let d = &mut yi[(oy * wo + ox) * c..(oy * wo + ox + 1) * c];
                    d.fill(0.0);
                    for dy in 0..s {
                        let base = ((oy * s + dy) * g.w + ox * s) * c;
                        for v in xi[base..base + s * c].chunks_exact(c) {
                            for (a, b) in d.iter_mut().zip(v) {
                                *a += b;
                            }
                        }
                    }
                    d.iter_mut().for_each(|a| *a *= inv);
                }
            }
        }
    }
}

/// Calls `f(input_index, output_index)` for every input element that lies
/// in a window, for `n` images (remainders skipped).
#[inline(always)]
fn for_each_window(g: &PoolGeom, n: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (c, s, ho, wo) = (g.c, g.s, g.ho(), g.wo());
    for img in 0..n {
        for oy in 0..ho {
            for ox in 0..wo {
                let o = img * g.out_len() + (oy * wo + ox) * c;
                for dy in 0..s {
                    let i = img * g.in_len() + ((oy * s + dy) * g.w + ox * s) * c;
                    f(i, o, s * c);
                }
            }
        }
    }
}

multiversion! {
    /// Input gradient of average pooling: `gx = gy / s²` spread over each
    /// window (0 in a dropped remainder); overwrites `gx`.
    pub fn avg_backward(g: &PoolGeom, gy: &[f32], n: usize, gx: &mut [f32]) {
        let inv = 1.0 / (g.s * g.s) as f32;
        let c = g.c;
        if !g.h.is_multiple_of(g.s) || !g.w.is_multiple_of(g.s) {
            gx[..n * g.in_len()].fill(0.0);
        }
        for_each_window(g, n, |i, o, len| {
            let src = &gy[o..o + c];
            for d in gx[i..i + len].chunks_exact_mut(c) {
                for (a, b) in d.iter_mut().zip(src) {
                    *a = b * inv;
                }
            }
        });
    }
}

multiversion! {
    /// Max over each window; `arg[o]` receives the input index of the
    /// maximum (the first one on ties), for the backward pass.
    pub fn max_forward(g: &PoolGeom, x: &[f32], n: usize, y: &mut [f32], arg: &mut [u32]) {
        let c = g.c;
        for img in 0..n {
            let o0 = img * g.out_len();
            y[o0..o0 + g.out_len()].fill(f32::NEG_INFINITY);
        }
        for_each_window(g, n, |i, o, len| {
            for (j, v) in x[i..i + len].chunks_exact(c).enumerate() {
                for ch in 0..c {
                    if v[ch] > y[o + ch] {
                        y[o + ch] = v[ch];
                        arg[o + ch] = (i + j * c + ch) as u32;
                    }
                }
            }
        });
    }
}

multiversion! {
    /// Input gradient of max pooling: each output's gradient goes to its
    /// maximum (`arg` from [`max_forward`]); overwrites `gx`.
    pub fn max_backward(g: &PoolGeom, gy: &[f32], arg: &[u32], n: usize, gx: &mut [f32]) {
        gx[..n * g.in_len()].fill(0.0);
        for (gv, &a) in gy[..n * g.out_len()].iter().zip(&arg[..n * g.out_len()]) {
            gx[a as usize] += gv;
        }
    }
}
