//! Winograd F(2×2, 3×3) convolution (Lavin & Gray 2016) for 3×3,
//! stride-1, pad-1 convolutions of even-sized maps: 2.25× fewer
//! multiplications than the direct convolution, forward and backward.
//!
//! Each 2×2 block of outputs ("tile") is computed from the 4×4 input patch
//! `d` around it:
//!
//! ```text
//! V = Bᵀ d B            (per input channel)     U = G g Gᵀ   (per channel pair)
//! M[ξ] = V[ξ] · U[ξ]    (16 GEMMs, ξ = 0..16)   Y = Aᵀ M A + b
//! Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//! G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]            Aᵀ = [1 1 1 0; 0 1 −1 −1]
//! ```
//!
//! The backward pass is the exact gradient of that computation:
//! `gM = A gY Aᵀ`, `gU[ξ] = Σ_tiles V[ξ]ᵀ gM[ξ]`, `gW = Gᵀ gU G`,
//! `gV[ξ] = gM[ξ] · U[ξ]ᵀ` and `gd = B gV Bᵀ` scattered back onto the
//! overlapping patches. The transforms hold only 0, ±1 and ±½, so the
//! result equals the direct convolution up to float rounding.
//!
//! Tensors are tile-major: `V [T × 16 × C_in]`, `M [T × 16 × C_out]`; the
//! 16 GEMMs run on strided rows with the register-blocked kernels of
//! [`kernels`]. A batch is processed a few images at a time so that the
//! transformed tiles stay in cache.

// The transforms index several small arrays by the same matrix indices.
#![allow(clippy::needless_range_loop)]

use super::conv::ConvGeom;
use super::kernels;
#[cfg(target_arch = "x86_64")]
use super::winograd_simd::{self as simd, Chunk};

/// Tiles per chunk of images (the chunk's `V` and `M` stay in L2).
const CHUNK_TILES: usize = 128;
/// Channels per vector of the transforms.
const L: usize = 16;

/// Shapes and tables of one Winograd convolution.
#[derive(Clone, Debug)]
pub struct Winograd {
    /// The convolution (3×3, stride 1, pad 1).
    pub geom: ConvGeom,
    th: usize,
    tw: usize,
    wp: usize,
    chunk: usize,
    seq_in: Vec<usize>,
    seq_out: Vec<usize>,
}

/// Per-thread buffers of [`Winograd`] passes (sized for the largest
/// convolution they serve).
#[derive(Clone, Debug, Default)]
pub struct WinogradScratch {
    v: Vec<f32>,
    m: Vec<f32>,
    gxp: Vec<f32>,
}

impl WinogradScratch {
    /// Grow the buffers to serve `w` too.
    pub fn serve(&mut self, w: &Winograd) {
        let g = &w.geom;
        let t = w.chunk * w.th * w.tw;
        let grow = |b: &mut Vec<f32>, n: usize| {
            if b.len() < n {
                b.resize(n, 0.0);
            }
        };
        grow(&mut self.v, t * 16 * g.c_in);
        grow(&mut self.m, t * 16 * g.c_out);
        grow(&mut self.gxp, w.chunk * (g.h + 2) * w.wp * g.c_in);
    }
}

impl Winograd {
    /// Whether `geom` runs on this path: 3×3, stride 1, pad 1, even
    /// height and width, channels multiples of 16, AVX-512.
    pub fn supports(geom: &ConvGeom) -> bool {
        kernels::available()
            && geom.k == 3
            && geom.stride == 1
            && geom.pad == 1
            && geom.h.is_multiple_of(2)
            && geom.w.is_multiple_of(2)
            && geom.h > 0
            && geom.w > 0
            && geom.c_in.is_multiple_of(L)
            && geom.c_out.is_multiple_of(L)
    }

    /// Tables for `geom` (which must be [`supported`](Self::supports)).
    pub fn new(geom: ConvGeom) -> Self {
        assert!(Self::supports(&geom), "winograd: unsupported shape");
        let (th, tw) = (geom.h / 2, geom.w / 2);
        Winograd {
            geom,
            th,
            tw,
            wp: geom.w + 2,
            chunk: (CHUNK_TILES / (th * tw)).max(1),
            seq_in: (0..geom.c_in).collect(),
            seq_out: (0..geom.c_out).collect(),
        }
    }

    /// Elements of the transformed weight `U` (and of `Uᵀ`): `16·C_in·C_out`.
    pub fn u_len(&self) -> usize {
        16 * self.geom.c_in * self.geom.c_out
    }

    fn padded_len(&self) -> usize {
        (self.geom.h + 2) * self.wp * self.geom.c_in
    }

    /// `U[ξ][c][o] = (G g Gᵀ)[ξ]` and `Uᵀ[ξ][o][c]` for the weight
    /// `w [C_out × 9·C_in]` (column order ky, kx, c).
    pub fn transform_weight(&self, w: &[f32], u: &mut [f32], ut: &mut [f32]) {
        let (ci, co) = (self.geom.c_in, self.geom.c_out);
        for o in 0..co {
            for c in 0..ci {
                let g = |ky: usize, kx: usize| w[o * 9 * ci + (ky * 3 + kx) * ci + c];
                // rows: G g
                let mut r = [[0.0f32; 3]; 4];
                for kx in 0..3 {
                    let (g0, g1, g2) = (g(0, kx), g(1, kx), g(2, kx));
                    r[0][kx] = g0;
                    r[1][kx] = 0.5 * (g0 + g1 + g2);
                    r[2][kx] = 0.5 * (g0 - g1 + g2);
                    r[3][kx] = g2;
                }
                for (i, ri) in r.iter().enumerate() {
                    let row = [
                        ri[0],
                        0.5 * (ri[0] + ri[1] + ri[2]),
                        0.5 * (ri[0] - ri[1] + ri[2]),
                        ri[2],
                    ];
                    for (j, v) in row.into_iter().enumerate() {
                        let xi = 4 * i + j;
                        u[(xi * ci + c) * co + o] = v;
                        ut[(xi * co + o) * ci + c] = v;
                    }
                }
            }
        }
    }

    /// `y [n·H·W × C_out] = conv(x) + b` from the padded input
    /// `xp [n·(H+2)·(W+2) × C_in]`, with `u` from
    /// [`Winograd::transform_weight`].
    pub fn forward(
        &self,
        xp: &[f32],
        n: usize,
        u: &[f32],
        bias: &[f32],
        s: &mut WinogradScratch,
        y: &mut [f32],
    ) {
        let g = &self.geom;
        let (ci, co) = (g.c_in, g.c_out);
        assert!(xp.len() >= n * self.padded_len(), "winograd: input");
        assert!(
            y.len() >= n * g.out_len() && bias.len() >= co,
            "winograd: output"
        );
        assert!(u.len() >= self.u_len(), "winograd: weight");
        let mut s0 = 0;
        while s0 < n {
            let c = self.chunk.min(n - s0);
            let t = c * self.th * self.tw;
            self.input_transform(&xp[s0 * self.padded_len()..], c, &mut s.v);
            for xi in 0..16 {
                kernels::rows_gemm(
                    &s.v[xi * ci..],
                    16 * ci,
                    &self.seq_in,
                    t,
                    &u[xi * ci * co..],
                    co,
                    None,
                    &mut s.m[xi * co..],
                    16 * co,
                    false,
                );
            }
            self.output_transform(&s.m, c, bias, &mut y[s0 * g.out_len()..]);
            s0 += c;
        }
    }

    /// Backward after [`Winograd::forward`] of the same `xp`: adds the
    /// transformed weight gradient of these `n` images to `gu`
    /// ([`u_len`](Self::u_len) values; zeroed first unless `accumulate`;
    /// [`Winograd::weight_grad`] turns it into the weight gradient once
    /// every image is in), and with `gx` writes the input gradient
    /// `[n·H·W × C_in]`; `ut` from [`Winograd::transform_weight`]. The
    /// input transform `V` of the forward pass is recomputed here from
    /// `xp` rather than stored: reading `xp` costs less memory traffic
    /// than keeping 16 transformed values per input pixel. The bias
    /// gradient is the caller's.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        xp: &[f32],
        gy: &[f32],
        n: usize,
        ut: &[f32],
        s: &mut WinogradScratch,
        gu: &mut [f32],
        accumulate: bool,
        mut gx: Option<&mut [f32]>,
    ) {
        let g = &self.geom;
        let (ci, co) = (g.c_in, g.c_out);
        assert!(xp.len() >= n * self.padded_len(), "winograd: input");
        assert!(gy.len() >= n * g.out_len(), "winograd: gradient");
        assert!(ut.len() >= self.u_len(), "winograd: weight");
        let gu = &mut gu[..16 * ci * co];
        if !accumulate {
            gu.fill(0.0);
        }
        let mut s0 = 0;
        while s0 < n {
            let c = self.chunk.min(n - s0);
            let t = c * self.th * self.tw;
            self.input_transform(&xp[s0 * self.padded_len()..], c, &mut s.v);
            self.grad_output_transform(&gy[s0 * g.out_len()..], c, &mut s.m);
            for xi in 0..16 {
                kernels::acc_outer(
                    &s.v[xi * ci..],
                    (1, 0, 0),
                    (t, 16 * ci, 16 * co),
                    &self.seq_in,
                    &s.m[xi * co..],
                    co,
                    &mut gu[xi * ci * co..],
                );
            }
            if let Some(gx) = gx.as_deref_mut() {
                // gV overwrites V (no longer needed for this chunk)
                for xi in 0..16 {
                    kernels::rows_gemm(
                        &s.m[xi * co..],
                        16 * co,
                        &self.seq_out,
                        t,
                        &ut[xi * co * ci..],
                        ci,
                        None,
                        &mut s.v[xi * ci..],
                        16 * ci,
                        false,
                    );
                }
                self.grad_input_transform(&s.v, c, &mut s.gxp, &mut gx[s0 * g.in_len()..]);
            }
            s0 += c;
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn chunk(&self, c: usize) -> Chunk {
        Chunk {
            c,
            th: self.th,
            tw: self.tw,
            wp: self.wp,
            plen: self.padded_len(),
            h: self.geom.h,
            w: self.geom.w,
        }
    }

    /// `V = Bᵀ d B` for every tile of `c` padded images.
    fn input_transform(&self, xp: &[f32], c: usize, v: &mut [f32]) {
        let ci = self.geom.c_in;
        assert!(xp.len() >= c * self.padded_len(), "winograd: input");
        assert!(v.len() >= c * self.th * self.tw * 16 * ci, "winograd: V");
        // SAFETY: `new` checked `supports` (AVX-512F detected at start,
        // the cached SIMD level) and ci % 16; sizes asserted above.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            simd::input(self.chunk(c), ci, xp.as_ptr(), v.as_mut_ptr())
        };
    }

    /// `Y = Aᵀ M A + b` into the output maps of `c` images.
    fn output_transform(&self, m: &[f32], c: usize, bias: &[f32], y: &mut [f32]) {
        let co = self.geom.c_out;
        assert!(m.len() >= c * self.th * self.tw * 16 * co, "winograd: M");
        assert!(
            y.len() >= c * self.geom.out_len() && bias.len() >= co,
            "winograd: output"
        );
        // SAFETY: as in `input_transform`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            simd::output(self.chunk(c), co, m.as_ptr(), bias.as_ptr(), y.as_mut_ptr())
        };
    }

    /// `gM = A gY Aᵀ` for every tile of `c` images.
    fn grad_output_transform(&self, gy: &[f32], c: usize, gm: &mut [f32]) {
        let co = self.geom.c_out;
        assert!(gy.len() >= c * self.geom.out_len(), "winograd: gradient");
        assert!(gm.len() >= c * self.th * self.tw * 16 * co, "winograd: gM");
        // SAFETY: as in `input_transform`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            simd::grad_output(self.chunk(c), co, gy.as_ptr(), gm.as_mut_ptr())
        };
    }

    /// `gd = B gV Bᵀ` scattered onto the padded input gradient of `c`
    /// images, then cropped into `gx` (overwritten).
    fn grad_input_transform(&self, gv: &[f32], c: usize, gxp: &mut [f32], gx: &mut [f32]) {
        let g = &self.geom;
        let ci = g.c_in;
        let plen = self.padded_len();
        assert!(gv.len() >= c * self.th * self.tw * 16 * ci, "winograd: gV");
        let gxp = &mut gxp[..c * plen];
        gxp.fill(0.0);
        // SAFETY: as in `input_transform`; gxp holds c·plen floats.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            simd::grad_input(self.chunk(c), ci, gv.as_ptr(), gxp.as_mut_ptr())
        };
        let row = g.w * ci;
        for img in 0..c {
            for y in 0..g.h {
                let src = img * plen + ((y + 1) * self.wp + 1) * ci;
                let dst = (img * g.h + y) * row;
                gx[dst..dst + row].copy_from_slice(&gxp[src..src + row]);
            }
        }
    }

    /// The weight gradient `gW = Gᵀ gU G` in the weight layout
    /// `[C_out × 9·C_in]` (overwritten) from `gu` of [`Winograd::backward`].
    pub fn weight_grad(&self, gu: &[f32], gw: &mut [f32]) {
        let (ci, co) = (self.geom.c_in, self.geom.c_out);
        assert!(
            gu.len() >= self.u_len() && gw.len() >= co * 9 * ci,
            "winograd: weight"
        );
        for o in 0..co {
            for c in 0..ci {
                let u = |xi: usize| gu[(xi * ci + c) * co + o];
                let mut r = [[0.0f32; 4]; 3];
                for j in 0..4 {
                    let (u0, u1, u2, u3) = (u(j), u(4 + j), u(8 + j), u(12 + j));
                    r[0][j] = u0 + 0.5 * u1 + 0.5 * u2;
                    r[1][j] = 0.5 * u1 - 0.5 * u2;
                    r[2][j] = 0.5 * u1 + 0.5 * u2 + u3;
                }
                for (ky, rk) in r.iter().enumerate() {
                    let row = [
                        rk[0] + 0.5 * rk[1] + 0.5 * rk[2],
                        0.5 * rk[1] - 0.5 * rk[2],
                        0.5 * rk[1] + 0.5 * rk[2] + rk[3],
                    ];
                    for (kx, v) in row.into_iter().enumerate() {
                        gw[o * 9 * ci + (ky * 3 + kx) * ci + c] = v;
                    }
                }
            }
        }
    }
}
