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
//! - Forward: `y[p, o] = b[o] + Σ_r xp[p, r]·Wᵀ[r, o]`, computed for
//!   `PIX` output pixels of a row × a block of `CB` output channels held in
//!   registers, with `Wᵀ [R × C_out]` (a transposed copy of the weight).
//! - Weight gradient: `gWᵀ[r, o] = Σ_p xp[p, r]·gy[p, o]`, for `Q` patch
//!   indices × `CB` channels in registers, image by image (the image's
//!   input and gradient stay in cache).
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

/// Output pixels per forward block.
const PIX: usize = 4;
/// Patch indices per weight-gradient block.
const Q: usize = 8;

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
    pub fn forward(&self, xp: &[f32], n: usize, wt: &[f32], bias: &[f32], y: &mut [f32]) {
        let g = &self.geom;
        let (ho, wo, co, ci) = (g.ho(), g.wo(), g.c_out, g.c_in);
        let r = g.patch();
        assert!(
            wt.len() >= r * co && bias.len() >= co,
            "direct conv: weights"
        );
        assert!(xp.len() >= n * self.padded_len(), "direct conv: input");
        assert!(y.len() >= n * ho * wo * co, "direct conv: output");
        // Short patches (a first conv on one channel) are bound by the
        // stores: wider pixel blocks; long ones by registers.
        let small = r < 64;
        for img in 0..n {
            let xi = &xp[img * self.padded_len()..(img + 1) * self.padded_len()];
            let yi = &mut y[img * ho * wo * co..(img + 1) * ho * wo * co];
            for oy in 0..ho {
                let mut ox = 0;
                while ox < wo {
                    let base = (oy * self.wp + ox) * ci;
                    let out = &mut yi[(oy * wo + ox) * co..];
                    let left = wo - ox;
                    ox += match left {
                        l if small && l >= 12 => self.fwd_block::<12>(xi, base, wt, bias, out),
                        l if l >= PIX => self.fwd_block::<PIX>(xi, base, wt, bias, out),
                        l if l >= 4 => self.fwd_block::<4>(xi, base, wt, bias, out),
                        l if l >= 2 => self.fwd_block::<2>(xi, base, wt, bias, out),
                        _ => self.fwd_block::<1>(xi, base, wt, bias, out),
                    };
                }
            }
        }
    }

    /// `P` output pixels starting at `base` in the padded image `xi`, all
    /// channel blocks; returns `P`.
    #[inline(always)]
    fn fwd_block<const P: usize>(
        &self,
        xi: &[f32],
        base: usize,
        wt: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) -> usize {
        let (ci, co) = (self.geom.c_in, self.geom.c_out);
        let last = base + (P - 1) * ci + self.off.last().copied().unwrap_or(0);
        assert!(
            last < xi.len(),
            "direct conv: block outside the padded image"
        );
        assert!(out.len() >= (P - 1) * co + co, "direct conv: output block");
        #[cfg(target_arch = "x86_64")]
        {
            let xb = xi[base..].as_ptr();
            let mut cb = 0;
            while cb < co {
                // SAFETY: `new` checked AVX-512F; bounds: `last` above, wt
                // and bias asserted by `forward`, out above (cb + 16V ≤ co).
                unsafe {
                    let (w, b, o) = (
                        wt.as_ptr().add(cb),
                        bias.as_ptr().add(cb),
                        out.as_mut_ptr().add(cb),
                    );
                    if co - cb >= 32 {
                        simd::fwd::<P, 2>(xb, ci, &self.off, w, co, b, o, co);
                        cb += 32;
                    } else {
                        simd::fwd::<P, 1>(xb, ci, &self.off, w, co, b, o, co);
                        cb += 16;
                    }
                }
            }
        }
        P
    }

    /// `gwt [R × C_out] = Σ_p xp[p, r]·gy[p, o]` over `n` images
    /// (overwritten), `gy [n·Ho·Wo × C_out]`.
    pub fn grad_weight(&self, xp: &[f32], gy: &[f32], n: usize, gwt: &mut [f32]) {
        let g = &self.geom;
        let (ho, wo, co, ci) = (g.ho(), g.wo(), g.c_out, g.c_in);
        let r = g.patch();
        assert!(xp.len() >= n * self.padded_len(), "direct conv: input");
        assert!(gy.len() >= n * ho * wo * co, "direct conv: gradient");
        let gwt = &mut gwt[..r * co];
        gwt.fill(0.0);
        let last_px = ((ho - 1) * self.wp + wo - 1) * ci;
        assert!(
            last_px + self.off[r - 1] < self.padded_len(),
            "direct conv: patch"
        );
        for img in 0..n {
            let xi = &xp[img * self.padded_len()..(img + 1) * self.padded_len()];
            let gi = &gy[img * ho * wo * co..(img + 1) * ho * wo * co];
            let mut r0 = 0;
            while r0 < r {
                let q = (r - r0).min(Q);
                let offs = &self.off[r0..r0 + q];
                #[cfg(target_arch = "x86_64")]
                {
                    let mut cb = 0;
                    while cb < co {
                        // SAFETY: `new` checked AVX-512F; the asserts above
                        // bound xi and gi; rows r0..r0+q of gwt, channels
                        // cb..cb+16V ≤ co.
                        unsafe {
                            let (gp, ap) =
                                (gi.as_ptr().add(cb), gwt.as_mut_ptr().add(r0 * co + cb));
                            if co - cb >= 32 {
                                simd::grad_w::<Q, 2>(
                                    xi.as_ptr(),
                                    gp,
                                    ho,
                                    wo,
                                    self.wp,
                                    ci,
                                    co,
                                    offs,
                                    ap,
                                );
                                cb += 32;
                            } else {
                                simd::grad_w::<Q, 1>(
                                    xi.as_ptr(),
                                    gp,
                                    ho,
                                    wo,
                                    self.wp,
                                    ci,
                                    co,
                                    offs,
                                    ap,
                                );
                                cb += 16;
                            }
                        }
                    }
                }
                r0 += q;
            }
        }
    }

    /// Input gradient `gx [n·H·W × C_in]` (overwritten) from
    /// `gy [n·Ho·Wo × C_out]`, with `wflip` from [`flip_weight`] and
    /// `gyp` scratch of `n·`[`padded_grad_len`](Self::padded_grad_len).
    pub fn grad_input(&self, gy: &[f32], n: usize, wflip: &[f32], gyp: &mut [f32], gx: &mut [f32]) {
        let back = self.back.as_ref().expect("direct conv: no input gradient");
        back.pad(gy, n, gyp);
        let zeros = [0.0f32; 1024];
        assert!(self.geom.c_in <= zeros.len(), "direct conv: channels");
        back.forward(gyp, n, wflip, &zeros[..self.geom.c_in], gx);
    }
}

/// AVX-512 kernels (the CPU is checked once by [`available`]).
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// `out[p·os + 16v + j] = b[16v + j] + Σ_r xi[p·ci + off[r]]·wt[r·ws + 16v + j]`
    /// for `P` pixels × `V` vectors of 16 channels.
    ///
    /// # Safety
    /// AVX-512F must be available; `xi[(P−1)·ci + max(off)]`,
    /// `wt[(off.len()−1)·ws + 16V − 1]`, `bias[16V − 1]` and
    /// `out[(P−1)·os + 16V − 1]` must be in bounds.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn fwd<const P: usize, const V: usize>(
        xi: *const f32,
        ci: usize,
        off: &[usize],
        wt: *const f32,
        ws: usize,
        bias: *const f32,
        out: *mut f32,
        os: usize,
    ) {
        unsafe {
            let mut b = [_mm512_setzero_ps(); V];
            for (v, bv) in b.iter_mut().enumerate() {
                *bv = _mm512_loadu_ps(bias.add(16 * v));
            }
            let mut acc = [b; P];
            for (r, &o) in off.iter().enumerate() {
                let mut w = [_mm512_setzero_ps(); V];
                for (v, wv) in w.iter_mut().enumerate() {
                    *wv = _mm512_loadu_ps(wt.add(r * ws + 16 * v));
                }
                for (p, a) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*xi.add(p * ci + o));
                    for v in 0..V {
                        a[v] = _mm512_fmadd_ps(x, w[v], a[v]);
                    }
                }
            }
            for (p, a) in acc.iter().enumerate() {
                for (v, av) in a.iter().enumerate() {
                    _mm512_storeu_ps(out.add(p * os + 16 * v), *av);
                }
            }
        }
    }

    /// `acc[k·co + 16v + j] += Σ_{oy, ox} xi[(oy·wp + ox)·ci + off[k]]·gi[(oy·wo + ox)·co + 16v + j]`
    /// for `k < off.len() ≤ Q`, `V` vectors of 16 channels.
    ///
    /// # Safety
    /// AVX-512F must be available; every index above must be in bounds
    /// (the last pixel with the largest offset, `16V ≤ co`).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn grad_w<const Q: usize, const V: usize>(
        xi: *const f32,
        gi: *const f32,
        ho: usize,
        wo: usize,
        wp: usize,
        ci: usize,
        co: usize,
        off: &[usize],
        acc: *mut f32,
    ) {
        unsafe {
            let q = off.len();
            // Rows past q repeat the last offset: computed, never stored.
            let offs: [usize; Q] = std::array::from_fn(|k| off[k.min(q - 1)]);
            let mut a = [[_mm512_setzero_ps(); V]; Q];
            for oy in 0..ho {
                let xrow = xi.add(oy * wp * ci);
                let grow = gi.add(oy * wo * co);
                for ox in 0..wo {
                    let mut g = [_mm512_setzero_ps(); V];
                    for (v, gv) in g.iter_mut().enumerate() {
                        *gv = _mm512_loadu_ps(grow.add(ox * co + 16 * v));
                    }
                    let xp = xrow.add(ox * ci);
                    for (k, row) in a.iter_mut().enumerate() {
                        let x = _mm512_set1_ps(*xp.add(offs[k]));
                        for v in 0..V {
                            row[v] = _mm512_fmadd_ps(x, g[v], row[v]);
                        }
                    }
                }
            }
            for (k, row) in a.iter().enumerate().take(q) {
                for (v, rv) in row.iter().enumerate() {
                    let d = acc.add(k * co + 16 * v);
                    _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), *rv));
                }
            }
        }
    }
}

/// Whether the direct kernels can run on this CPU (AVX-512F).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
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
