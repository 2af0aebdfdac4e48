//! The rule that judges a claim from results over seeds: a difference of
//! means counts when it exceeds twice its standard error (and a search's
//! resolution, where there is one). Used by the findings page and by the
//! comparisons at one rate.

use crate::summary::Spread;

/// What the results say of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The difference counts, in the claimed direction (or, for an
    /// equality, it does not count).
    Confirmed,
    /// The difference does not count.
    WithinNoise,
    /// The difference counts against the claim.
    Contradicted,
    /// Some points confirm and some contradict.
    Mixed,
    /// Too few seeds (or no data) to judge.
    NotJudged,
}

impl Verdict {
    /// The verdict as the page prints it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::WithinNoise => "not confirmed (within noise)",
            Verdict::Contradicted => "contradicted",
            Verdict::Mixed => "mixed",
            Verdict::NotJudged => "not judged (one seed or no data)",
        }
    }
}

/// What a claim says of A against B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A is larger than B.
    Beats,
    /// A and B are about equal.
    Equals,
}

/// One comparison of A with B: the difference of means, and what it must
/// exceed to count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Mean of A minus mean of B.
    pub difference: f64,
    /// Twice the standard error of the difference.
    pub two_se: f64,
    /// The searches' resolution (0 for measured points).
    pub resolution: f64,
}

impl Comparison {
    /// A against B over `n_a` and `n_b` seeds; `None` without a mean, or
    /// with fewer than two seeds on either side.
    pub fn of(a: Spread, n_a: u64, b: Spread, n_b: u64, resolution: f64) -> Option<Self> {
        let (ma, mb) = (a.mean?, b.mean?);
        if n_a < 2 || n_b < 2 {
            return None;
        }
        let (sa, sb) = (a.std.unwrap_or(0.0), b.std.unwrap_or(0.0));
        Some(Self {
            difference: ma - mb,
            two_se: 2.0 * (sa * sa / n_a as f64 + sb * sb / n_b as f64).sqrt(),
            resolution,
        })
    }

    /// A against B paired by training seed: each of `a` and `b` holds
    /// `(seed, value)`, and the difference is the mean over the seeds both
    /// have of A's value minus B's, with the standard error of that mean.
    /// Two settings quantized from the same trained networks share each
    /// seed's training noise, which pairing cancels. `None` with fewer than
    /// two shared seeds.
    pub fn paired(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<Self> {
        let differences: Vec<f64> = a
            .iter()
            .filter_map(|(seed, va)| {
                let (_, vb) = b.iter().find(|(s, _)| s == seed)?;
                Some(va - vb)
            })
            .collect();
        let spread = Spread::of(&differences);
        Some(Self {
            difference: spread.mean?,
            two_se: 2.0 * spread.std? / (differences.len() as f64).sqrt(),
            resolution: 0.0,
        })
    }

    fn counts(&self, difference: f64) -> bool {
        difference > self.two_se.max(self.resolution)
    }

    /// The verdict of this comparison on `claim`.
    pub fn verdict(&self, claim: Claim) -> Verdict {
        let (up, down) = (self.counts(self.difference), self.counts(-self.difference));
        match claim {
            Claim::Beats if up => Verdict::Confirmed,
            Claim::Beats if down => Verdict::Contradicted,
            Claim::Beats => Verdict::WithinNoise,
            Claim::Equals if up || down => Verdict::Contradicted,
            Claim::Equals => Verdict::Confirmed,
        }
    }
}

/// The verdict of a claim tested at several points.
pub fn combine(verdicts: &[Verdict]) -> Verdict {
    let has = |v: Verdict| verdicts.contains(&v);
    match (has(Verdict::Confirmed), has(Verdict::Contradicted)) {
        _ if verdicts.is_empty() || verdicts.iter().all(|v| *v == Verdict::NotJudged) => {
            Verdict::NotJudged
        }
        (true, true) => Verdict::Mixed,
        (true, false) => Verdict::Confirmed,
        (false, true) => Verdict::Contradicted,
        (false, false) => Verdict::WithinNoise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_cancels_what_the_seeds_share() {
        // B is A minus 0.1 on every seed, while the seeds spread by 1 point
        let a = [(0, 90.0), (1, 91.0), (2, 92.0)];
        let b = [(0, 89.9), (1, 90.8), (2, 91.9)];
        let paired = Comparison::paired(&a, &b).unwrap();
        // differences 0.1, 0.2, 0.1: mean 0.4/3, sample var 1/300, 2 SE = 2 sqrt(1/900)
        assert!((paired.difference - 0.4 / 3.0).abs() < 1e-12);
        assert!((paired.two_se - 2.0 / 30.0).abs() < 1e-12);
        assert_eq!(paired.verdict(Claim::Beats), Verdict::Confirmed);
        let unpaired = Comparison::of(
            Spread::measured(91.0, 1.0),
            3,
            Spread::measured(90.0 + 0.8 / 3.0, 1.0),
            3,
            0.0,
        )
        .unwrap();
        assert_eq!(unpaired.verdict(Claim::Beats), Verdict::WithinNoise);
    }

    #[test]
    fn pairs_only_the_seeds_both_have() {
        let a = [(0, 1.0), (1, 2.0), (5, 100.0)];
        let b = [(1, 1.0), (0, 0.0), (7, -100.0)];
        let c = Comparison::paired(&a, &b).unwrap();
        assert_eq!((c.difference, c.two_se), (1.0, 0.0));
        assert!(Comparison::paired(&a[..1], &b).is_none(), "one shared seed");
    }
}
