//! An FS coding fused with the average pooling that follows it.
//!
//! In a conv net the map an FS coding emits is only read by the pooling
//! after it, so the fused op never writes that full-size map: it runs the
//! K-step recurrence on the `s × s` pixels of a window (16 channels at a
//! time) and writes their mean. The backward pass likewise goes straight
//! from the pooled gradient to the pre-activation:
//! `gx = (gy / s²) · ∂f̂/∂x`. Sums run in the same order as the separate
//! ops ([`FsCoding::forward_train`] then
//! [`avg_forward`](crate::layer::pool::avg_forward)), so the results are
//! bit-identical to them.
//!
//! Layout "NHWC" as in [`pool`](crate::layer::pool): `x [n·H·W × C]`,
//! pooled `[n·(H/s)·(W/s) × C]`.

use super::fs::{FsCoding, Variant};
use super::fs_kernels::Steps;
use super::fs_kernels::{self as kernels, LANES};
use super::surrogate::{Surrogate, SurrogateKind, with_step_surrogate};
use crate::layer::PoolGeom;
use crate::simd::multiversion;

/// Calls `f(window_base, pooled_index)` for each pooled pixel and 16-channel
/// block of `n` images (`window_base`: index of the window's top-left
/// element).
#[inline(always)]
fn for_each_block(g: &PoolGeom, n: usize, mut f: impl FnMut(usize, usize)) {
    let (c, s) = (g.c, g.s);
    for img in 0..n {
        for oy in 0..g.ho() {
            for ox in 0..g.wo() {
                for cc in (0..c).step_by(LANES) {
                    let base = img * g.in_len() + (oy * s * g.w + ox * s) * c + cc;
                    let o = img * g.out_len() + (oy * g.wo() + ox) * c + cc;
                    f(base, o);
                }
            }
        }
    }
}

impl FsCoding {
    /// Whether this coding fuses with average pooling `g`: the faithful
    /// FS neuron, channels a multiple of 16 and no remainder rows/columns.
    pub fn fuses_with_pool(&self, g: &PoolGeom) -> bool {
        self.variant == Variant::Fs
            && g.c.is_multiple_of(LANES)
            && g.h.is_multiple_of(g.s)
            && g.w.is_multiple_of(g.s)
    }

    /// Forward of FS then average pooling: `pooled` = window means of
    /// `f̂(x)`; returns the spike count.
    pub fn forward_pool(&self, g: &PoolGeom, x: &[f32], n: usize, pooled: &mut [f32]) -> u64 {
        assert!(self.fuses_with_pool(g), "fs+pool: shape not fusable");
        let (x, pooled) = (&x[..n * g.in_len()], &mut pooled[..n * g.out_len()]);
        pool_forward(&self.steps(), g, x, n, pooled)
    }

    /// Training forward of FS then average pooling: `pooled` as in
    /// [`FsCoding::forward_pool`], and `deriv [n·H·W × C] = ∂f̂/∂x`
    /// (surrogate) for [`FsCoding::backward_pool`]; returns the spike count.
    pub fn forward_train_pool(
        &self,
        g: &PoolGeom,
        x: &[f32],
        n: usize,
        pooled: &mut [f32],
        deriv: &mut [f32],
    ) -> u64 {
        assert!(self.fuses_with_pool(g), "fs+pool: shape not fusable");
        let (x, pooled) = (&x[..n * g.in_len()], &mut pooled[..n * g.out_len()]);
        let deriv = &mut deriv[..n * g.in_len()];
        let st = self.steps();
        #[cfg(target_arch = "x86_64")]
        if self.surrogate.kind == SurrogateKind::Rectangular && crate::layer::kernels::available() {
            // SAFETY: AVX-512F was detected at start (`kernels::available`
            // is the cached AVX-512 level); x and deriv hold n·in_len,
            // pooled n·out_len floats (sliced above), c % 16 == 0 (fusable).
            return unsafe {
                let d = deriv.as_mut_ptr() as *mut u8;
                rect::train_pool::<false>(&st, g, n, x.as_ptr(), pooled.as_mut_ptr(), d)
            };
        }
        pool_train(&st, self.surrogate, g, x, n, pooled, deriv)
    }

    /// Whether [`FsCoding::forward_train_pool_bits`] can run: the
    /// rectangular surrogate (whose derivative the window bits determine),
    /// K ≤ 8 (one byte per element), AVX-512, and a fusable pooling.
    pub fn pool_bits_available(&self, g: &PoolGeom) -> bool {
        cfg!(target_arch = "x86_64")
            && self.fuses_with_pool(g)
            && self.surrogate.kind == SurrogateKind::Rectangular
            && self.k() <= 8
            && crate::layer::kernels::available()
    }

    /// [`FsCoding::forward_train_pool`] that keeps, instead of `∂f̂/∂x`
    /// (4 bytes per element), one byte per element: bit t set when step
    /// t's surrogate window held u. [`FsCoding::backward_pool_bits`]
    /// rebuilds the same derivative from it bit for bit, reading a quarter
    /// of the memory. Needs [`FsCoding::pool_bits_available`].
    pub fn forward_train_pool_bits(
        &self,
        g: &PoolGeom,
        x: &[f32],
        n: usize,
        pooled: &mut [f32],
        bits: &mut [u8],
    ) -> u64 {
        assert!(
            self.pool_bits_available(g),
            "fs+pool: window bits unavailable"
        );
        let (x, pooled) = (&x[..n * g.in_len()], &mut pooled[..n * g.out_len()]);
        let bits = &mut bits[..n * g.in_len()];
        let st = self.steps();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F was detected at start (asserted by
        // `pool_bits_available`, the cached AVX-512 level); sizes sliced
        // above; c % 16 == 0.
        unsafe {
            rect::train_pool::<true>(
                &st,
                g,
                n,
                x.as_ptr(),
                pooled.as_mut_ptr(),
                bits.as_mut_ptr(),
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("checked by pool_bits_available: {st:?} {x:?} {pooled:?} {bits:?}")
    }

    /// Backward of [`FsCoding::forward_train_pool_bits`]: `gx = (gy / s²)
    /// · ∂f̂/∂x` with the derivative rebuilt from the window bits;
    /// overwrites `gx`.
    pub fn backward_pool_bits(
        &self,
        g: &PoolGeom,
        gy: &[f32],
        bits: &[u8],
        n: usize,
        gx: &mut [f32],
    ) {
        assert!(
            self.pool_bits_available(g),
            "fs+pool: window bits unavailable"
        );
        let (gy, bits) = (&gy[..n * g.out_len()], &bits[..n * g.in_len()]);
        let gx = &mut gx[..n * g.in_len()];
        let st = self.steps();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F was detected at start (asserted by
        // `pool_bits_available`, the cached AVX-512 level); sizes sliced
        // above; c % 16 == 0.
        unsafe {
            rect::backward_pool_bits(&st, g, n, gy.as_ptr(), bits.as_ptr(), gx.as_mut_ptr())
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("checked by pool_bits_available: {st:?} {gy:?} {bits:?} {gx:?}")
    }

    /// Backward of [`FsCoding::forward_train_pool`]:
    /// `gx = (gy / s²) · deriv` over each window; overwrites `gx`.
    pub fn backward_pool(g: &PoolGeom, gy: &[f32], deriv: &[f32], n: usize, gx: &mut [f32]) {
        backward_pool(g, gy, deriv, n, gx);
    }
}

multiversion! {
    /// The fused forward of [`FsCoding::forward_pool`] with steps `st`.
    fn pool_forward(st: &Steps, g: &PoolGeom, x: &[f32], n: usize, pooled: &mut [f32]) -> u64 {
        pool_with(g, x, n, pooled, |_, xi, out| {
            kernels::forward_lanes(st, xi, out, kernels::step)
        })
    }
}

multiversion! {
    /// The fused training forward of [`FsCoding::forward_train_pool`]
    /// with steps `st` and surrogate `sur`, on the lane kernels.
    fn pool_train(
        st: &Steps,
        sur: Surrogate,
        g: &PoolGeom,
        x: &[f32],
        n: usize,
        pooled: &mut [f32],
        deriv: &mut [f32],
    ) -> u64 {
        with_step_surrogate!(sur, |sg| {
            pool_with(g, x, n, pooled, |i, xi, out| {
                let di: &mut [f32; LANES] = (&mut deriv[i..i + LANES]).try_into().expect("lanes");
                kernels::train_lanes(st, xi, out, di, sg)
            })
        })
    }
}

multiversion! {
    /// [`FsCoding::backward_pool`].
    fn backward_pool(g: &PoolGeom, gy: &[f32], deriv: &[f32], n: usize, gx: &mut [f32]) {
        let (c, s, inv) = (g.c, g.s, 1.0 / (g.s * g.s) as f32);
        let (gy, deriv) = (&gy[..n * g.out_len()], &deriv[..n * g.in_len()]);
        let gx = &mut gx[..n * g.in_len()];
        for_each_block(g, n, |base, o| {
            let mut gv = [0.0f32; LANES];
            for (a, b) in gv.iter_mut().zip(&gy[o..o + LANES]) {
                *a = b * inv;
            }
            for dy in 0..s {
                for dx in 0..s {
                    let i = base + (dy * g.w + dx) * c;
                    for ((d, v), gg) in gx[i..i + LANES]
                        .iter_mut()
                        .zip(&deriv[i..i + LANES])
                        .zip(&gv)
                    {
                        *d = gg * v;
                    }
                }
            }
        });
    }
}

/// The loop of the fused forward passes: for each window, 16 channels at
/// a time, `lanes(index, x, out) -> spikes` runs the FS steps of each of
/// its pixels, and `pooled` receives their mean.
#[inline(always)]
fn pool_with(
    g: &PoolGeom,
    x: &[f32],
    n: usize,
    pooled: &mut [f32],
    mut lanes: impl FnMut(usize, &[f32; LANES], &mut [f32; LANES]) -> u32,
) -> u64 {
    let (c, s, inv) = (g.c, g.s, 1.0 / (g.s * g.s) as f32);
    let mut total = 0u64;
    for_each_block(g, n, |base, o| {
        let mut sum = [0.0f32; LANES];
        for dy in 0..s {
            for dx in 0..s {
                let i = base + (dy * g.w + dx) * c;
                let xi: &[f32; LANES] = x[i..i + LANES].try_into().expect("lanes");
                let mut out = [0.0f32; LANES];
                total += lanes(i, xi, &mut out) as u64;
                for (a, b) in sum.iter_mut().zip(&out) {
                    *a += b;
                }
            }
        }
        for (p, a) in pooled[o..o + LANES].iter_mut().zip(&sum) {
            *p = a * inv;
        }
    });
    total
}

/// [`FsCoding::forward_train_pool`] for the rectangular surrogate on
/// AVX-512. With `s ∈ {0, 1}` and `z ∈ {0, 1}`, the updates that a 0
/// factor would switch off are masked instead of multiplied: `x·1 = x`,
/// and adding 0 or multiplying by 1 leaves a value unchanged, so the
/// values are those of [`kernels::train_lanes`] bit for bit, with about
/// half the vector operations.
#[cfg(target_arch = "x86_64")]
mod rect {
    use std::arch::x86_64::*;

    use crate::layer::PoolGeom;
    use crate::neuron::fs_kernels::Steps;

    /// # Safety
    /// The SIMD level is AVX-512; `x` and `deriv` hold `n·g.in_len()`
    /// floats, `pooled` `n·g.out_len()`, and `g.c % 16 == 0`.
    /// With `BITS`, `keep` receives one byte per element, bit `t` set
    /// when step t's surrogate window held u (K ≤ 8); else `∂f̂/∂x` as f32.
    #[target_feature(
        enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
    )]
    pub unsafe fn train_pool<const BITS: bool>(
        st: &Steps,
        g: &PoolGeom,
        n: usize,
        x: *const f32,
        pooled: *mut f32,
        keep: *mut u8,
    ) -> u64 {
        unsafe {
            let (c, s, w) = (g.c, g.s, g.w);
            let inv = _mm512_set1_ps(1.0 / (s * s) as f32);
            let absmask = _mm512_set1_epi32(0x7fff_ffff);
            let zero = _mm512_setzero_ps();
            let mut count = 0u64;
            for img in 0..n {
                for oy in 0..g.ho() {
                    for ox in 0..g.wo() {
                        for cc in (0..c).step_by(16) {
                            let base = img * g.in_len() + (oy * s * w + ox * s) * c + cc;
                            let mut sum = zero;
                            for dy in 0..s {
                                for dx in 0..s {
                                    let i = base + (dy * w + dx) * c;
                                    let mut v = _mm512_loadu_ps(x.add(i));
                                    let (mut o, mut acc) = (zero, zero);
                                    let mut p = _mm512_set1_ps(1.0);
                                    let mut bits = _mm512_setzero_si512();
                                    for t in 0..st.k {
                                        let (val, rst) =
                                            (_mm512_set1_ps(st.val[t]), _mm512_set1_ps(st.rst[t]));
                                        let u = _mm512_sub_ps(v, _mm512_set1_ps(st.thr[t]));
                                        let au = _mm512_castsi512_ps(_mm512_and_si512(
                                            _mm512_castps_si512(u),
                                            absmask,
                                        ));
                                        let win = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(
                                            au,
                                            _mm512_set1_ps(st.sw[t]),
                                        );
                                        let fire = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(u, zero);
                                        if !BITS {
                                            // (with BITS the backward pass
                                            // rebuilds this from the bits)
                                            let vp = _mm512_mul_ps(val, p);
                                            acc = _mm512_mask_add_ps(acc, win, acc, vp);
                                            let keep = _mm512_set1_ps(1.0 - st.rst[t]);
                                            p = _mm512_mask_mul_ps(p, win, p, keep);
                                        }
                                        o = _mm512_mask_add_ps(o, fire, o, val);
                                        v = _mm512_mask_sub_ps(v, fire, v, rst);
                                        count += fire.count_ones() as u64;
                                        if BITS {
                                            let bit = _mm512_set1_epi32(1 << t);
                                            bits = _mm512_mask_or_epi32(bits, win, bits, bit);
                                        }
                                    }
                                    if BITS {
                                        let b = _mm512_cvtepi32_epi8(bits);
                                        _mm_storeu_si128(keep.add(i) as *mut __m128i, b);
                                    } else {
                                        _mm512_storeu_ps((keep as *mut f32).add(i), acc);
                                    }
                                    sum = _mm512_add_ps(sum, o);
                                }
                            }
                            let at = img * g.out_len() + (oy * g.wo() + ox) * c + cc;
                            _mm512_storeu_ps(pooled.add(at), _mm512_mul_ps(sum, inv));
                        }
                    }
                }
            }
            count
        }
    }

    /// Backward of [`train_pool`] with `BITS`: `∂f̂/∂x` depends only on
    /// an element's window bits, so it is looked up in a table of the
    /// 2^K values, each computed by the forward's operations in the same
    /// order (the same value bit for bit), then `gx = (gy / s²) · ∂f̂/∂x`.
    ///
    /// # Safety
    /// The SIMD level is AVX-512; `bits` and `gx` hold `n·g.in_len()`
    /// values, `gy` `n·g.out_len()`, `g.c % 16 == 0` and `st.k ≤ 8`.
    #[target_feature(
        enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
    )]
    pub unsafe fn backward_pool_bits(
        st: &Steps,
        g: &PoolGeom,
        n: usize,
        gy: *const f32,
        bits: *const u8,
        gx: *mut f32,
    ) {
        unsafe {
            let mut lut = [0.0f32; 256];
            for (b, entry) in lut.iter_mut().enumerate().take(1 << st.k) {
                let (mut acc, mut p) = (0.0f32, 1.0f32);
                for t in 0..st.k {
                    if b & (1 << t) != 0 {
                        acc += st.val[t] * p;
                        p *= 1.0 - st.rst[t];
                    }
                }
                *entry = acc;
            }
            let small = st.k <= 4;
            let lut16 = _mm512_loadu_ps(lut.as_ptr());
            let (c, s, w) = (g.c, g.s, g.w);
            let inv = _mm512_set1_ps(1.0 / (s * s) as f32);
            for img in 0..n {
                for oy in 0..g.ho() {
                    for ox in 0..g.wo() {
                        for cc in (0..c).step_by(16) {
                            let base = img * g.in_len() + (oy * s * w + ox * s) * c + cc;
                            let at = img * g.out_len() + (oy * g.wo() + ox) * c + cc;
                            let gg = _mm512_mul_ps(_mm512_loadu_ps(gy.add(at)), inv);
                            for dy in 0..s {
                                for dx in 0..s {
                                    let i = base + (dy * w + dx) * c;
                                    let m = _mm_loadu_si128(bits.add(i) as *const __m128i);
                                    let idx = _mm512_cvtepu8_epi32(m);
                                    let du = if small {
                                        _mm512_permutexvar_ps(idx, lut16)
                                    } else {
                                        _mm512_i32gather_ps::<4>(idx, lut.as_ptr())
                                    };
                                    _mm512_storeu_ps(gx.add(i), _mm512_mul_ps(gg, du));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
