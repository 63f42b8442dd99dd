//! The wasm engine's `expf` (src/fast_exp.rs) against f64's exp, over every range a training step
//! meets: normal and subnormal results, overflow, underflow, NaN.

use llmplay::fast_exp::exp;

/// Distance in units in the last place between two f32s, through an order-preserving key
/// (negative values below positive ones, -0 = +0); a NaN or an infinity against anything else is
/// as far as it gets.
fn ulps(a: f32, b: f32) -> u32 {
    if a == b {
        return 0;
    }
    if !a.is_finite() || !b.is_finite() {
        return u32::MAX;
    }
    let key = |x: f32| if x < 0.0 { -((x.to_bits() & 0x7fff_ffff) as i64) } else { x.to_bits() as i64 };
    (key(a) - key(b)).unsigned_abs().min(u32::MAX as u64) as u32
}

#[test]
fn within_one_ulp_of_the_exact_exp_everywhere_it_is_finite() {
    // The whole range with a finite, non-zero result, both ends included.
    let (lo, hi) = (-103.972_08_f32, 88.722_83_f32);
    let n = 4_000_000;
    let mut worst = (0, 0.0_f32);
    for i in 0..=n {
        let x = if i == n { hi } else { lo + (hi - lo) * (i as f32 / n as f32) };
        let exact = (x as f64).exp() as f32;
        let d = ulps(exp(x), exact);
        if d > worst.0 {
            worst = (d, x);
        }
    }
    // Every 97th f32 in (-1, 1), where softmax and GELU spend most of their calls.
    for bits in (0u32..0x3f80_0000).step_by(97) {
        for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
            let d = ulps(exp(x), (x as f64).exp() as f32);
            if d > worst.0 {
                worst = (d, x);
            }
        }
    }
    assert!(worst.0 <= 1, "{} ulp off at x = {}", worst.0, worst.1);
}

#[test]
fn overflow_underflow_and_nan_as_ieee_exp() {
    assert_eq!(exp(0.0), 1.0);
    assert_eq!(exp(-0.0), 1.0);
    assert_eq!(exp(89.0), f32::INFINITY);
    assert_eq!(exp(f32::INFINITY), f32::INFINITY);
    assert_eq!(exp(f32::MAX), f32::INFINITY);
    assert_eq!(exp(-104.0), 0.0);
    assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    assert!(exp(f32::NAN).is_nan());
    // The largest input with a finite result, the first above it, and a subnormal result.
    assert_eq!(exp(88.722_83), (88.722_83_f32 as f64).exp() as f32);
    assert!(exp(88.722_83).is_finite());
    assert_eq!(exp(f32::from_bits(88.722_83_f32.to_bits() + 1)), f32::INFINITY);
    assert!(exp(-103.972_08) > 0.0);
    let tiny = exp(-100.0);
    assert!(tiny > 0.0 && !tiny.is_normal() && ulps(tiny, (-100.0_f64).exp() as f32) <= 1);
}
