//! The tile transforms of [`Winograd`](super::winograd::Winograd) on
//! 16-channel AVX-512 vectors, one loop over the tiles of a chunk of
//! images per call. Each sum is evaluated in the order the formulas in
//! `winograd.rs` give (rows first, then columns), so results do not
//! depend on the vector code.

// The transforms index several small arrays by the same matrix indices.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

/// Shapes of a chunk: `c` images of `th × tw` tiles, padded input rows
/// of `wp` pixels (`plen` floats per padded image), `h × w` maps.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub c: usize,
    pub th: usize,
    pub tw: usize,
    pub wp: usize,
    pub plen: usize,
    pub h: usize,
    pub w: usize,
}

#[inline(always)]
unsafe fn ld(p: *const f32) -> __m512 {
    unsafe { _mm512_loadu_ps(p) }
}

#[inline(always)]
unsafe fn st(p: *mut f32, v: __m512) {
    unsafe { _mm512_storeu_ps(p, v) }
}

#[inline(always)]
fn neg(a: __m512) -> __m512 {
    // −a: flip the sign bit (as the scalar `-a`).
    unsafe {
        _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(a),
            _mm512_set1_epi32(i32::MIN),
        ))
    }
}

/// `V = Bᵀ d B` of every tile: `xp` padded images `[c × plen]`,
/// `v [T × 16 × ci]`.
///
/// # Safety
/// SIMD level AVX-512; `xp` holds `c·plen` floats, `v` `c·th·tw·16·ci`, `ci % 16 == 0`.
#[target_feature(
    enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
)]
pub unsafe fn input(k: Chunk, ci: usize, xp: *const f32, v: *mut f32) {
    unsafe {
        let mut t = 0;
        for img in 0..k.c {
            for ty in 0..k.th {
                for tx in 0..k.tw {
                    let base = xp.add(img * k.plen + (2 * ty * k.wp + 2 * tx) * ci);
                    let out = v.add(t * 16 * ci);
                    for cb in (0..ci).step_by(16) {
                        let d = |i: usize, j: usize| ld(base.add((i * k.wp + j) * ci + cb));
                        let mut r = [[_mm512_setzero_ps(); 4]; 4];
                        for j in 0..4 {
                            let (d0, d1, d2, d3) = (d(0, j), d(1, j), d(2, j), d(3, j));
                            r[0][j] = _mm512_sub_ps(d0, d2);
                            r[1][j] = _mm512_add_ps(d1, d2);
                            r[2][j] = _mm512_sub_ps(d2, d1);
                            r[3][j] = _mm512_sub_ps(d1, d3);
                        }
                        for (i, ri) in r.iter().enumerate() {
                            let row = [
                                _mm512_sub_ps(ri[0], ri[2]),
                                _mm512_add_ps(ri[1], ri[2]),
                                _mm512_sub_ps(ri[2], ri[1]),
                                _mm512_sub_ps(ri[1], ri[3]),
                            ];
                            for (j, val) in row.into_iter().enumerate() {
                                st(out.add((4 * i + j) * ci + cb), val);
                            }
                        }
                    }
                    t += 1;
                }
            }
        }
    }
}

/// `Y = Aᵀ M A + b` of every tile into `y [c·h·w × co]`.
///
/// # Safety
/// SIMD level AVX-512; `m` holds `c·th·tw·16·co` floats, `y` `c·h·w·co`, `bias`
/// `co`, `co % 16 == 0`, `h = 2·th`, `w = 2·tw`.
#[target_feature(
    enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
)]
pub unsafe fn output(k: Chunk, co: usize, m: *const f32, bias: *const f32, y: *mut f32) {
    unsafe {
        let mut t = 0;
        for img in 0..k.c {
            for ty in 0..k.th {
                for tx in 0..k.tw {
                    let mt = m.add(t * 16 * co);
                    for cb in (0..co).step_by(16) {
                        let mv = |xi: usize| ld(mt.add(xi * co + cb));
                        let mut s = [[_mm512_setzero_ps(); 4]; 2];
                        for j in 0..4 {
                            let (m0, m1, m2, m3) = (mv(j), mv(4 + j), mv(8 + j), mv(12 + j));
                            s[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                            s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                        }
                        let b = ld(bias.add(cb));
                        for (a, sa) in s.iter().enumerate() {
                            let y0 =
                                _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(sa[0], sa[1]), sa[2]), b);
                            let y1 =
                                _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(sa[1], sa[2]), sa[3]), b);
                            let row = ((img * k.h + 2 * ty + a) * k.w + 2 * tx) * co + cb;
                            st(y.add(row), y0);
                            st(y.add(row + co), y1);
                        }
                    }
                    t += 1;
                }
            }
        }
    }
}

/// `gM = A gY Aᵀ` of every tile: `gy [c·h·w × co]`, `gm [T × 16 × co]`.
///
/// # Safety
/// SIMD level AVX-512; sizes as in [`output`].
#[target_feature(
    enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
)]
pub unsafe fn grad_output(k: Chunk, co: usize, gy: *const f32, gm: *mut f32) {
    unsafe {
        let mut t = 0;
        for img in 0..k.c {
            for ty in 0..k.th {
                for tx in 0..k.tw {
                    let out = gm.add(t * 16 * co);
                    for cb in (0..co).step_by(16) {
                        let gv = |a: usize, b: usize| {
                            ld(gy.add(((img * k.h + 2 * ty + a) * k.w + 2 * tx + b) * co + cb))
                        };
                        let (g00, g01, g10, g11) = (gv(0, 0), gv(0, 1), gv(1, 0), gv(1, 1));
                        let r = [
                            [g00, g01],
                            [_mm512_add_ps(g00, g10), _mm512_add_ps(g01, g11)],
                            [_mm512_sub_ps(g00, g10), _mm512_sub_ps(g01, g11)],
                            [neg(g10), neg(g11)],
                        ];
                        for (i, ri) in r.iter().enumerate() {
                            let row = [
                                ri[0],
                                _mm512_add_ps(ri[0], ri[1]),
                                _mm512_sub_ps(ri[0], ri[1]),
                                neg(ri[1]),
                            ];
                            for (j, val) in row.into_iter().enumerate() {
                                st(out.add((4 * i + j) * co + cb), val);
                            }
                        }
                    }
                    t += 1;
                }
            }
        }
    }
}

/// `gd = B gV Bᵀ` of every tile, added onto the padded gradient
/// `gxp [c × plen]` (tile after tile, rows then columns).
///
/// # Safety
/// SIMD level AVX-512; `gv` holds `c·th·tw·16·ci` floats, `gxp` `c·plen`,
/// `ci % 16 == 0`.
#[target_feature(
    enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
)]
pub unsafe fn grad_input(k: Chunk, ci: usize, gv: *const f32, gxp: *mut f32) {
    unsafe {
        let mut t = 0;
        for img in 0..k.c {
            for ty in 0..k.th {
                for tx in 0..k.tw {
                    let vt = gv.add(t * 16 * ci);
                    let base = gxp.add(img * k.plen + (2 * ty * k.wp + 2 * tx) * ci);
                    for cb in (0..ci).step_by(16) {
                        let vv = |xi: usize| ld(vt.add(xi * ci + cb));
                        let mut r = [[_mm512_setzero_ps(); 4]; 4];
                        for j in 0..4 {
                            let (v0, v1, v2, v3) = (vv(j), vv(4 + j), vv(8 + j), vv(12 + j));
                            r[0][j] = v0;
                            r[1][j] = _mm512_add_ps(_mm512_sub_ps(v1, v2), v3);
                            r[2][j] = _mm512_add_ps(_mm512_sub_ps(v1, v0), v2);
                            r[3][j] = neg(v3);
                        }
                        for (i, ri) in r.iter().enumerate() {
                            let row = [
                                ri[0],
                                _mm512_add_ps(_mm512_sub_ps(ri[1], ri[2]), ri[3]),
                                _mm512_add_ps(_mm512_sub_ps(ri[1], ri[0]), ri[2]),
                                neg(ri[3]),
                            ];
                            for (j, val) in row.into_iter().enumerate() {
                                let p = base.add((i * k.wp + j) * ci + cb);
                                st(p, _mm512_add_ps(ld(p), val));
                            }
                        }
                    }
                    t += 1;
                }
            }
        }
    }
}
