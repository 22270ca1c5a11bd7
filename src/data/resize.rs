//! Antialiased bilinear image resize, matching PIL / torchvision.
//!
//! This reproduces Pillow's `Image.resize(size, Image.BILINEAR)` on
//! single-channel float (`'F'` mode) images, which is also what torchvision's
//! `resize(..., antialias=True)` computes: a separable triangle filter whose
//! support is widened by the downscale factor (`support = max(scale, 1)`),
//! output pixel `i` centred at `(i + 0.5) * scale` in source coordinates,
//! weights normalised to sum to one per output pixel, a horizontal pass
//! followed by a vertical pass. Weights and per-pixel sums are computed in
//! `f64` (as Pillow does), and the intermediate and output images are `f32`.

/// Filter taps for one axis: for each output index, a run of consecutive
/// source indices starting at `start[i]` with weights
/// `coeffs[offset[i]..offset[i + 1]]`.
#[derive(Debug, Clone)]
struct Taps {
    start: Vec<usize>,
    offset: Vec<usize>,
    coeffs: Vec<f64>,
}

impl Taps {
    /// Precompute the triangle-filter taps mapping `src` samples to `dst`.
    ///
    /// Follows Pillow's `precompute_coeffs` (Resample.c) for the bilinear
    /// filter. Zero weights at either end of a run are dropped, so an
    /// unchanged size gives exact identity taps.
    fn new(src: usize, dst: usize) -> Taps {
        let mut start = Vec::with_capacity(dst);
        let mut offset = Vec::with_capacity(dst + 1);
        let mut coeffs = Vec::new();
        offset.push(0);
        if dst == 0 {
            return Taps {
                start,
                offset,
                coeffs,
            };
        }
        let scale = src as f64 / dst as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the bilinear filter has support 1
        let inv = 1.0 / filterscale;
        let mut weights: Vec<f64> = Vec::new();
        for i in 0..dst {
            let center = (i as f64 + 0.5) * scale;
            // Pillow truncates towards zero, then clamps to [0, src].
            let lo = (center - support + 0.5).max(0.0) as usize;
            let hi = ((center + support + 0.5).max(0.0) as usize).min(src);
            let lo = lo.min(hi);
            weights.clear();
            let mut total = 0.0;
            for x in lo..hi {
                let w = triangle((x as f64 - center + 0.5) * inv);
                weights.push(w);
                total += w;
            }
            if total != 0.0 {
                for w in &mut weights {
                    *w /= total;
                }
            }
            // Trim zero weights at both ends.
            let first = weights
                .iter()
                .position(|&w| w != 0.0)
                .unwrap_or(weights.len());
            let last = weights
                .iter()
                .rposition(|&w| w != 0.0)
                .map_or(first, |p| p + 1);
            start.push(lo + first);
            coeffs.extend_from_slice(&weights[first..last]);
            offset.push(coeffs.len());
        }
        Taps {
            start,
            offset,
            coeffs,
        }
    }

    /// Number of output samples.
    fn len(&self) -> usize {
        self.start.len()
    }

    /// Weights and first source index for output sample `i`.
    fn get(&self, i: usize) -> (usize, &[f64]) {
        (
            self.start[i],
            &self.coeffs[self.offset[i]..self.offset[i + 1]],
        )
    }
}

/// The triangle (bilinear) kernel with support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// A precomputed resize from `src_h × src_w` to `dst_h × dst_w` for
/// single-channel row-major `f32` images.
///
/// Construction computes all filter weights once; [`Resizer::apply`] then
/// resizes any number of images without allocating, using an internal
/// scratch buffer for the intermediate (horizontally resized) image.
#[derive(Debug, Clone)]
pub struct Resizer {
    src_h: usize,
    src_w: usize,
    dst_h: usize,
    dst_w: usize,
    horiz: Taps,
    vert: Taps,
    scratch: Vec<f32>,
}

impl Resizer {
    /// Precompute the weights for resizing `src_h × src_w` images to
    /// `dst_h × dst_w`.
    pub fn new(src_h: usize, src_w: usize, dst_h: usize, dst_w: usize) -> Resizer {
        Resizer {
            src_h,
            src_w,
            dst_h,
            dst_w,
            horiz: Taps::new(src_w, dst_w),
            vert: Taps::new(src_h, dst_h),
            scratch: vec![0.0; src_h.saturating_mul(dst_w)],
        }
    }

    /// Number of pixels in a source image (`src_h * src_w`).
    pub fn src_len(&self) -> usize {
        self.src_h * self.src_w
    }

    /// Number of pixels in an output image (`dst_h * dst_w`).
    pub fn dst_len(&self) -> usize {
        self.dst_h * self.dst_w
    }

    /// Resize one row-major image `src` (`src_h * src_w` values) into `dst`
    /// (`dst_h * dst_w` values). Does not allocate.
    ///
    /// # Panics
    ///
    /// If `src.len() != self.src_len()` or `dst.len() != self.dst_len()`;
    /// the sizes are fixed at construction, so a mismatch is a caller bug.
    pub fn apply(&mut self, src: &[f32], dst: &mut [f32]) {
        assert_eq!(src.len(), self.src_len(), "Resizer::apply: source length");
        assert_eq!(
            dst.len(),
            self.dst_len(),
            "Resizer::apply: destination length"
        );
        debug_assert_eq!(self.horiz.len(), self.dst_w);
        debug_assert_eq!(self.vert.len(), self.dst_h);
        if self.dst_w == 0 {
            return;
        }

        // Horizontal pass: src_h × src_w -> src_h × dst_w.
        for (row, out) in src
            .chunks_exact(self.src_w.max(1))
            .zip(self.scratch.chunks_exact_mut(self.dst_w))
        {
            for (j, o) in out.iter_mut().enumerate() {
                let (s, w) = self.horiz.get(j);
                *o = dot(&row[s..s + w.len()], w);
            }
        }

        // Vertical pass: src_h × dst_w -> dst_h × dst_w.
        let dst_w = self.dst_w;
        for (i, out) in dst.chunks_exact_mut(dst_w).enumerate() {
            let (s, w) = self.vert.get(i);
            for (j, o) in out.iter_mut().enumerate() {
                let mut acc = 0.0f64;
                for (k, &wk) in w.iter().enumerate() {
                    acc += f64::from(self.scratch[(s + k) * dst_w + j]) * wk;
                }
                *o = acc as f32;
            }
        }
    }
}

/// Weighted sum of `xs` with weights `ws`, accumulated in `f64`.
fn dot(xs: &[f32], ws: &[f64]) -> f32 {
    let mut acc = 0.0f64;
    for (&x, &w) in xs.iter().zip(ws) {
        acc += f64::from(x) * w;
    }
    acc as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resize(src: &[f32], sh: usize, sw: usize, dh: usize, dw: usize) -> Vec<f32> {
        let mut r = Resizer::new(sh, sw, dh, dw);
        let mut out = vec![0.0; r.dst_len()];
        r.apply(src, &mut out);
        out
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 1e-5, "pixel {i}: got {g}, want {w}");
        }
    }

    #[test]
    fn same_size_is_identity() {
        let src: Vec<f32> = (0..28 * 28)
            .map(|k| ((k * 37) % 101) as f32 / 100.0)
            .collect();
        assert_eq!(resize(&src, 28, 28, 28, 28), src);
        let src: Vec<f32> = (0..6 * 9).map(|k| k as f32 * 0.25 - 3.0).collect();
        assert_eq!(resize(&src, 6, 9, 6, 9), src);
    }

    #[test]
    fn constant_stays_constant() {
        for &(sh, sw, dh, dw) in &[
            (28, 28, 11, 11),
            (28, 28, 7, 13),
            (5, 5, 8, 8),
            (3, 17, 19, 2),
        ] {
            let src = vec![0.625f32; sh * sw];
            for v in resize(&src, sh, sw, dh, dw) {
                assert!((v - 0.625).abs() < 1e-6, "{sh}x{sw}->{dh}x{dw}: {v}");
            }
        }
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        assert!(resize(&[], 0, 0, 3, 3).iter().all(|&v| v == 0.0));
        assert!(resize(&[1.0; 4], 2, 2, 0, 0).is_empty());
        assert!(resize(&[1.0; 4], 2, 2, 0, 3).is_empty());
    }

    // Reference values produced with Pillow 13.0.0 / numpy 2.4.6:
    //   arr = np.fromfunction(lambda i, j: ((i*7 + j*3) % 17) / 16, (28, 28))
    //   Image.fromarray(arr.astype(np.float32), mode='F')
    //        .resize((11, 11), Image.BILINEAR)
    #[rustfmt::skip]
    const PIL_28_TO_11: [f32; 121] = [
        0.4169619, 0.5752104, 0.4881705, 0.45650622, 0.5395611, 0.5237592, 0.4622206, 0.47763932, 0.5544814, 0.47509286, 0.4414092,
        0.44297746, 0.52938735, 0.5317437, 0.46970508, 0.47230664, 0.5527514, 0.490203, 0.44020423, 0.5646338, 0.5033889, 0.46088034,
        0.47328272, 0.44654867, 0.55662304, 0.5011939, 0.44587144, 0.54742, 0.5211119, 0.46001613, 0.48580262, 0.55112803, 0.4799261,
        0.502291, 0.4539581, 0.5186833, 0.53202796, 0.46821013, 0.4743933, 0.55658126, 0.48618084, 0.45023257, 0.5449321, 0.52591497,
        0.5389267, 0.4730635, 0.4656785, 0.560836, 0.50015616, 0.4383411, 0.53447926, 0.52627796, 0.4540611, 0.5114464, 0.5423213,
        0.5650844, 0.5176373, 0.44166043, 0.52598137, 0.5331294, 0.46875, 0.4771733, 0.5480561, 0.49631748, 0.43362308, 0.569236,
        0.5240761, 0.53765017, 0.48343888, 0.4472575, 0.55446225, 0.50099206, 0.44437504, 0.5525773, 0.5165846, 0.46443647, 0.47240108,
        0.4298454, 0.5623597, 0.5070361, 0.45131916, 0.5233446, 0.5316247, 0.46928987, 0.4687128, 0.55893695, 0.48354188, 0.43520898,
        0.4575739, 0.48895818, 0.5443787, 0.47748387, 0.46025392, 0.5635526, 0.49985337, 0.44120875, 0.53308856, 0.5274853, 0.4642173,
        0.47661966, 0.453404, 0.55241805, 0.5120414, 0.447297, 0.519404, 0.53398645, 0.46779492, 0.4804873, 0.54786605, 0.49661574,
        0.4960908, 0.4624071, 0.49653804, 0.5384835, 0.4752794, 0.4568812, 0.57588273, 0.48099378, 0.4554358, 0.52890706, 0.5444303,
    ];

    // Pillow 13.0.0, upscale:
    //   b = np.fromfunction(lambda i, j: ((i*5 + j*2) % 7) / 6, (5, 5))
    //   Image.fromarray(b.astype(np.float32), mode='F').resize((8, 8), Image.BILINEAR)
    #[rustfmt::skip]
    const PIL_5_TO_8: [f32; 64] = [
        0.0, 0.14583334, 0.3541667, 0.5625, 0.7708334, 0.9791667, 0.53125, 0.16666667,
        0.3645833, 0.28710938, 0.20833334, 0.41666666, 0.625, 0.8333334, 0.67252606, 0.53125,
        0.8125, 0.47981772, 0.068359375, 0.2311198, 0.41666666, 0.62500006, 0.8333334, 0.9791667,
        0.6041667, 0.59049475, 0.5436198, 0.25065103, 0.20833334, 0.4166667, 0.62500006, 0.7708334,
        0.39583334, 0.5416666, 0.6998698, 0.40690103, 0.25065103, 0.2311198, 0.4166667, 0.5625,
        0.1875, 0.33333334, 0.5371094, 0.69986975, 0.54361975, 0.068359375, 0.20833334, 0.3541667,
        0.6354167, 0.49414062, 0.3333333, 0.5416666, 0.5904948, 0.47981772, 0.28710938, 0.14583334,
        1.0, 0.6354167, 0.1875, 0.39583334, 0.6041667, 0.8125, 0.3645833, 0.0,
    ];

    // Pillow 13.0.0, non-square, downscale rows and upscale columns:
    //   c = np.fromfunction(lambda i, j: ((i*3 + j*5) % 11) / 10, (6, 9))
    //   Image.fromarray(c.astype(np.float32), mode='F').resize((13, 4), Image.BILINEAR)
    // (PIL sizes are (width, height): the result is 4 rows of 13.)
    #[rustfmt::skip]
    const PIL_6X9_TO_4X13: [f32; 52] = [
        0.112500004, 0.38173077, 0.63269234, 0.6932692, 0.58461535, 0.53942305, 0.59999996, 0.4701923, 0.44615385, 0.48557693, 0.35576922, 0.5432692, 0.8125,
        0.53333336, 0.4076923, 0.33076924, 0.42307693, 0.66581196, 0.66410255, 0.33333334, 0.5948718, 0.5273504, 0.26239318, 0.5239316, 0.55982906, 0.5,
        0.59999996, 0.47435898, 0.3974359, 0.4897436, 0.43162394, 0.5051282, 0.76666665, 0.43589744, 0.43418804, 0.6299145, 0.2991453, 0.36324787, 0.56666666,
        0.2875, 0.5567308, 0.6490385, 0.23365384, 0.49519232, 0.6298077, 0.5, 0.5605769, 0.5153846, 0.40673077, 0.46730772, 0.40096155, 0.3,
    ];

    fn pattern(h: usize, w: usize, a: usize, b: usize, m: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(h * w);
        for i in 0..h {
            for j in 0..w {
                v.push(((i * a + j * b) % m) as f32 / (m - 1) as f32);
            }
        }
        v
    }

    #[test]
    fn matches_pil_downscale_28_to_11() {
        let src = pattern(28, 28, 7, 3, 17);
        assert_close(&resize(&src, 28, 28, 11, 11), &PIL_28_TO_11);
    }

    #[test]
    fn matches_pil_upscale_5_to_8() {
        let src = pattern(5, 5, 5, 2, 7);
        assert_close(&resize(&src, 5, 5, 8, 8), &PIL_5_TO_8);
    }

    #[test]
    fn matches_pil_non_square() {
        let src = pattern(6, 9, 3, 5, 11);
        assert_close(&resize(&src, 6, 9, 4, 13), &PIL_6X9_TO_4X13);
    }

    #[test]
    fn apply_is_repeatable() {
        let src = pattern(28, 28, 7, 3, 17);
        let mut r = Resizer::new(28, 28, 11, 11);
        let mut a = vec![0.0; 121];
        let mut b = vec![1.0; 121];
        r.apply(&src, &mut a);
        r.apply(&src, &mut b);
        assert_eq!(a, b);
    }
}
