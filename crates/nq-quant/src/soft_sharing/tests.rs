use proptest::prelude::*;

use super::*;
use crate::QuantError;

fn component(mean: f64, variance: f64, mixing: f64) -> Component {
    Component {
        mean,
        variance,
        mixing,
    }
}

fn two() -> Mixture {
    Mixture {
        components: vec![component(0.0, 0.01, 0.9), component(1.0, 0.01, 0.1)],
    }
}

#[test]
fn responsibility_boundary_by_hand() {
    // equal variances: pi_0 N(w; 0) = pi_1 N(w; 1) where
    // ln(0.9 / 0.1) = (2w - 1) / (2 * 0.01), so w* = 0.5 + 0.01 ln 9
    let boundary = 0.5 + 0.01 * 9f64.ln();
    let m = two();
    assert_eq!(m.component_of(boundary - 1e-9), 0);
    assert_eq!(m.component_of(boundary + 1e-9), 1);
    assert_eq!(m.component_of(-3.0), 0);
    assert_eq!(m.component_of(3.0), 1);
}

#[test]
fn log_density_by_hand() {
    let single = Mixture {
        components: vec![component(0.5, 0.25, 3.0)],
    };
    // N(1; 0.5, 0.25) = exp(-0.5) / sqrt(2 pi 0.25)
    let expected = -0.5 - 0.5 * (2.0 * std::f64::consts::PI * 0.25).ln();
    assert!((single.log_density(1.0) - expected).abs() < 1e-12);
    // two equal halves are the same density
    let halves = Mixture {
        components: vec![component(0.5, 0.25, 1.0), component(0.5, 0.25, 1.0)],
    };
    assert!((halves.log_density(1.0) - expected).abs() < 1e-12);
    // far in a tail the log-sum-exp stays finite
    assert!(two().log_density(1e3).is_finite());
}

#[test]
fn weights_take_their_components_mean_in_mean_order() {
    let m = Mixture {
        components: vec![
            component(0.0, 0.01, 0.8),
            component(1.0, 0.01, 0.1),
            component(-1.0, 0.01, 0.1),
            // no weight near it: dropped
            component(5.0, 0.01, 0.1),
        ],
    };
    let w = [0.0f32, 0.05, 0.9, 1.1, -1.0];
    let q = soft_sharing(&w, &[1.0; 5], &SoftSharingParams { mixture: m }).unwrap();
    assert_eq!(q.centres, vec![-1.0, 0.0, 1.0]);
    assert_eq!(q.assignment, vec![1, 1, 2, 2, 0]);
    assert_eq!(q.quantized(), vec![0.0, 0.0, 1.0, 1.0, -1.0]);
    assert_eq!(q.dither, None);
}

#[test]
fn components_with_one_float32_mean_share_a_cluster() {
    let m = Mixture {
        components: vec![component(1.0, 0.01, 0.5), component(1.0 + 1e-12, 1.0, 0.5)],
    };
    let q = soft_sharing(&[1.0, 3.0], &[1.0; 2], &SoftSharingParams { mixture: m }).unwrap();
    assert_eq!(q.centres, vec![1.0]);
    assert_eq!(q.assignment, vec![0, 0]);
}

#[test]
fn initial_mixture_spreads_the_means_over_the_range() {
    let m = Mixture::initial(&[-0.3, 0.1, 0.6], 4, 0.99, 0.25).unwrap();
    let means: Vec<f64> = m.components.iter().map(|c| c.mean).collect();
    assert_eq!(means.len(), 4);
    assert_eq!(means[0], 0.0);
    for (got, want) in means[1..].iter().zip([-0.3, 0.15, 0.6]) {
        assert!((got - want).abs() < 1e-7, "{means:?}");
    }
    let total: f64 = m.components.iter().map(|c| c.mixing).sum();
    assert!((total - 1.0).abs() < 1e-12);
    assert_eq!(m.components[0].mixing, 0.99);
    assert!(m.components.iter().all(|c| c.variance == 0.0625));
}

#[test]
fn bad_settings_are_named() {
    let name = |e: QuantError| match e {
        QuantError::InvalidParam { name, .. } => name,
        other => panic!("{other}"),
    };
    assert_eq!(
        name(Mixture::initial(&[1.0], 1, 0.9, 0.1).unwrap_err()),
        "components"
    );
    assert_eq!(
        name(Mixture::initial(&[1.0], 3, 1.0, 0.1).unwrap_err()),
        "pi_zero"
    );
    assert_eq!(
        name(Mixture::initial(&[1.0], 3, 0.9, 0.0).unwrap_err()),
        "init_sigma"
    );
    let mut m = two();
    m.components[1].variance = f64::NAN;
    let err = soft_sharing(&[1.0], &[1.0], &SoftSharingParams { mixture: m.clone() }).unwrap_err();
    assert!(
        err.to_string().contains("component 1 has variance NaN"),
        "{err}"
    );
    assert_eq!(name(two().merged(-1.0).unwrap_err()), "merge_kl");
    assert!(matches!(
        soft_sharing(&[f32::NAN], &[1.0], &SoftSharingParams { mixture: two() }),
        Err(QuantError::NonFiniteWeight { index: 0, .. })
    ));
}

#[test]
fn merging_by_hand() {
    let m = Mixture {
        components: vec![
            component(0.0, 0.01, 0.9),
            component(1.0, 0.01, 0.06),
            component(1.002, 0.01, 0.02),
            component(-1.0, 0.01, 0.02),
        ],
    };
    // the pair at 1 and 1.002: symmetric KL = 0.002^2 / (2 * 0.01) = 2e-4
    assert_eq!(m.merged(1e-4).unwrap(), m);
    let merged = m.merged(1e-3).unwrap();
    assert_eq!(merged.components.len(), 3);
    let c = merged.components[1];
    assert!((c.mixing - 0.08).abs() < 1e-15);
    assert!((c.mean - 1.0005).abs() < 1e-12, "{c:?}");
    // matched second moment: 0.75 (0.01 + 1) + 0.25 (0.01 + 1.002^2) - mean^2
    let second = 0.75 * 1.01 + 0.25 * (0.01 + 1.002f64.powi(2));
    assert!((c.variance - (second - 1.0005f64.powi(2))).abs() < 1e-12);
    assert_eq!(merged.components[2], m.components[3]);
}

#[test]
fn merging_into_the_zero_component_keeps_it_at_zero() {
    let m = Mixture {
        components: vec![component(0.0, 0.01, 0.9), component(0.001, 0.01, 0.1)],
    };
    let merged = m.merged(0.1).unwrap();
    assert_eq!(merged.components.len(), 1);
    assert_eq!(merged.components[0].mean, 0.0);
    assert!((merged.components[0].mixing - 1.0).abs() < 1e-15);
}

fn mixture_strategy() -> impl Strategy<Value = Mixture> {
    prop::collection::vec((-2.0f64..2.0, 1e-4f64..1.0, 1e-3f64..1.0), 1..8).prop_map(|cs| {
        let mut components = vec![component(0.0, 0.01, 0.5)];
        components.extend(cs.into_iter().map(|(m, v, p)| component(m, v, p)));
        Mixture { components }
    })
}

proptest! {
    #[test]
    fn every_weight_goes_to_a_most_responsible_component(
        mixture in mixture_strategy(),
        w in prop::collection::vec(-3.0f32..3.0, 1..200),
    ) {
        let q = soft_sharing(&w, &vec![1.0; w.len()], &SoftSharingParams { mixture: mixture.clone() })
            .unwrap();
        let total: f64 = mixture.components.iter().map(|c| c.mixing).sum();
        for (i, &x) in w.iter().enumerate() {
            let x = f64::from(x);
            let chosen = q.centres[q.assignment[i] as usize];
            let best = mixture.components.iter().map(|c| c.log_joint(x, total)).fold(f64::NEG_INFINITY, f64::max);
            // some component with this mean attains the maximum
            prop_assert!(mixture.components.iter().any(|c| c.mean as f32 == chosen && c.log_joint(x, total) == best));
            if mixture.component_of(x) == 0 {
                prop_assert_eq!(chosen.to_bits(), 0f32.to_bits());
            }
        }
        // centres increase and every cluster has members
        prop_assert!(q.centres.windows(2).all(|p| p[0] < p[1]));
        prop_assert!(q.counts().iter().all(|&c| c > 0));
    }

    #[test]
    fn merging_keeps_the_mixtures_first_two_moments(mixture in mixture_strategy(), threshold in 0.0f64..5.0) {
        // the zero component's merges move its mean back to 0, so leave it out
        let rest = Mixture { components: mixture.components[1..].to_vec() };
        prop_assume!(!rest.components.is_empty());
        let moments = |m: &Mixture| {
            let total: f64 = m.components.iter().map(|c| c.mixing).sum();
            m.components.iter().fold((0.0, 0.0), |(m1, m2), c| {
                let p = c.mixing / total;
                (m1 + p * c.mean, m2 + p * (c.variance + c.mean * c.mean))
            })
        };
        // a component at 0 would count as the zero component: shift them all
        let shifted = Mixture { components: rest.components.iter().map(|c| component(c.mean + 10.0, c.variance, c.mixing)).collect() };
        let merged = shifted.merged(threshold).unwrap();
        prop_assert!(merged.components.len() <= shifted.components.len());
        let (a, b) = (moments(&shifted), moments(&merged));
        prop_assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-7, "{:?} {:?}", a, b);
    }
}
