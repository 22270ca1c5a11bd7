//! Random-translation augmentation of training images (`data.shift`).
//!
//! Every training image, in every epoch, is moved by an integer offset
//! (dx, dy), each uniform in `[−S, S]`; pixels moved in are 0, pixels
//! moved out are dropped. The offset is a pure function of (seed, epoch,
//! dataset index), so it needs no RNG state: runs are reproducible and a
//! resumed run draws the same offsets as an uninterrupted one.

/// One splitmix64 step: a bijective 64-bit mix.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Keeps the offsets apart from any other use of the seed.
const DOMAIN: u64 = 0x7368_6966_742d_6175; // "shift-au"

/// The offset (dx, dy) of image `index` in epoch `epoch` (0-based) for the
/// run seeded with `seed`; each coordinate in `[−shift, shift]`. `shift = 0`
/// gives (0, 0).
pub fn offset(seed: u64, epoch: u64, index: u64, shift: usize) -> (i32, i32) {
    if shift == 0 {
        return (0, 0);
    }
    let h = splitmix64(splitmix64(splitmix64(seed ^ DOMAIN) ^ epoch) ^ index);
    let span = 2 * shift as u64 + 1;
    // Multiply-shift maps a uniform 32-bit word onto 0..span.
    let pick = |w: u64| (((w & 0xFFFF_FFFF) * span) >> 32) as i32 - shift as i32;
    (pick(h), pick(h >> 32))
}

/// Write `src` (a row-major `side`×`side` image) translated by (dx, dy)
/// into `dst`: `dst[y][x] = src[y − dy][x − dx]`, 0 where that lies
/// outside the image. Positive dx moves the content right, positive dy
/// down. Any offset is accepted; |dx| or |dy| ≥ side gives all zeros.
///
/// # Panics
///
/// If `src` or `dst` does not hold `side * side` values.
pub fn shift_image(src: &[f32], side: usize, dx: i32, dy: i32, dst: &mut [f32]) {
    let n = side * side;
    assert_eq!(src.len(), n, "shift_image: src length");
    assert_eq!(dst.len(), n, "shift_image: dst length");
    let s = side as i64;
    let (dx, dy) = (dx as i64, dy as i64);
    if dx.abs() >= s || dy.abs() >= s {
        dst.fill(0.0);
        return;
    }
    // Destination columns [x0, x1) come from source columns [x0 − dx, x1 − dx).
    let (x0, x1) = (dx.max(0) as usize, (s + dx.min(0)) as usize);
    let sx0 = (x0 as i64 - dx) as usize;
    let w = x1 - x0;
    for y in 0..side {
        let row = &mut dst[y * side..(y + 1) * side];
        let sy = y as i64 - dy;
        if !(0..s).contains(&sy) {
            row.fill(0.0);
            continue;
        }
        let from = sy as usize * side + sx0;
        row[..x0].fill(0.0);
        row[x0..x1].copy_from_slice(&src[from..from + w]);
        row[x1..].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×4 image with distinct non-zero pixels: 1..=16 row-major.
    fn img() -> Vec<f32> {
        (1..=16).map(|v| v as f32).collect()
    }

    fn shifted(dx: i32, dy: i32) -> Vec<f32> {
        let mut out = vec![f32::NAN; 16];
        shift_image(&img(), 4, dx, dy, &mut out);
        out
    }

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first output of Vigna's splitmix64 generator seeded with 0.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn zero_offset_is_identity() {
        assert_eq!(shifted(0, 0), img());
    }

    #[test]
    fn shifts_by_hand() {
        #[rustfmt::skip]
        let cases: [((i32, i32), [f32; 16]); 6] = [
            // right by 1
            ((1, 0), [0., 1., 2., 3.,  0., 5., 6., 7.,  0., 9., 10., 11.,  0., 13., 14., 15.]),
            // left by 2
            ((-2, 0), [3., 4., 0., 0.,  7., 8., 0., 0.,  11., 12., 0., 0.,  15., 16., 0., 0.]),
            // down by 1
            ((0, 1), [0., 0., 0., 0.,  1., 2., 3., 4.,  5., 6., 7., 8.,  9., 10., 11., 12.]),
            // up by 1, right by 2
            ((2, -1), [0., 0., 5., 6.,  0., 0., 9., 10.,  0., 0., 13., 14.,  0., 0., 0., 0.]),
            // the largest in-range offset: only one pixel survives
            ((-3, 3), [0., 0., 0., 0.,  0., 0., 0., 0.,  0., 0., 0., 0.,  4., 0., 0., 0.]),
            ((3, -3), [0., 0., 0., 13.,  0., 0., 0., 0.,  0., 0., 0., 0.,  0., 0., 0., 0.]),
        ];
        for ((dx, dy), want) in cases {
            assert_eq!(shifted(dx, dy), want, "(dx, dy) = ({dx}, {dy})");
        }
    }

    #[test]
    fn offsets_beyond_the_side_give_zeros() {
        for (dx, dy) in [(4, 0), (0, -4), (-9, 9), (i32::MIN, 0), (0, i32::MAX)] {
            assert_eq!(shifted(dx, dy), vec![0.0; 16], "({dx}, {dy})");
        }
    }

    #[test]
    fn shift_and_back_keeps_the_overlap() {
        let side = 7;
        let src: Vec<f32> = (0..side * side).map(|v| v as f32 + 1.0).collect();
        let (mut a, mut b) = (vec![0.0; side * side], vec![0.0; side * side]);
        for dx in -3..=3 {
            for dy in -3..=3 {
                shift_image(&src, side, dx, dy, &mut a);
                shift_image(&a, side, -dx, -dy, &mut b);
                for y in 0..side as i32 {
                    for x in 0..side as i32 {
                        let inside = (0..side as i32).contains(&(x + dx))
                            && (0..side as i32).contains(&(y + dy));
                        let i = (y * side as i32 + x) as usize;
                        let want = if inside { src[i] } else { 0.0 };
                        assert_eq!(b[i], want, "({dx}, {dy}) at ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn offsets_cover_the_square_and_stay_inside() {
        for shift in [1usize, 2, 3] {
            let span = 2 * shift + 1;
            let mut count = vec![0usize; span * span];
            let n = 2000 * span * span;
            for i in 0..n as u64 {
                let (dx, dy) = offset(7, 3, i, shift);
                let s = shift as i32;
                assert!((-s..=s).contains(&dx) && (-s..=s).contains(&dy));
                count[(dy + s) as usize * span + (dx + s) as usize] += 1;
            }
            // Roughly uniform: every cell within 15 % of its expectation.
            for (c, &k) in count.iter().enumerate() {
                assert!(
                    (1700..=2300).contains(&k),
                    "shift {shift}: cell {c} drawn {k} times of {n}"
                );
            }
        }
    }

    #[test]
    fn offsets_depend_on_seed_epoch_and_index() {
        let draws = |f: &dyn Fn(u64) -> (i32, i32)| (0..200).map(f).collect::<Vec<_>>();
        let base = draws(&|i| offset(1, 0, i, 2));
        assert_eq!(base, draws(&|i| offset(1, 0, i, 2)), "pure function");
        assert_ne!(base, draws(&|i| offset(2, 0, i, 2)), "seed");
        assert_ne!(base, draws(&|i| offset(1, 1, i, 2)), "epoch");
        assert_ne!(base, draws(&|i| offset(1, 0, i + 1, 2)), "index");
        // dx and dy are not the same draw.
        assert!(base.iter().any(|&(dx, dy)| dx != dy));
    }

    #[test]
    fn zero_shift_is_always_zero() {
        for i in 0..100 {
            assert_eq!(offset(i, i + 1, i * 3, 0), (0, 0));
        }
    }
}
