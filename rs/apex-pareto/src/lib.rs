//! NSGA-II selection of a population with two maximised objectives, returning exactly what DEAP's `selNSGA2`
//! (standard sort) returns, in O(n log n) where DEAP compares every pair of distinct fitnesses.
//!
//! DEAP's result depends on more than the fronts: individuals with equal fitness travel together in the order they
//! first appear, a front lists its fitnesses in the order the pairwise sort happens to free them, and the last front
//! is ranked by crowding distances whose ties keep that order. `evolve --dsg` breeds from the selected list in order,
//! so a selection that got only the sets right would change every run after its first generation. Each of those
//! orders has a closed form in two dimensions, which is what this crate computes:
//! - ranks: fitnesses swept by the first objective descending; a front's best second objective only falls with the
//!   rank, so a fitness's rank is a binary search over the fronts' latest entries;
//! - front 0 in first-appearance order; a later front in the order of (the position, in the front before, of the
//!   last of its dominators there, first appearance): DEAP frees a fitness when its last dominator is visited, and
//!   in two dimensions a fitness's dominators in the front before form one contiguous run of that front sorted by
//!   its first objective, so the last of them is a range-maximum query;
//! - crowding distances with DEAP's stable sorts and the same floating-point operations in the same order.

use std::cmp::Ordering;

use thiserror::Error;

/// Largest magnitude of a fitness value taken: every difference and the crowding norm stay finite below it.
pub const MAX_ABS_VALUE: f64 = 1e300;

#[derive(Debug, Error, PartialEq)]
pub enum ParetoError {
    #[error("fitness {objective} of individual {index} is {value}: only finite values of magnitude up to 1e300 rank")]
    OutOfRange { index: usize, objective: usize, value: f64 },
    #[error("{labels} object labels for {entries} individuals: one label below {entries} per individual")]
    Objects { entries: usize, labels: usize },
}

/// What `selNSGA2` leaves behind: the chosen individuals and the crowding distance it assigns to every individual of
/// the fronts it sorted (DEAP sets `fitness.crowding_dist` on each; an individual listed twice gets the later value).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Selection {
    /// Indices into the population of the chosen individuals, in DEAP's order.
    pub chosen: Vec<usize>,
    /// Indices of every individual of the sorted fronts, front after front in DEAP's order.
    pub ranked: Vec<usize>,
    /// The crowding distance of each entry of `ranked`.
    pub crowding: Vec<f64>,
}

/// NSGA-II selection of `k` individuals from `values` (each individual's two objectives, both maximised).
///
/// `objects` says which entries are one individual listed more than once (equal labels, each below `values.len()`,
/// e.g. the index of its first entry): DEAP ranks the last front by the crowding distance it assigned each
/// individual last, not by the distance of each entry.
///
/// # Errors
/// [`ParetoError::OutOfRange`] for a NaN, infinite or larger than [`MAX_ABS_VALUE`] value (DEAP's own result would
/// depend on its sort's treatment of NaN there); [`ParetoError::Objects`] for labels that do not fit.
pub fn select(values: &[[f64; 2]], objects: &[usize], k: usize) -> Result<Selection, ParetoError> {
    if objects.len() != values.len() || objects.iter().any(|&label| label >= values.len()) {
        return Err(ParetoError::Objects { entries: values.len(), labels: objects.len() });
    }
    for (index, pair) in values.iter().enumerate() {
        for (objective, &value) in pair.iter().enumerate() {
            if !value.is_finite() || value.abs() > MAX_ABS_VALUE {
                return Err(ParetoError::OutOfRange { index, objective, value });
            }
        }
    }
    if k == 0 {
        return Ok(Selection::default());
    }
    let fronts = sort_nondominated(values, k);
    let mut selection = Selection::default();
    for front in &fronts {
        selection.ranked.extend_from_slice(front);
        selection.crowding.extend(crowding_distances(values, front));
    }
    let Some((last, full)) = fronts.split_last() else { return Ok(selection) };
    selection.chosen = full.concat();
    let room = k.saturating_sub(selection.chosen.len());
    if room > 0 {
        // Each entry ranks by its individual's distance as DEAP leaves it: the one assigned at its last entry.
        let mut assigned = vec![0.0; values.len()];
        let distances = &selection.crowding[selection.crowding.len() - last.len()..];
        for (&individual, &distance) in last.iter().zip(distances) {
            assigned[objects[individual]] = distance;
        }
        let key: Vec<f64> = last.iter().map(|&individual| assigned[objects[individual]]).collect();
        let mut order: Vec<usize> = (0..last.len()).collect();
        // Stable, largest first: ties keep the front's order, as Python's `sorted(..., reverse=True)` does.
        order.sort_by(|&x, &y| key[y].partial_cmp(&key[x]).unwrap_or(Ordering::Equal));
        selection.chosen.extend(order.iter().take(room).map(|&position| last[position]));
    }
    Ok(selection)
}

/// The distinct fitnesses in order of first appearance, with the individuals holding each (in order).
struct Fitnesses {
    values: Vec<[f64; 2]>,
    members: Vec<Vec<usize>>,
}

impl Fitnesses {
    fn group(values: &[[f64; 2]]) -> Fitnesses {
        // Python's tuple equality: -0.0 equals 0.0 (NaN is refused before this).
        let key = |v: f64| if v == 0.0 { 0u64 } else { v.to_bits() };
        let mut index = std::collections::HashMap::with_capacity(values.len());
        let mut fitnesses = Fitnesses { values: Vec::new(), members: Vec::new() };
        for (individual, pair) in values.iter().enumerate() {
            let next = fitnesses.values.len();
            let fit = *index.entry((key(pair[0]), key(pair[1]))).or_insert(next);
            if fit == next {
                fitnesses.values.push(*pair);
                fitnesses.members.push(Vec::new());
            }
            fitnesses.members[fit].push(individual);
        }
        fitnesses
    }

    /// Each rank's fitnesses sorted by the first objective descending (so the second ascends strictly).
    fn ranks(&self) -> Vec<Vec<usize>> {
        let v = &self.values;
        let mut sweep: Vec<usize> = (0..v.len()).collect();
        // IEEE order (-0.0 equals 0.0, as in DEAP's comparisons); the values are finite.
        let descending = |x: f64, y: f64| y.partial_cmp(&x).unwrap_or(Ordering::Equal);
        sweep.sort_by(|&x, &y| descending(v[x][0], v[y][0]).then(descending(v[x][1], v[y][1])));
        // The second objective of each front's latest entry: its best so far, and never higher at a later rank.
        let mut latest: Vec<f64> = Vec::new();
        let mut ranks: Vec<Vec<usize>> = Vec::new();
        for fit in sweep {
            let second = v[fit][1];
            let rank = latest.partition_point(|&best| best >= second);
            if rank == latest.len() {
                latest.push(second);
                ranks.push(Vec::new());
            } else {
                latest[rank] = second;
            }
            ranks[rank].push(fit);
        }
        ranks
    }
}

/// DEAP's `sortNondominated(individuals, k)`: the fronts (as individual indices, in DEAP's order) until at least
/// `min(n, k)` individuals are sorted.
fn sort_nondominated(values: &[[f64; 2]], k: usize) -> Vec<Vec<usize>> {
    let fitnesses = Fitnesses::group(values);
    let ranks = fitnesses.ranks();
    let v = &fitnesses.values;
    let wanted = values.len().min(k);
    let mut position = vec![0usize; v.len()];
    let mut fronts: Vec<Vec<usize>> = Vec::new();
    let mut sorted = 0;
    let mut previous: Option<&Vec<usize>> = None;
    for rank in &ranks {
        if previous.is_some() && sorted >= wanted {
            break;
        }
        let mut keyed: Vec<(usize, usize)> = match previous {
            None => rank.iter().map(|&fit| (0, fit)).collect(),
            Some(before) => {
                let table = RangeMax::new(before.iter().map(|&fit| position[fit]).collect());
                rank.iter()
                    .map(|&fit| {
                        let [first, second] = v[fit];
                        let end = before.partition_point(|&q| v[q][0] >= first);
                        let start = before.partition_point(|&q| v[q][1] < second);
                        debug_assert!(start < end, "a fitness of rank r > 0 has a dominator at rank r - 1");
                        (table.max(start, end), fit)
                    })
                    .collect()
            }
        };
        keyed.sort_unstable();
        let mut front = Vec::new();
        for (at, &(_, fit)) in keyed.iter().enumerate() {
            position[fit] = at;
            front.extend_from_slice(&fitnesses.members[fit]);
        }
        sorted += front.len();
        fronts.push(front);
        previous = Some(rank);
    }
    if fronts.is_empty() {
        fronts.push(Vec::new()); // DEAP's empty population sorts into one empty front
    }
    fronts
}

/// Range maxima over a fixed list (sparse table): O(n log n) to build, O(1) a query.
struct RangeMax {
    levels: Vec<Vec<usize>>,
}

impl RangeMax {
    fn new(base: Vec<usize>) -> RangeMax {
        let n = base.len();
        let mut levels = vec![base];
        let mut width = 1;
        // Level j holds the maxima of the windows of 2^j entries starting at each index.
        while 2 * width <= n {
            let below = levels.last().expect("level 0 exists");
            let next = (0..=n - 2 * width).map(|i| below[i].max(below[i + width])).collect();
            levels.push(next);
            width *= 2;
        }
        RangeMax { levels }
    }

    /// Maximum of `start..end` (not empty).
    fn max(&self, start: usize, end: usize) -> usize {
        let level = (usize::BITS - 1 - (end - start).leading_zeros()) as usize;
        self.levels[level][start].max(self.levels[level][end - (1 << level)])
    }
}

/// DEAP's `assignCrowdingDist` over one front (individual indices): per objective a stable sort of the front (each
/// starting from the order the last one left), infinite distance at both ends, and each inner member's neighbour
/// gap over twice the objective's range added to its distance.
fn crowding_distances(values: &[[f64; 2]], front: &[usize]) -> Vec<f64> {
    let mut distances = vec![0.0; front.len()];
    let mut crowd: Vec<usize> = (0..front.len()).collect();
    for objective in [0, 1] {
        let of = |position: usize| values[front[position]][objective];
        crowd.sort_by(|&x, &y| of(x).partial_cmp(&of(y)).unwrap_or(Ordering::Equal));
        let (Some(&first), Some(&last)) = (crowd.first(), crowd.last()) else { break };
        distances[first] = f64::INFINITY;
        distances[last] = f64::INFINITY;
        if of(last) == of(first) {
            continue;
        }
        let norm = 2.0 * (of(last) - of(first));
        for window in crowd.windows(3) {
            distances[window[1]] += (of(window[2]) - of(window[0])) / norm;
        }
    }
    distances
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fronts_and_order_of_a_small_population() {
        // (1,3) and (3,1) are not dominated; (1,1), held twice, is the next front and fills the last place.
        let values = [[1.0, 1.0], [1.0, 3.0], [3.0, 1.0], [1.0, 1.0], [0.5, 0.5]];
        let selection = select(&values, &[0, 1, 2, 3, 4], 3).expect("finite");
        assert_eq!(selection.ranked, vec![1, 2, 0, 3]);
        assert_eq!(selection.chosen, vec![1, 2, 0]);
        assert!(selection.crowding.iter().all(|d| d.is_infinite()));
    }

    #[test]
    fn nothing_to_choose() {
        assert_eq!(select(&[[1.0, 2.0]], &[0], 0), Ok(Selection::default()));
        let empty = select(&[], &[], 4).expect("empty");
        assert!(empty.chosen.is_empty() && empty.ranked.is_empty());
    }

    #[test]
    fn refuses_values_whose_order_deap_leaves_to_chance() {
        for value in [f64::NAN, f64::INFINITY, -f64::INFINITY, 2e300] {
            let error = select(&[[0.0, 1.0], [1.0, value]], &[0, 1], 1).expect_err("refused");
            assert!(error.to_string().contains("individual 1"), "{error}");
        }
    }

    #[test]
    fn refuses_labels_that_do_not_fit() {
        assert!(matches!(select(&[[0.0, 1.0]], &[], 1), Err(ParetoError::Objects { entries: 1, labels: 0 })));
        assert!(matches!(select(&[[0.0, 1.0]], &[1], 1), Err(ParetoError::Objects { .. })));
    }

    #[test]
    fn an_individual_listed_twice_ranks_by_its_last_distance() {
        // One fitness, entries 0, 2 and 3 one individual: distances inf, 0, 0, inf by entry; the individual keeps
        // inf (its last entry's), so all three of its entries rank before entry 1.
        let values = [[-2.0, -2.0]; 4];
        let selection = select(&values, &[0, 1, 0, 0], 3).expect("finite");
        assert_eq!(selection.chosen, vec![0, 2, 3]);
    }

    #[test]
    fn range_maxima() {
        let table = RangeMax::new(vec![3, 1, 4, 1, 5, 9, 2, 6]);
        for start in 0..8 {
            for end in start + 1..=8 {
                let naive = [3, 1, 4, 1, 5, 9, 2, 6][start..end].iter().copied().max().expect("not empty");
                assert_eq!(table.max(start, end), naive, "{start}..{end}");
            }
        }
    }
}
