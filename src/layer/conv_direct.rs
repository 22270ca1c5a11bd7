//! Direct stride-1 convolution: no im2col matrix, register-blocked
//! kernels that read the zero-padded input in place.
//!
//! A batch is kept "NHWC" as in [`conv`](super::conv); the input of a
//! convolution is first copied into a zero-padded buffer
//! `xp [n·Hp·Wp × C_in]` (`Hp = H + 2·pad`). For the patch index
//! `r = (ky·k + kx)·C_in + c` (the column order of the weight), the value
//! that output pixel `(oy, ox)` reads is `xp[(oy·Wp + ox)·C_in + off[r]]`
//! with `off[r] = (ky·Wp + kx)·C_in + c`: one offset table replaces the
//! im2col copy.
//!
//! - Forward: `y[p, o] = b[o] + Σ_r xp[p, r]·Wᵀ[r, o]`, one output row at
//!   a time by [`kernels::rows_gemm`], with `Wᵀ [R × C_out]` (a transposed
//!   copy of the weight).
//! - Weight gradient: `gWᵀ[r, o] = Σ_p xp[p, r]·gy[p, o]` by
//!   [`kernels::acc_outer`], image by image (the image's input and
//!   gradient stay in cache).
//! - Input gradient: for stride 1 the transposed convolution is itself a
//!   stride-1 convolution of the gradient padded by `k − 1 − pad`, with the
//!   flipped kernel `W'[(ky', kx', o), c] = W[o, (k−1−ky', k−1−kx', c)]`,
//!   so it reuses the forward kernel.
//!
//! Every sum runs in a fixed order: results are deterministic. The kernels
//! need stride 1, `pad < k` and channel counts that are multiples of 16 on
//! the output side of each use ([`DirectConv::supports`]); other shapes use
//! im2col + GEMM.

use super::conv::ConvGeom;
use super::kernels;
pub use super::kernels::available;

/// Offsets and shapes of one direct convolution.
#[derive(Clone, Debug)]
pub struct DirectConv {
    /// The convolution.
    pub geom: ConvGeom,
    /// Padded input height and width.
    pub hp: usize,
    /// Padded input width.
    pub wp: usize,
    /// `off[r]` into the padded input, per patch index.
    off: Vec<usize>,
    /// The input-gradient convolution (C_out → C_in, pad k−1−pad).
    back: Option<Box<DirectConv>>,
}

impl DirectConv {
    /// Whether `geom` runs on the direct kernels (forward and weight
    /// gradient; the input gradient also needs `C_in % 16 == 0`).
    pub fn supports(geom: &ConvGeom) -> bool {
        available() && geom.stride == 1 && geom.pad < geom.k && geom.c_out.is_multiple_of(16)
    }

    /// Tables for `geom` (which must be [`supported`](Self::supports)).
    pub fn new(geom: ConvGeom) -> Self {
        assert!(Self::supports(&geom), "direct conv: unsupported shape");
        let back = geom.c_in.is_multiple_of(16).then(|| {
            let pad = geom.k - 1 - geom.pad;
            Box::new(Self::forward_only(ConvGeom {
                c_in: geom.c_out,
                h: geom.ho(),
                w: geom.wo(),
                c_out: geom.c_in,
                k: geom.k,
                stride: 1,
                pad,
            }))
        });
        DirectConv {
            back,
            ..Self::forward_only(geom)
        }
    }

    fn forward_only(geom: ConvGeom) -> Self {
        let (hp, wp) = (geom.h + 2 * geom.pad, geom.w + 2 * geom.pad);
        let mut off = Vec::with_capacity(geom.patch());
        for ky in 0..geom.k {
            for kx in 0..geom.k {
                for c in 0..geom.c_in {
                    off.push((ky * wp + kx) * geom.c_in + c);
                }
            }
        }
        DirectConv {
            geom,
            hp,
            wp,
            off,
            back: None,
        }
    }

    /// Whether [`DirectConv::grad_input`] is available.
    pub fn has_grad_input(&self) -> bool {
        self.back.is_some()
    }

    /// Padded elements per image.
    pub fn padded_len(&self) -> usize {
        self.hp * self.wp * self.geom.c_in
    }

    /// Padded elements per image of the output gradient (for
    /// [`DirectConv::grad_input`]); 0 without it.
    pub fn padded_grad_len(&self) -> usize {
        self.back.as_ref().map_or(0, |b| b.padded_len())
    }

    /// Copy `n` images `x [n·H·W × C_in]` into `xp [n·Hp·Wp × C_in]` with
    /// zero borders.
    pub fn pad(&self, x: &[f32], n: usize, xp: &mut [f32]) {
        let g = &self.geom;
        pad_images(
            x,
            n,
            g.h,
            g.w,
            g.c_in,
            g.pad,
            &mut xp[..n * self.padded_len()],
        );
    }

    /// `y [n·Ho·Wo × C_out] = conv(xp) + b`, with `wt = Wᵀ [R × C_out]`
    /// (see [`transpose_weight`]) and `xp` from [`DirectConv::pad`].
    pub fn forward(&self, xp: &[f32], n: usize, wt: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let g = &self.geom;
        let (ho, wo, co, ci) = (g.ho(), g.wo(), g.c_out, g.c_in);
        assert!(xp.len() >= n * self.padded_len(), "direct conv: input");
        assert!(y.len() >= n * ho * wo * co, "direct conv: output");
        // Short patches (a first conv on one channel) are bound by the
        // stores: wider pixel blocks; long ones by registers.
        let wide = g.patch() < 64;
        for img in 0..n {
            let xi = &xp[img * self.padded_len()..(img + 1) * self.padded_len()];
            let yi = &mut y[img * ho * wo * co..(img + 1) * ho * wo * co];
            for oy in 0..ho {
                let (x, out) = (&xi[oy * self.wp * ci..], &mut yi[oy * wo * co..]);
                kernels::rows_gemm(x, ci, &self.off, wo, wt, co, bias, out, co, wide);
            }
        }
    }

    /// `gwt [R × C_out] (+)= Σ_p xp[p, r]·gy[p, o]` over `n` images,
    /// `gy [n·Ho·Wo × C_out]` (overwritten unless `accumulate`).
    pub fn grad_weight(&self, xp: &[f32], gy: &[f32], n: usize, gwt: &mut [f32], accumulate: bool) {
        let g = &self.geom;
        let (ho, wo, co, ci) = (g.ho(), g.wo(), g.c_out, g.c_in);
        assert!(xp.len() >= n * self.padded_len(), "direct conv: input");
        assert!(gy.len() >= n * ho * wo * co, "direct conv: gradient");
        let gwt = &mut gwt[..g.patch() * co];
        if !accumulate {
            gwt.fill(0.0);
        }
        for img in 0..n {
            let xi = &xp[img * self.padded_len()..(img + 1) * self.padded_len()];
            let gi = &gy[img * ho * wo * co..(img + 1) * ho * wo * co];
            let rows = (ho, self.wp * ci, wo * co);
            kernels::acc_outer(xi, rows, (wo, ci, co), &self.off, gi, co, gwt);
        }
    }

    /// Input gradient `gx [n·H·W × C_in]` (overwritten) from
    /// `gy [n·Ho·Wo × C_out]`, with `wflip` from [`flip_weight`] and
    /// `gyp` scratch of `n·`[`padded_grad_len`](Self::padded_grad_len).
    pub fn grad_input(&self, gy: &[f32], n: usize, wflip: &[f32], gyp: &mut [f32], gx: &mut [f32]) {
        let back = self.back.as_ref().expect("direct conv: no input gradient");
        back.pad(gy, n, gyp);
        back.forward(gyp, n, wflip, None, gx);
    }
}

/// Zero-padded copy of `n` NHWC images (`pad` on every side).
pub fn pad_images(x: &[f32], n: usize, h: usize, w: usize, c: usize, pad: usize, xp: &mut [f32]) {
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let row = w * c;
    for img in 0..n {
        let dst = &mut xp[img * hp * wp * c..(img + 1) * hp * wp * c];
        let src = &x[img * h * row..(img + 1) * h * row];
        dst[..pad * wp * c].fill(0.0);
        dst[(pad + h) * wp * c..].fill(0.0);
        for y in 0..h {
            let d = &mut dst[(pad + y) * wp * c..(pad + y + 1) * wp * c];
            d[..pad * c].fill(0.0);
            d[pad * c..pad * c + row].copy_from_slice(&src[y * row..(y + 1) * row]);
            d[pad * c + row..].fill(0.0);
        }
    }
}

/// `wt [R × C_out] = Wᵀ` for a weight `w [C_out × R]`.
pub fn transpose_weight(w: &[f32], c_out: usize, r: usize, wt: &mut [f32]) {
    for o in 0..c_out {
        for k in 0..r {
            wt[k * c_out + o] = w[o * r + k];
        }
    }
}

/// Weight of the input-gradient convolution of `geom`:
/// `wflip [(ky', kx', o) × C_in]` with
/// `wflip[(ky', kx', o), c] = W[o, (k−1−ky', k−1−kx', c)]`.
pub fn flip_weight(geom: &ConvGeom, w: &[f32], wflip: &mut [f32]) {
    let (k, ci, co) = (geom.k, geom.c_in, geom.c_out);
    let r = geom.patch();
    for ky in 0..k {
        for kx in 0..k {
            for o in 0..co {
                let dst = ((ky * k + kx) * co + o) * ci;
                let src = o * r + ((k - 1 - ky) * k + (k - 1 - kx)) * ci;
                wflip[dst..dst + ci].copy_from_slice(&w[src..src + ci]);
            }
        }
    }
}

/// `gw [C_out × R] = gwtᵀ` (the layout of the weight).
pub fn untranspose_grad(gwt: &[f32], c_out: usize, r: usize, gw: &mut [f32]) {
    for o in 0..c_out {
        for k in 0..r {
            gw[o * r + k] = gwt[k * c_out + o];
        }
    }
}
