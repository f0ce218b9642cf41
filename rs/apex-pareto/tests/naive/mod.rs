//! DEAP 1.4's `selNSGA2` (standard sort) written out in Rust as DEAP writes it: every pair of distinct fitnesses
//! compared, fronts freed by counting dominators. The reference apex-pareto is checked against, and its benchmark's
//! baseline.

use apex_pareto::Selection;

fn dominates(a: [f64; 2], b: [f64; 2]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(&b) {
        if x > y {
            better = true;
        } else if x < y {
            return false;
        }
    }
    better
}

/// DEAP 1.4's `sortNondominated`, line for line (fitnesses grouped by Python tuple equality).
fn sort_nondominated(values: &[[f64; 2]], k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return Vec::new();
    }
    let mut fits: Vec<[f64; 2]> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match fits.iter().position(|f| f[0] == v[0] && f[1] == v[1]) {
            Some(f) => members[f].push(i),
            None => {
                fits.push(*v);
                members.push(vec![i]);
            }
        }
    }
    let n = fits.len();
    let mut dominating = vec![0usize; n];
    let mut dominated: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut current = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if dominates(fits[i], fits[j]) {
                dominating[j] += 1;
                dominated[i].push(j);
            } else if dominates(fits[j], fits[i]) {
                dominating[i] += 1;
                dominated[j].push(i);
            }
        }
        if dominating[i] == 0 {
            current.push(i);
        }
    }
    let mut fronts = vec![current.iter().flat_map(|&f| members[f].clone()).collect::<Vec<_>>()];
    let mut sorted = fronts[0].len();
    let wanted = values.len().min(k);
    while sorted < wanted {
        let mut front = Vec::new();
        let mut next = Vec::new();
        for &p in &current {
            for &d in &dominated[p] {
                dominating[d] -= 1;
                if dominating[d] == 0 {
                    next.push(d);
                    sorted += members[d].len();
                    front.extend_from_slice(&members[d]);
                }
            }
        }
        fronts.push(front);
        current = next;
    }
    fronts
}

/// DEAP's `assignCrowdingDist`.
fn crowding(values: &[[f64; 2]], front: &[usize]) -> Vec<f64> {
    let mut distances = vec![0.0; front.len()];
    let mut crowd: Vec<([f64; 2], usize)> = front.iter().enumerate().map(|(i, &ind)| (values[ind], i)).collect();
    for obj in 0..2 {
        crowd.sort_by(|a, b| a.0[obj].partial_cmp(&b.0[obj]).expect("finite"));
        if crowd.is_empty() {
            return distances;
        }
        distances[crowd[0].1] = f64::INFINITY;
        distances[crowd[crowd.len() - 1].1] = f64::INFINITY;
        if crowd[crowd.len() - 1].0[obj] == crowd[0].0[obj] {
            continue;
        }
        let norm = 2.0 * (crowd[crowd.len() - 1].0[obj] - crowd[0].0[obj]);
        for w in 0..crowd.len().saturating_sub(2) {
            distances[crowd[w + 1].1] += (crowd[w + 2].0[obj] - crowd[w].0[obj]) / norm;
        }
    }
    distances
}

/// DEAP's `selNSGA2` with `nd='standard'`.
pub fn select(values: &[[f64; 2]], objects: &[usize], k: usize) -> Selection {
    let fronts = sort_nondominated(values, k);
    let mut selection = Selection::default();
    for front in &fronts {
        selection.ranked.extend_from_slice(front);
        selection.crowding.extend(crowding(values, front));
    }
    let Some((last, full)) = fronts.split_last() else { return selection };
    selection.chosen = full.concat();
    // `assignCrowdingDist` sets the attribute entry by entry, so an individual listed twice keeps its last value,
    // which the sort then reads for each of its entries.
    let distances = crowding(values, last);
    let attribute = |individual: usize| {
        let position = last.iter().rposition(|&other| objects[other] == objects[individual]).expect("listed");
        distances[position]
    };
    let mut sorted: Vec<(f64, usize)> = last.iter().map(|&individual| (attribute(individual), individual)).collect();
    sorted.sort_by(|a, b| b.0.partial_cmp(&a.0).expect("not NaN"));
    let room = k - selection.chosen.len();
    selection.chosen.extend(sorted.iter().take(room).map(|&(_, ind)| ind));
    selection
}
