//! Deterministic synthetic metric samples for scenarios (and the judge's quality tests): the
//! same seed always gives the same values, so a simulated timeline is reproducible.

/// `count` values log-normally spread around `median` (σ = `spread` in log space), the usual
/// shape of latencies. SplitMix64 drives a Box-Muller transform.
pub fn lognormal(seed: u64, median: f64, spread: f64, count: usize) -> Vec<f64> {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // In (0, 1): never 0, so the logarithm below is finite.
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| {
            let (u1, u2) = (uniform(), uniform());
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            median * (spread * normal).exp()
        })
        .collect()
}

/// A seed from a name and a number (FNV-1a), so each metric and tick gets its own values.
pub fn seed(name: &str, n: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes().chain(n.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_values_around_the_median() {
        let a = lognormal(seed("latency", 60), 100.0, 0.1, 1000);
        assert_eq!(a, lognormal(seed("latency", 60), 100.0, 0.1, 1000));
        assert_ne!(a, lognormal(seed("latency", 120), 100.0, 0.1, 1000));
        let mut sorted = a.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[500];
        assert!((95.0..105.0).contains(&median), "{median}");
        assert!(a.iter().all(|v| v.is_finite() && *v > 0.0));
    }
}
