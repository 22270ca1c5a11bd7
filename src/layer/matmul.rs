//! Single-threaded f32 GEMM on row-major slices, through the `gemm` crate
//! (its kernels are picked at run time for the CPU: AVX2/FMA, AVX-512).
//!
//! Transposes are free: they only change the strides handed to the kernel.

/// `C[m×n] (+)= A·B` on row-major data.
///
/// `a` holds `A` as `[m×k]`, or as `[k×m]` when `ta` (then `A = aᵀ`);
/// `b` holds `B` as `[k×n]`, or as `[n×k]` when `tb`. With `accumulate`
/// the product is added to `c`, else it overwrites it. The result is
/// deterministic for given shapes (no threads).
///
/// Panics if a slice is shorter than its shape: that is a bug in the
/// caller, never a user error.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    accumulate: bool,
) {
    assert!(c.len() >= m * n, "matmul: C too small");
    assert!(a.len() >= m * k, "matmul: A too small");
    assert!(b.len() >= k * n, "matmul: B too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    let (a_rs, a_cs) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the asserts above guarantee that every index the kernel
    // forms from these shapes and strides lies inside the slices; `c` is
    // borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 17 % 13) as f32 - 6.0) * 0.1)
            .collect();
        for ta in [false, true] {
            for tb in [false, true] {
                let want = naive(&a, &b, m, n, k, ta, tb);
                let mut c = vec![1.0f32; m * n];
                matmul(&mut c, &a, &b, m, n, k, ta, tb, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-5, "ta={ta} tb={tb}");
                }
                let mut c2 = vec![1.0f32; m * n];
                matmul(&mut c2, &a, &b, m, n, k, ta, tb, true);
                for (x, y) in c2.iter().zip(&want) {
                    assert!((x - (y + 1.0)).abs() < 1e-5, "accumulate ta={ta} tb={tb}");
                }
            }
        }
    }
}
