//! Register-blocked small GEMMs on strided rows: the inner loops of the
//! direct and Winograd convolutions (AVX-512).
//!
//! Both read their left operand through an offset table, so a
//! convolution's patches are read in place from the padded input (no
//! im2col copy), and both keep a block of `16·V` output channels for
//! several rows in registers:
//!
//! - [`rows_gemm`]: `out[i·os + o] = b[o] + Σ_r x[i·xs + off[r]]·w[r·co + o]`;
//! - [`acc_outer`]: `acc[k·co + o] += Σ_{a,b} x[a·xa + b·xb + off[k]]·g[a·ga + b·gb + o]`.
//!
//! Sums run in a fixed order, so results are deterministic. Callers check
//! [`available`] first; the kernels need `co % 16 == 0`.

/// Rows per [`rows_gemm`] block (12 for short sums, see `wide`).
const PIX: usize = 6;
/// Offsets per [`acc_outer`] block.
#[cfg(target_arch = "x86_64")]
const Q: usize = 8;
/// The widest [`acc_outer`] block (for a last block of 9..12 offsets).
#[cfg(target_arch = "x86_64")]
const WIDE_Q: usize = 12;

/// Whether the kernels run in this process: the SIMD level, detected
/// once at start (and lowered by `FSNN_SIMD`), is AVX-512
/// ([`crate::simd::level`]), so the CPU has AVX-512F.
pub fn available() -> bool {
    crate::simd::level() == crate::simd::SimdLevel::Avx512
}

/// `out[i·os + o] = bias[o] + Σ_r x[i·xs + off[r]]·w[r·co + o]` for rows
/// `i < rows` and channels `o < co` (`co % 16 == 0`; no bias: 0). `wide`
/// takes 12-row blocks, for short sums that are bound by the stores.
///
/// Panics if an index falls outside a slice, or without AVX-512F.
#[allow(clippy::too_many_arguments)]
pub fn rows_gemm(
    x: &[f32],
    xs: usize,
    off: &[usize],
    rows: usize,
    w: &[f32],
    co: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    os: usize,
    wide: bool,
) {
    assert!(
        available() && co.is_multiple_of(16),
        "rows_gemm: unsupported"
    );
    if rows == 0 {
        return;
    }
    let top = off.iter().copied().max().unwrap_or(0);
    assert!((rows - 1) * xs + top < x.len(), "rows_gemm: x too short");
    assert!(w.len() >= off.len() * co, "rows_gemm: w too short");
    assert!(
        out.len() >= (rows - 1) * os + co,
        "rows_gemm: out too short"
    );
    assert!(
        bias.is_none_or(|b| b.len() >= co),
        "rows_gemm: bias too short"
    );
    let mut i = 0;
    while i < rows {
        let left = rows - i;
        i += match left {
            l if wide && l >= 12 => block::<12>(x, xs, off, i, w, co, bias, out, os),
            l if l >= PIX => block::<PIX>(x, xs, off, i, w, co, bias, out, os),
            l if l >= 4 => block::<4>(x, xs, off, i, w, co, bias, out, os),
            l if l >= 2 => block::<2>(x, xs, off, i, w, co, bias, out, os),
            _ => block::<1>(x, xs, off, i, w, co, bias, out, os),
        };
    }
}

/// Rows `i0..i0+P` of [`rows_gemm`]; returns `P`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const P: usize>(
    x: &[f32],
    xs: usize,
    off: &[usize],
    i0: usize,
    w: &[f32],
    co: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    os: usize,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let mut cb = 0;
        while cb < co {
            // SAFETY: `rows_gemm` checked `available()` (AVX-512F detected
            // at start, the cached SIMD level) and that every row
            // i0..i0+P, offset, weight row, bias and output channel
            // cb..cb+16V ≤ co lies inside its slice.
            unsafe {
                let xb = x.as_ptr().add(i0 * xs);
                let b = bias.map(|b| b.as_ptr().add(cb));
                let (wp, o) = (w.as_ptr().add(cb), out.as_mut_ptr().add(i0 * os + cb));
                if co - cb >= 32 {
                    simd::fwd::<P, 2>(xb, xs, off, wp, co, b, o, os);
                    cb += 32;
                } else {
                    simd::fwd::<P, 1>(xb, xs, off, wp, co, b, o, os);
                    cb += 16;
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, xs, off, i0, w, co, bias, out, os);
    P
}

/// `acc[k·co + o] += Σ_{a<na, b<nb} x[a·xa + b·xb + off[k]]·g[a·ga + b·gb + o]`
/// for `k < off.len()`, `o < co` (`co % 16 == 0`): a transposed product
/// over a two-level loop of rows (e.g. output rows × pixels).
///
/// Panics if an index falls outside a slice, or without AVX-512F.
#[allow(clippy::too_many_arguments)]
pub fn acc_outer(
    x: &[f32],
    (na, xa, ga): (usize, usize, usize),
    (nb, xb, gb): (usize, usize, usize),
    off: &[usize],
    g: &[f32],
    co: usize,
    acc: &mut [f32],
) {
    assert!(
        available() && co.is_multiple_of(16),
        "acc_outer: unsupported"
    );
    if na == 0 || nb == 0 || off.is_empty() {
        return;
    }
    let top = off.iter().copied().max().unwrap_or(0);
    assert!(
        (na - 1) * xa + (nb - 1) * xb + top < x.len(),
        "acc_outer: x too short"
    );
    assert!(
        (na - 1) * ga + (nb - 1) * gb + co <= g.len(),
        "acc_outer: g too short"
    );
    assert!(acc.len() >= off.len() * co, "acc_outer: acc too short");
    #[cfg(target_arch = "x86_64")]
    {
        let mut k0 = 0;
        while k0 < off.len() {
            // a last block of 9..12 offsets (a one-channel 3×3 patch) in
            // one pass rather than 8 + a mostly idle one
            let left = off.len() - k0;
            let wide = left > Q && left <= WIDE_Q;
            let q = if wide { left } else { left.min(Q) };
            let offs = &off[k0..k0 + q];
            let mut cb = 0;
            while cb < co {
                let v2 = co - cb >= 32;
                let (xs, r) = (x.as_ptr(), ((na, xa, ga), (nb, xb, gb)));
                // SAFETY: checked above: `available()` (AVX-512F detected at
                // start, the cached SIMD level), every x and g index of
                // the loops, rows k0..k0+q and channels cb..cb+16V ≤ co of acc.
                unsafe {
                    let (gp, ap) = (g.as_ptr().add(cb), acc.as_mut_ptr().add(k0 * co + cb));
                    match (wide, v2) {
                        (true, true) => simd::grad_w::<WIDE_Q, 2>(xs, gp, r.0, r.1, co, offs, ap),
                        (true, false) => simd::grad_w::<WIDE_Q, 1>(xs, gp, r.0, r.1, co, offs, ap),
                        (false, true) => simd::grad_w::<Q, 2>(xs, gp, r.0, r.1, co, offs, ap),
                        (false, false) => simd::grad_w::<Q, 1>(xs, gp, r.0, r.1, co, offs, ap),
                    }
                }
                cb += if v2 { 32 } else { 16 };
            }
            k0 += q;
        }
    }
}

/// AVX-512 kernels (the callers check [`available`]).
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// `out[p·os + 16v + j] = b[16v + j] + Σ_r xi[p·xs + off[r]]·wt[r·ws + 16v + j]`
    /// for `P` rows × `V` vectors of 16 channels (no bias: 0).
    ///
    /// # Safety
    /// The SIMD level is AVX-512; `xi[(P−1)·xs + max(off)]`,
    /// `wt[(off.len()−1)·ws + 16V − 1]`, `bias[16V − 1]` and
    /// `out[(P−1)·os + 16V − 1]` must be in bounds.
    #[target_feature(
        enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
    )]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn fwd<const P: usize, const V: usize>(
        xi: *const f32,
        xs: usize,
        off: &[usize],
        wt: *const f32,
        ws: usize,
        bias: Option<*const f32>,
        out: *mut f32,
        os: usize,
    ) {
        unsafe {
            let mut b = [_mm512_setzero_ps(); V];
            if let Some(bias) = bias {
                for (v, bv) in b.iter_mut().enumerate() {
                    *bv = _mm512_loadu_ps(bias.add(16 * v));
                }
            }
            let mut acc = [b; P];
            for (r, &o) in off.iter().enumerate() {
                let mut w = [_mm512_setzero_ps(); V];
                for (v, wv) in w.iter_mut().enumerate() {
                    *wv = _mm512_loadu_ps(wt.add(r * ws + 16 * v));
                }
                for (p, a) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*xi.add(p * xs + o));
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

    /// `acc[k·co + 16v + j] += Σ_{a, b} xi[a·xa + b·xb + off[k]]·gi[a·ga + b·gb + 16v + j]`
    /// for `k < off.len() ≤ Q`, `V` vectors of 16 channels.
    ///
    /// # Safety
    /// The SIMD level is AVX-512; every index above must be in bounds.
    #[target_feature(
        enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
    )]
    pub unsafe fn grad_w<const Q: usize, const V: usize>(
        xi: *const f32,
        gi: *const f32,
        (na, xa, ga): (usize, usize, usize),
        (nb, xb, gb): (usize, usize, usize),
        co: usize,
        off: &[usize],
        acc: *mut f32,
    ) {
        unsafe {
            let q = off.len();
            // Rows past q repeat the last offset: computed, never stored.
            let offs: [usize; Q] = std::array::from_fn(|k| off[k.min(q - 1)]);
            let mut a = [[_mm512_setzero_ps(); V]; Q];
            for ia in 0..na {
                let xrow = xi.add(ia * xa);
                let grow = gi.add(ia * ga);
                for ib in 0..nb {
                    let mut g = [_mm512_setzero_ps(); V];
                    for (v, gv) in g.iter_mut().enumerate() {
                        *gv = _mm512_loadu_ps(grow.add(ib * gb + 16 * v));
                    }
                    let xp = xrow.add(ib * xb);
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
