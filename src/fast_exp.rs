//! `expf` for the browser's CPU engine. burn's CPU backend computes `exp` (softmax, GELU,
//! cross-entropy) one element at a time through the C symbol `expf`; on wasm32 that is
//! compiler-builtins' port of musl's, which carries double-precision arithmetic and error flags
//! and took a quarter of a `nano` training step in the page (a V8 profile of the engine). This one
//! — Cody–Waite range reduction and Cephes' degree-7 polynomial, all in f32 — is within 1 ulp
//! (tests/fast_exp.rs) and replaces the weak libm symbol in the wasm module only; native builds
//! keep the platform's.

/// e^x in f32: within 1 ulp of the exact value (tests/fast_exp.rs samples millions of inputs), subnormal results
/// included; +inf above ln(f32::MAX), 0 below ln(2^-150) (where even the smallest subnormal rounds to 0),
/// NaN for NaN.
#[inline]
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    // ln(f32::MAX) rounds to 88.72283 (whose e^x is still finite) and ln(2^-150) to -103.97208.
    if x > 88.722_83 {
        return f32::INFINITY;
    }
    if x < -103.972_08 {
        return 0.0;
    }
    // x = n·ln2 + r with |r| ≤ ln2/2; ln2 split in two so n·LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1] {
        p = p * r + c;
    }
    let e = p * r * r + r + 1.0;
    // 2^n as two factors, so results below f32's normal range come out subnormal rather than 0.
    let n = n as i32;
    let half = n / 2;
    e * pow2(half) * pow2(n - half)
}

/// 2^k for -126 ≤ k ≤ 127, built from its exponent bits.
#[inline]
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// The symbol LLVM calls for `f32::exp` on wasm32: compiler-builtins defines it weak, so this
/// definition is the one the module links.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[no_mangle]
pub extern "C" fn expf(x: f32) -> f32 {
    exp(x)
}
