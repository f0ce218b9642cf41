//! apex-pareto's selection against DEAP's `selNSGA2` written out as DEAP writes it (`naive`), on populations full of
//! ties, duplicates and signed zeros: the same chosen list, fronts and crowding distances, bit for bit.

mod naive;

use apex_core::XorShift64;
use apex_pareto::{Selection, select};
use proptest::prelude::*;

fn bits(selection: &Selection) -> (Vec<usize>, Vec<usize>, Vec<u64>) {
    let crowding = selection.crowding.iter().map(|d| d.to_bits()).collect();
    (selection.chosen.clone(), selection.ranked.clone(), crowding)
}

/// Values from a few levels (so fitnesses tie and repeat), with both signed zeros, or spread widely.
fn value(levels: i32) -> impl Strategy<Value = f64> {
    prop_oneof![
        (-levels..=levels).prop_map(f64::from),
        Just(-0.0),
        -1e6f64..1e6,
        prop_oneof![Just(1e300), Just(-1e300), Just(5e-324)],
    ]
}

/// Values, object labels (some individuals listed again later, as the same object) and k.
fn population() -> impl Strategy<Value = (Vec<[f64; 2]>, Vec<usize>, usize)> {
    (1i32..6, 1usize..120).prop_flat_map(|(levels, n)| {
        let pairs = proptest::collection::vec((value(levels), value(levels)).prop_map(|(a, b)| [a, b]), n);
        (pairs, proptest::collection::vec(0..n, 0..8), 0usize..=n + 12).prop_map(|(mut values, again, k)| {
            let mut objects: Vec<usize> = (0..values.len()).collect();
            for individual in again {
                values.push(values[individual]);
                objects.push(individual);
            }
            (values, objects, k)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn selection_is_deaps((values, objects, k) in population()) {
        let fast = select(&values, &objects, k).expect("finite values");
        prop_assert_eq!(bits(&fast), bits(&naive::select(&values, &objects, k)));
    }
}

#[test]
fn large_random_population_matches() {
    // Deterministic pseudo-random values on a coarse grid: thousands of fitnesses, hundreds of fronts.
    let mut rng = XorShift64::new(0x2545_f491_4f6c_dd1d);
    let mut next = || f64::from((rng.next_u64() % 200) as u32) / 10.0 - 10.0;
    let values: Vec<[f64; 2]> = (0..3000).map(|_| [next(), next()]).collect();
    let objects: Vec<usize> = (0..values.len()).collect();
    for k in [1, 700, 1500, 2999, 3000] {
        let fast = select(&values, &objects, k).expect("finite");
        assert_eq!(bits(&fast), bits(&naive::select(&values, &objects, k)), "k = {k}");
    }
}
