//! 2-D convolution by im2col + GEMM (forward) and GEMM + col2im (backward).
//!
//! Layout is batch-major "NHWC": a batch of `n` feature maps with `C`
//! channels of `H × W` is one row-major `[n·H·W × C]` buffer (a row per
//! pixel, its channels contiguous). Then im2col rows are contiguous runs of
//! channels and the whole convolution of a batch is one GEMM:
//!
//! ```text
//! cols [n·Ho·Wo × k·k·C_in]   row (img, oy, ox), column (ky, kx, c)
//! W    [C_out × k·k·C_in]     same column order (a `Linear`)
//! Y    [n·Ho·Wo × C_out] = cols·Wᵀ + b
//! Ho = (H + 2·pad − k) / stride + 1   (floor), likewise Wo
//! ```
//!
//! Zero padding: columns that fall outside the image hold 0 in `cols`, and
//! col2im drops their gradient.

use super::linear::{Linear, grad_bias_into};
use super::matmul::matmul;

/// Shape of one convolution (input and output maps of one image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

impl ConvGeom {
    /// Output height.
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }

    /// Output width.
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }

    /// Columns of im2col: `k·k·C_in`.
    pub fn patch(&self) -> usize {
        self.k * self.k * self.c_in
    }

    /// Input elements per image.
    pub fn in_len(&self) -> usize {
        self.h * self.w * self.c_in
    }

    /// Output elements per image.
    pub fn out_len(&self) -> usize {
        self.ho() * self.wo() * self.c_out
    }

    /// im2col elements per image.
    pub fn cols_len(&self) -> usize {
        self.ho() * self.wo() * self.patch()
    }

    /// For each input pixel `(y, x)` (row-major `[H·W]`), the number of
    /// output positions whose receptive field holds it (≤ k·k, fewer at
    /// the borders and for stride > 1): its fan-out per output channel.
    pub fn positions_per_input(&self) -> Vec<u32> {
        let mut n = vec![0u32; self.h * self.w];
        for oy in 0..self.ho() {
            for ox in 0..self.wo() {
                for ky in 0..self.k {
                    for kx in 0..self.k {
                        let y = (oy * self.stride + ky) as isize - self.pad as isize;
                        let x = (ox * self.stride + kx) as isize - self.pad as isize;
                        if y >= 0 && x >= 0 && (y as usize) < self.h && (x as usize) < self.w {
                            n[y as usize * self.w + x as usize] += 1;
                        }
                    }
                }
            }
        }
        n
    }

    /// Multiply-accumulates per image of the same convolution in an ANN
    /// (one per real synapse: padding contributes nothing).
    pub fn macs(&self) -> usize {
        self.positions_per_input()
            .iter()
            .map(|&p| p as usize)
            .sum::<usize>()
            * self.c_in
            * self.c_out
    }

    /// Input coordinate of output `o` and kernel offset `kk`, if inside.
    #[inline(always)]
    fn src(&self, o: usize, kk: usize, size: usize) -> Option<usize> {
        let v = (o * self.stride + kk) as isize - self.pad as isize;
        (v >= 0 && (v as usize) < size).then_some(v as usize)
    }
}

/// `cols = im2col(x)` for `n` images: `x [n·H·W × C_in]`,
/// `cols [n·Ho·Wo × k·k·C_in]`.
pub fn im2col(g: &ConvGeom, x: &[f32], n: usize, cols: &mut [f32]) {
    let (ho, wo, p, c) = (g.ho(), g.wo(), g.patch(), g.c_in);
    let cols = &mut cols[..n * ho * wo * p];
    for (img, cimg) in cols.chunks_exact_mut(ho * wo * p).enumerate() {
        let ximg = &x[img * g.in_len()..(img + 1) * g.in_len()];
        for oy in 0..ho {
            for ox in 0..wo {
                let row = &mut cimg[(oy * wo + ox) * p..(oy * wo + ox + 1) * p];
                for ky in 0..g.k {
                    let dst = &mut row[ky * g.k * c..(ky + 1) * g.k * c];
                    let Some(y) = g.src(oy, ky, g.h) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let xrow = &ximg[y * g.w * c..(y + 1) * g.w * c];
                    if c == 1 {
                        // one channel: a plain loop, not a memcpy per value
                        for (kx, d) in dst.iter_mut().enumerate() {
                            *d = g.src(ox, kx, g.w).map_or(0.0, |xx| xrow[xx]);
                        }
                        continue;
                    }
                    for kx in 0..g.k {
                        let d = &mut dst[kx * c..(kx + 1) * c];
                        match g.src(ox, kx, g.w) {
                            Some(xx) => d.copy_from_slice(&xrow[xx * c..(xx + 1) * c]),
                            None => d.fill(0.0),
                        }
                    }
                }
            }
        }
    }
}

/// `gx = col2im(gcols)` for `n` images (overwrites `gx [n·H·W × C_in]`,
/// summing the gradient of every column that reads a pixel).
pub fn col2im(g: &ConvGeom, gcols: &[f32], n: usize, gx: &mut [f32]) {
    let (ho, wo, p, c) = (g.ho(), g.wo(), g.patch(), g.c_in);
    let gx = &mut gx[..n * g.in_len()];
    gx.fill(0.0);
    for (img, gimg) in gx.chunks_exact_mut(g.in_len()).enumerate() {
        let cimg = &gcols[img * ho * wo * p..(img + 1) * ho * wo * p];
        for oy in 0..ho {
            for ox in 0..wo {
                let row = &cimg[(oy * wo + ox) * p..(oy * wo + ox + 1) * p];
                for ky in 0..g.k {
                    let Some(y) = g.src(oy, ky, g.h) else {
                        continue;
                    };
                    for kx in 0..g.k {
                        let Some(xx) = g.src(ox, kx, g.w) else {
                            continue;
                        };
                        let s = &row[(ky * g.k + kx) * c..(ky * g.k + kx + 1) * c];
                        let d = &mut gimg[(y * g.w + xx) * c..(y * g.w + xx + 1) * c];
                        for (dv, sv) in d.iter_mut().zip(s) {
                            *dv += sv;
                        }
                    }
                }
            }
        }
    }
}

/// Parameters of a convolution as a [`Linear`]: weight
/// `[C_out × k·k·C_in]` (column order ky, kx, c) and bias `[C_out]`, with
/// PyTorch's default init `U(±1/√(k·k·C_in))` drawn from `rng`.
pub fn conv_params<R: rand::Rng + ?Sized>(geom: &ConvGeom, rng: &mut R) -> Linear {
    Linear::new(geom.patch(), geom.c_out, rng)
}

/// A convolution: its geometry and (borrowed) parameters.
#[derive(Clone, Copy, Debug)]
pub struct Conv2d<'a> {
    /// Shape.
    pub geom: ConvGeom,
    /// Parameters (see [`conv_params`]).
    pub lin: &'a Linear,
}

/// Images per im2col tile (bounds the column buffer of evaluation).
pub const TILE: usize = 16;

impl Conv2d<'_> {
    /// Forward of `n` images: `y [n·Ho·Wo × C_out] = im2col(x)·Wᵀ + b`,
    /// using `cols` (at least `n·cols_len` long) as im2col storage; the
    /// columns stay there for [`Conv2d::backward`].
    pub fn forward(&self, x: &[f32], n: usize, cols: &mut [f32], y: &mut [f32]) {
        im2col(&self.geom, x, n, cols);
        self.lin
            .forward(cols, n * self.geom.ho() * self.geom.wo(), y, 1.0);
    }

    /// Forward in tiles of [`TILE`] images through a small `cols` buffer
    /// (`TILE·cols_len` long), for evaluation.
    pub fn forward_tiled(&self, x: &[f32], n: usize, cols: &mut [f32], y: &mut [f32]) {
        let g = &self.geom;
        let mut s = 0;
        while s < n {
            let t = TILE.min(n - s);
            self.forward(
                &x[s * g.in_len()..],
                t,
                cols,
                &mut y[s * g.out_len()..(s + t) * g.out_len()],
            );
            s += t;
        }
    }

    /// Parameter gradients of `n` images after [`Conv2d::forward`] left
    /// their columns in `cols`: `gw = gyᵀ·cols`, `gb = Σ_rows gy`.
    pub fn grad_params(&self, cols: &[f32], gy: &[f32], n: usize, gw: &mut [f32], gb: &mut [f32]) {
        self.grad_params_into(cols, gy, n, gw, gb, false);
    }

    /// [`Conv2d::grad_params`], added to `gw` and `gb` with `accumulate`.
    pub fn grad_params_into(
        &self,
        cols: &[f32],
        gy: &[f32],
        n: usize,
        gw: &mut [f32],
        gb: &mut [f32],
        accumulate: bool,
    ) {
        let g = &self.geom;
        let (m, p, o) = (n * g.ho() * g.wo(), g.patch(), g.c_out);
        let gy = &gy[..m * o];
        matmul(gw, gy, &cols[..m * p], o, p, m, true, false, accumulate);
        grad_bias_into(gy, o, gb, accumulate);
    }

    /// Input gradient `gx` of `n` images, in tiles of [`TILE`] images:
    /// `gcols = gy·W` (`gcols` holds `TILE·cols_len`), then col2im.
    pub fn grad_input(&self, gy: &[f32], n: usize, gcols: &mut [f32], gx: &mut [f32]) {
        let g = &self.geom;
        let (p, o) = (g.patch(), g.c_out);
        let w = self.lin.weight.as_slice().expect("contiguous");
        let rows = g.ho() * g.wo();
        let mut s = 0;
        while s < n {
            let t = TILE.min(n - s);
            let gyt = &gy[s * rows * o..(s + t) * rows * o];
            matmul(
                &mut gcols[..t * rows * p],
                gyt,
                w,
                t * rows,
                p,
                o,
                false,
                false,
                false,
            );
            col2im(g, gcols, t, &mut gx[s * g.in_len()..]);
            s += t;
        }
    }

    /// Backward of `n` images after [`Conv2d::forward`] left their columns
    /// in `cols`: [`Conv2d::grad_params`], and with `gx = Some((gcols, gx))`
    /// also [`Conv2d::grad_input`].
    pub fn backward(
        &self,
        cols: &[f32],
        gy: &[f32],
        n: usize,
        gw: &mut [f32],
        gb: &mut [f32],
        gx: Option<(&mut [f32], &mut [f32])>,
    ) {
        self.grad_params(cols, gy, n, gw, gb);
        if let Some((gcols, gx)) = gx {
            self.grad_input(gy, n, gcols, gx);
        }
    }
}
