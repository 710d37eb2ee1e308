//! `start` cycles between journeys: journey `a` starts `b`, which starts `a`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::error::{CheckError, Loc};

/// Finds cycles in the `start` graph (`journey id → [(started journey id, where)]`) and
/// returns one error per cycle found, deterministically (by journey id). Every journey on a
/// reported cycle is covered by it, so a strongly connected group is usually one error.
pub(crate) fn find(starts: &HashMap<String, Vec<(String, Loc)>>) -> Vec<CheckError> {
    // Sorted adjacency with edges to unknown journeys dropped.
    let graph: BTreeMap<&str, Vec<(&str, &Loc)>> = starts
        .iter()
        .map(|(from, edges)| {
            let mut edges: Vec<(&str, &Loc)> = edges
                .iter()
                .filter(|(to, _)| starts.contains_key(to))
                .map(|(to, loc)| (to.as_str(), loc))
                .collect();
            edges.sort_by(|a, b| (a.0, a.1.span.start).cmp(&(b.0, b.1.span.start)));
            (from.as_str(), edges)
        })
        .collect();

    // Prune every journey that cannot reach a cycle: repeatedly drop journeys whose every
    // start target has been dropped.
    let mut remaining: HashSet<&str> = graph.keys().copied().collect();
    let mut out_degree: HashMap<&str, usize> = graph.iter().map(|(k, e)| (*k, e.len())).collect();
    let mut preds: HashMap<&str, Vec<&str>> = HashMap::new();
    for (from, edges) in &graph {
        for (to, _) in edges {
            preds.entry(to).or_default().push(from);
        }
    }
    let mut queue: VecDeque<&str> = out_degree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    while let Some(n) = queue.pop_front() {
        remaining.remove(n);
        for p in preds.get(n).into_iter().flatten() {
            let d = out_degree.get_mut(p).expect("known journey");
            *d -= 1;
            if *d == 0 {
                queue.push_back(p);
            }
        }
    }

    let mut errors = Vec::new();
    let mut reported: HashSet<&str> = HashSet::new();
    for start in graph.keys().copied().filter(|n| remaining.contains(n)) {
        if reported.contains(start) {
            continue;
        }
        // Shortest path from `start` back to itself (BFS over remaining journeys).
        let mut parent: HashMap<&str, (&str, &Loc)> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing: Option<(&str, &Loc)> = None;
        'bfs: while let Some(n) = queue.pop_front() {
            for (to, loc) in &graph[n] {
                if !remaining.contains(to) {
                    continue;
                }
                if *to == start {
                    closing = Some((n, loc));
                    break 'bfs;
                }
                if !parent.contains_key(to) {
                    parent.insert(to, (n, loc));
                    queue.push_back(to);
                }
            }
        }
        let Some((last, closing_loc)) = closing else {
            continue;
        };
        // Edges of the cycle, from `start` round to `start`.
        let mut edges = vec![(last, start, closing_loc)];
        let mut n = last;
        while n != start {
            let (p, loc) = parent[n];
            edges.push((p, n, loc));
            n = p;
        }
        edges.reverse();
        let mut cycle: Vec<String> = edges.iter().map(|(from, _, _)| from.to_string()).collect();
        cycle.push(start.to_string());
        for (from, _, _) in &edges {
            reported.insert(from);
        }
        let (_, _, first) = edges[0];
        errors.push(CheckError::StartCycle {
            cycle,
            at: first.clone(),
            others: edges[1..]
                .iter()
                .map(|(from, to, loc)| (from.to_string(), to.to_string(), (*loc).clone()))
                .collect(),
        });
    }
    errors
}
