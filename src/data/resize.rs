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
        0.4169619083404541, 0.5752103924751282, 0.4881705045700073, 0.45650622248649597, 0.5395610928535461, 0.5237591862678528, 0.46222060918807983, 0.4776393175125122, 0.5544813871383667, 0.4750928580760956, 0.4414092004299164,
        0.4429774582386017, 0.529387354850769, 0.5317437052726746, 0.46970507502555847, 0.47230663895606995, 0.5527514219284058, 0.49020299315452576, 0.4402042329311371, 0.5646337866783142, 0.5033888816833496, 0.4608803391456604,
        0.47328272461891174, 0.4465486705303192, 0.5566230416297913, 0.5011938810348511, 0.4458714425563812, 0.5474200248718262, 0.5211119055747986, 0.460016131401062, 0.48580262064933777, 0.5511280298233032, 0.47992610931396484,
        0.5022910237312317, 0.45395809412002563, 0.5186833143234253, 0.5320279598236084, 0.4682101309299469, 0.4743933081626892, 0.5565812587738037, 0.48618084192276, 0.4502325654029846, 0.5449321269989014, 0.5259149670600891,
        0.5389267206192017, 0.47306349873542786, 0.46567851305007935, 0.5608360171318054, 0.5001561641693115, 0.4383411109447479, 0.5344792604446411, 0.5262779593467712, 0.4540610909461975, 0.5114464163780212, 0.5423213243484497,
        0.5650843977928162, 0.517637312412262, 0.44166043400764465, 0.5259813666343689, 0.5331293940544128, 0.46875, 0.4771732985973358, 0.5480561256408691, 0.49631747603416443, 0.4336230754852295, 0.5692359805107117,
        0.5240761041641235, 0.5376501679420471, 0.4834388792514801, 0.44725748896598816, 0.5544622540473938, 0.5009920597076416, 0.44437503814697266, 0.5525773167610168, 0.516584575176239, 0.46443647146224976, 0.47240108251571655,
        0.42984539270401, 0.5623596906661987, 0.5070360898971558, 0.45131915807724, 0.5233445763587952, 0.5316246747970581, 0.4692898690700531, 0.46871280670166016, 0.5589369535446167, 0.483541876077652, 0.4352089762687683,
        0.45757389068603516, 0.4889581799507141, 0.5443786978721619, 0.477483868598938, 0.46025392413139343, 0.5635526180267334, 0.49985337257385254, 0.44120875000953674, 0.5330885648727417, 0.5274853110313416, 0.46421730518341064,
        0.4766196608543396, 0.4534040093421936, 0.552418053150177, 0.5120413899421692, 0.44729700684547424, 0.5194039940834045, 0.5339864492416382, 0.46779492497444153, 0.48048728704452515, 0.5478660464286804, 0.4966157376766205,
        0.4960907995700836, 0.46240711212158203, 0.49653804302215576, 0.5384835004806519, 0.47527939081192017, 0.45688119530677795, 0.5758827328681946, 0.48099377751350403, 0.4554358124732971, 0.528907060623169, 0.5444303154945374,
    ];

    // Pillow 13.0.0, upscale:
    //   b = np.fromfunction(lambda i, j: ((i*5 + j*2) % 7) / 6, (5, 5))
    //   Image.fromarray(b.astype(np.float32), mode='F').resize((8, 8), Image.BILINEAR)
    #[rustfmt::skip]
    const PIL_5_TO_8: [f32; 64] = [
        0.0, 0.1458333432674408, 0.3541666865348816, 0.5625, 0.7708333730697632, 0.9791666865348816, 0.53125, 0.1666666716337204,
        0.3645833134651184, 0.287109375, 0.2083333432674408, 0.4166666567325592, 0.625, 0.8333333730697632, 0.6725260615348816, 0.53125,
        0.8125, 0.4798177182674408, 0.068359375, 0.2311197966337204, 0.4166666567325592, 0.6250000596046448, 0.8333333730697632, 0.9791666865348816,
        0.6041666865348816, 0.5904947519302368, 0.5436198115348816, 0.2506510317325592, 0.2083333432674408, 0.4166666865348816, 0.6250000596046448, 0.7708333730697632,
        0.3958333432674408, 0.5416666269302368, 0.6998698115348816, 0.4069010317325592, 0.2506510317325592, 0.2311197966337204, 0.4166666865348816, 0.5625,
        0.1875, 0.3333333432674408, 0.537109375, 0.6998697519302368, 0.5436197519302368, 0.068359375, 0.2083333432674408, 0.3541666865348816,
        0.6354166865348816, 0.494140625, 0.3333333134651184, 0.5416666269302368, 0.5904948115348816, 0.4798177182674408, 0.287109375, 0.1458333432674408,
        1.0, 0.6354166865348816, 0.1875, 0.3958333432674408, 0.6041666865348816, 0.8125, 0.3645833134651184, 0.0,
    ];

    // Pillow 13.0.0, non-square, downscale rows and upscale columns:
    //   c = np.fromfunction(lambda i, j: ((i*3 + j*5) % 11) / 10, (6, 9))
    //   Image.fromarray(c.astype(np.float32), mode='F').resize((13, 4), Image.BILINEAR)
    // (PIL sizes are (width, height): the result is 4 rows of 13.)
    #[rustfmt::skip]
    const PIL_6X9_TO_4X13: [f32; 52] = [
        0.11250000447034836, 0.3817307651042938, 0.6326923370361328, 0.6932691931724548, 0.5846153497695923, 0.5394230484962463, 0.5999999642372131, 0.4701923131942749, 0.446153849363327, 0.48557692766189575, 0.35576921701431274, 0.5432692170143127, 0.8125,
        0.5333333611488342, 0.4076923131942749, 0.33076924085617065, 0.42307692766189575, 0.6658119559288025, 0.6641025543212891, 0.3333333432674408, 0.5948718190193176, 0.5273504257202148, 0.26239317655563354, 0.523931622505188, 0.55982905626297, 0.5,
        0.5999999642372131, 0.4743589758872986, 0.39743590354919434, 0.48974359035491943, 0.4316239356994629, 0.5051282048225403, 0.7666666507720947, 0.43589743971824646, 0.43418803811073303, 0.6299145221710205, 0.29914531111717224, 0.3632478713989258, 0.5666666626930237,
        0.2874999940395355, 0.5567308068275452, 0.6490384936332703, 0.23365384340286255, 0.4951923191547394, 0.629807710647583, 0.5, 0.5605769157409668, 0.5153846144676208, 0.4067307710647583, 0.4673077166080475, 0.4009615480899811, 0.30000001192092896,
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
