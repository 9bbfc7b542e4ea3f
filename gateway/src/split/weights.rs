//! The arithmetic of a split: smooth weighted round robin for calls without a sticky key, and
//! weighted rendezvous hashing for calls with one. Pure: no I/O, no clock, no randomness.
//!
//! Smooth weighted round robin (nginx's): every pick adds each weight to its variant's
//! running score, takes the highest score and subtracts the total from it. Any `total`
//! consecutive picks give each variant exactly its weight, spread out (95/5 gives one `canary`
//! per twenty calls, not five in a row), so 1,000 calls at 95/5 are exactly 950/50.
//!
//! Weighted rendezvous hashing: each variant scores `-ln(u) / weight`, with `u` in (0, 1)
//! from a hash of (salt, variant name, key); the lowest score wins. A key lands on a variant
//! with probability weight / total; the hash is the same in every replica, restart and
//! release; and a weight change moves only the keys it must: raising one variant's weight
//! moves keys to it and nowhere else, lowering it moves only its own keys away, and a variant
//! added or removed takes or gives back only its own keys.

/// Smooth weighted round robin over fixed weights.
#[derive(Debug, Clone)]
pub struct Rotation {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl Rotation {
    /// A rotation over `weights` (at least one above 0, or every pick is the first).
    pub fn new(weights: &[u32]) -> Self {
        let weights: Vec<i64> = weights.iter().map(|w| i64::from(*w)).collect();
        Self {
            current: vec![0; weights.len()],
            total: weights.iter().sum(),
            weights,
        }
    }

    /// The index of the next pick.
    pub fn pick(&mut self) -> usize {
        let mut best: Option<usize> = None;
        for i in 0..self.weights.len() {
            if self.weights[i] == 0 {
                continue;
            }
            self.current[i] += self.weights[i];
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let Some(b) = best else { return 0 };
        self.current[b] -= self.total;
        b
    }
}

/// FNV-1a over the parts, each prefixed by its length, then murmur3's 64-bit finaliser: a
/// hash fixed by this code alone (unlike `std`'s hashers), so every gateway agrees.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        let len = (part.len() as u64).to_le_bytes();
        for b in len.iter().chain(part.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The variant of `names` (with `weights`) that `key` sticks to, salted with `salt` (the
/// backend's name, so a caller's variants of two backends are independent).
pub fn rendezvous(names: &[&str], weights: &[u32], salt: &str, key: &[u8]) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, (name, w)) in names.iter().zip(weights).enumerate() {
        if *w == 0 {
            continue;
        }
        let h = stable_hash(&[salt.as_bytes(), name.as_bytes(), key]);
        // 53 random bits, shifted off zero: u in (0, 1).
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = -u.ln() / f64::from(*w);
        if score < best.1 {
            best = (i, score);
        }
    }
    best.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn counts(weights: &[u32], n: usize) -> Vec<usize> {
        let mut r = Rotation::new(weights);
        let mut c = vec![0; weights.len()];
        for _ in 0..n {
            c[r.pick()] += 1;
        }
        c
    }

    #[test]
    fn round_robin_gives_each_variant_exactly_its_weight() {
        assert_eq!(counts(&[95, 5], 1000), [950, 50]);
        assert_eq!(counts(&[1, 1], 10), [5, 5]);
        assert_eq!(counts(&[5, 3, 2], 100), [50, 30, 20]);
        // any window of `total` picks is exact, not only from the start
        let mut r = Rotation::new(&[95, 5]);
        let picks: Vec<usize> = (0..1000).map(|_| r.pick()).collect();
        for w in picks.windows(100) {
            assert_eq!(w.iter().filter(|p| **p == 1).count(), 5);
        }
        // and smooth: the canary's picks are spread out, twenty apart
        let canary: Vec<usize> = (0..100).filter(|i| picks[*i] == 1).collect();
        assert!(canary.windows(2).all(|w| w[1] - w[0] == 20), "{canary:?}");
    }

    #[test]
    fn zero_weights_are_never_picked() {
        assert_eq!(counts(&[0, 7], 50), [0, 50]);
        assert_eq!(counts(&[3, 0, 1], 40), [30, 0, 10]);
        assert_eq!(counts(&[0, 0, 2], 5), [0, 0, 5]);
    }

    #[test]
    fn the_hash_is_pinned() {
        // A change here moves every sticky caller: it must be deliberate.
        // (values checked against an independent implementation of FNV-1a + fmix64)
        assert_eq!(
            stable_hash(&[b"users", b"canary", b"ada"]),
            0x62da_5818_3cc4_6fe2
        );
        assert_eq!(stable_hash(&[]), 0xefd0_1f60_ba99_2926);
        assert_ne!(
            stable_hash(&[b"ab", b"c"]),
            stable_hash(&[b"a", b"bc"]),
            "parts are delimited"
        );
    }

    fn assign(names: &[&str], weights: &[u32], n: usize) -> Vec<usize> {
        (0..n)
            .map(|k| rendezvous(names, weights, "users", format!("user-{k}").as_bytes()))
            .collect()
    }

    #[test]
    fn sticky_keys_follow_the_weights_and_stay_put() {
        let names = ["stable", "canary"];
        let a = assign(&names, &[95, 5], 20_000);
        let canary = a.iter().filter(|v| **v == 1).count();
        // 5% of 20,000 is 1,000; the standard deviation is about 31
        assert!((880..=1120).contains(&canary), "{canary}");
        assert_eq!(
            a,
            assign(&names, &[95, 5], 20_000),
            "the same key, the same variant"
        );
        // the salt separates backends
        let other: Vec<usize> = (0..20_000)
            .map(|k| rendezvous(&names, &[95, 5], "orders", format!("user-{k}").as_bytes()))
            .collect();
        assert_ne!(a, other);
    }

    #[test]
    fn a_weight_change_moves_only_the_keys_it_must() {
        let names = ["stable", "canary"];
        let before = assign(&names, &[95, 5], 20_000);
        let after = assign(&names, &[50, 50], 20_000);
        // ramping the canary up moves keys to it and never away from it
        assert!(
            before
                .iter()
                .zip(&after)
                .all(|(b, a)| *b == *a || (*b == 0 && *a == 1))
        );
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        // 45% of the keys must move; about that many do
        assert!((8_500..=9_500).contains(&moved), "{moved}");

        // three variants: changing one weight moves keys only to or from that one
        let names = ["a", "b", "c"];
        let before = assign(&names, &[1, 1, 1], 20_000);
        let after = assign(&names, &[1, 1, 3], 20_000);
        assert!(before.iter().zip(&after).all(|(b, a)| b == a || *a == 2));
        let down = assign(&names, &[1, 0, 1], 20_000);
        assert!(before.iter().zip(&down).all(|(b, d)| b == d || *b == 1));
        assert!(!down.contains(&1), "a zero weight takes no sticky key");
    }
}
