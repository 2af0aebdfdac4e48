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
