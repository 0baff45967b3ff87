//! Exactness of inference on hand-worked networks, against brute force, and against the
//! back-door adjustment formula; the generator's contracts.

use super::*;
use crate::causal::generate::Shape;
use crate::causal::network::Model;
use crate::causal::query::Resolved;
use serde_json::json;

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64]) {
    assert!(close(got, want, 1e-12), "got {got:?}, want {want:?}");
}

fn ask(net: &Value, query: Value) -> Vec<f64> {
    answer::solve(net, &query).unwrap()
}

/// Z -> X, Z -> Y, X -> Y, all binary: a confounded effect.
fn confounded() -> Value {
    json!({"variables": [
        {"name": "Z", "values": ["0", "1"], "parents": [], "cpt": [[0.6, 0.4]]},
        {"name": "X", "values": ["0", "1"], "parents": ["Z"], "cpt": [[0.8, 0.2], [0.2, 0.8]]},
        {"name": "Y", "values": ["0", "1"], "parents": ["X", "Z"],
         "cpt": [[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.1, 0.9]]}
    ]})
}

#[test]
fn confounded_levels_all_differ() {
    let net = confounded();
    // P(Y=1 | X=1) = (0.6*0.2*0.4 + 0.4*0.8*0.9) / (0.6*0.2 + 0.4*0.8) = 0.336 / 0.44.
    let seeing = ask(&net, json!({"level": "associational", "target": "Y", "evidence": {"X": "1"}}));
    assert_close(&seeing, &[1.0 - 0.336 / 0.44, 0.336 / 0.44]);
    // P(Y=1 | do(X=1)) = sum_z P(z) P(Y=1 | X=1, z) = 0.6*0.4 + 0.4*0.9 = 0.6.
    let doing = ask(&net, json!({"level": "interventional", "target": "Y", "intervention": {"X": "1"}}));
    assert_close(&doing, &[0.4, 0.6]);
    // Observed X=0, Y=0. Abduction: P(Z=0, e) = 0.6*0.8*0.9 = 0.432, P(Z=1, e) = 0.4*0.2*0.5 = 0.04.
    // Had X been 1, Y reads the selector of (X=1, z), independent of the factual one of (X=0, z):
    // P(Y*=1 | e) = (0.432*0.4 + 0.04*0.9) / 0.472 = 0.2088 / 0.472.
    let imagining = ask(
        &net,
        json!({"level": "counterfactual", "target": "Y", "evidence": {"X": "0", "Y": "0"}, "intervention": {"X": "1"}}),
    );
    assert_close(&imagining, &[1.0 - 0.2088 / 0.472, 0.2088 / 0.472]);
    // Evidence on a descendant of the intervention, numbers accepted for value names:
    // P(Z | do(X=1), Y=1) = P(z) P(Y=1|1,z) / 0.6 = [0.24, 0.36] / 0.6.
    let after =
        ask(&net, json!({"level": "interventional", "target": "Z", "evidence": {"Y": 1}, "intervention": {"X": 1}}));
    assert_close(&after, &[0.4, 0.6]);
}

#[test]
fn shared_selectors_make_the_counterfactual_differ() {
    // X -> M -> Y. Observed X=0, Y=1; had X been 1, what would Y have been?
    let net = json!({"variables": [
        {"name": "X", "values": ["0", "1"], "parents": [], "cpt": [[0.5, 0.5]]},
        {"name": "M", "values": ["0", "1"], "parents": ["X"], "cpt": [[0.8, 0.2], [0.3, 0.7]]},
        {"name": "Y", "values": ["0", "1"], "parents": ["M"], "cpt": [[0.7, 0.3], [0.4, 0.6]]}
    ]});
    // Without confounding, seeing equals doing: 0.3*0.3 + 0.7*0.6 = 0.51.
    let seeing = ask(&net, json!({"level": "associational", "target": "Y", "evidence": {"X": "1"}}));
    let doing = ask(&net, json!({"level": "interventional", "target": "Y", "intervention": {"X": "1"}}));
    assert_close(&seeing, &[0.49, 0.51]);
    assert_close(&doing, &[0.49, 0.51]);
    // Abduction: P(M=0 | X=0, Y=1) = 0.8*0.3 / (0.8*0.3 + 0.2*0.6) = 2/3. M* ~ P(M | X=1) on its own
    // selector. When M* = M, Y* = Y = 1 (the same selector); otherwise Y* ~ P(Y | M*):
    // 2/3 (0.3*1 + 0.7*0.6) + 1/3 (0.3*0.3 + 0.7*1) = 0.48 + 0.79/3.
    let imagining = ask(
        &net,
        json!({"level": "counterfactual", "target": "Y", "evidence": {"X": "0", "Y": "1"}, "intervention": {"X": "1"}}),
    );
    let p1 = 0.48 + 0.79 / 3.0;
    assert_close(&imagining, &[1.0 - p1, p1]);
}

#[test]
fn three_valued_explaining_away() {
    // A -> C <- B with a three-valued A: observing C makes A and B dependent.
    let net = json!({"variables": [
        {"name": "A", "values": ["lo", "mid", "hi"], "parents": [], "cpt": [[0.2, 0.3, 0.5]]},
        {"name": "B", "values": ["no", "yes"], "parents": [], "cpt": [[0.5, 0.5]]},
        {"name": "C", "values": ["off", "on"], "parents": ["A", "B"],
         "cpt": [[0.9, 0.1], [0.5, 0.5], [0.8, 0.2], [0.4, 0.6], [0.5, 0.5], [0.1, 0.9]]}
    ]});
    // P(A, C=on, B=yes) / P(C=on, B=yes) with P(C=on | A, yes) = 0.5, 0.6, 0.9:
    // [0.2*0.5, 0.3*0.6, 0.5*0.9] / 0.73.
    let p = ask(&net, json!({"level": "associational", "target": "A", "evidence": {"C": "on", "B": "yes"}}));
    assert_close(&p, &[0.10 / 0.73, 0.18 / 0.73, 0.45 / 0.73]);
    // Intervening on the collider says nothing about its causes.
    let p = ask(
        &net,
        json!({"level": "interventional", "target": "A", "evidence": {"B": "yes"}, "intervention": {"C": "on"}}),
    );
    assert_close(&p, &[0.2, 0.3, 0.5]);
}

#[test]
fn impossible_and_contradicting_evidence_are_errors() {
    let net = json!({"variables": [
        {"name": "X", "values": ["0", "1"], "parents": [], "cpt": [[1.0, 0.0]]},
        {"name": "Y", "values": ["0", "1"], "parents": ["X"], "cpt": [[0.5, 0.5], [0.5, 0.5]]}
    ]});
    let e = answer::solve(&net, &json!({"level": "associational", "target": "Y", "evidence": {"X": "1"}})).unwrap_err();
    assert_eq!(e, "query: the evidence has probability zero");
    let e = answer::solve(
        &net,
        &json!({"level": "interventional", "target": "Y", "evidence": {"X": "0"}, "intervention": {"X": "1"}}),
    )
    .unwrap_err();
    assert_eq!(e, "query: the evidence on `X` contradicts the intervention on it");
    let e = answer::solve(&net, &json!({"level": "associational", "target": "Y", "evidence": {"X": "2"}})).unwrap_err();
    assert!(e.contains("evidence `X` = `2`"), "{e}");
    let e = answer::solve(&net, &json!({"level": "interventional", "target": "Y"})).unwrap_err();
    assert_eq!(e, "query: a interventional query needs an intervention");
}

// ---- brute force ----

/// Every joint assignment with its probability, in a network where `cut` variables have
/// their CPT replaced by a point mass at the given value (the do-operator, directly).
fn joint(m: &Model, cut: &[(usize, usize)]) -> Vec<(Vec<usize>, f64)> {
    let total: usize = m.cards.iter().product();
    (0..total)
        .map(|mut code| {
            let mut a = vec![0; m.len()];
            for v in (0..m.len()).rev() {
                a[v] = code % m.cards[v];
                code /= m.cards[v];
            }
            let p = (0..m.len())
                .map(|v| match cut.iter().find(|c| c.0 == v) {
                    Some(&(_, x)) => f64::from(u8::from(a[v] == x)),
                    None => m.cpt[v][m.row(v, m.parents[v].iter().map(|&p| a[p])) * m.cards[v] + a[v]],
                })
                .product();
            (a, p)
        })
        .collect()
}

fn conditional(joint: &[(Vec<usize>, f64)], card: usize, target: usize, evidence: &[(usize, usize)]) -> Vec<f64> {
    let mut d = vec![0.0; card];
    for (a, p) in joint {
        if evidence.iter().all(|&(v, x)| a[v] == x) {
            d[a[target]] += p;
        }
    }
    let z: f64 = d.iter().sum();
    d.iter().map(|x| x / z).collect()
}

/// Counterfactual by enumerating every exogenous selector: factual world from the selectors,
/// keep it if it matches the evidence, then the counterfactual world from the same selectors.
fn brute_counterfactual(m: &Model, q: &Resolved) -> Vec<f64> {
    let slots: Vec<(usize, usize)> =
        (0..m.len()).flat_map(|v| (0..m.cpt[v].len() / m.cards[v]).map(move |r| (v, r))).collect();
    let combos: usize = slots.iter().map(|&(v, _)| m.cards[v]).product();
    let mut d = vec![0.0; m.cards[q.target]];
    let mut u = vec![0usize; slots.len()];
    let mut selector: Vec<Vec<usize>> = (0..m.len()).map(|v| vec![0; m.cpt[v].len() / m.cards[v]]).collect();
    for _ in 0..combos {
        let mut p = 1.0;
        for (k, &(v, r)) in slots.iter().enumerate() {
            selector[v][r] = u[k];
            p *= m.cpt[v][r * m.cards[v] + u[k]];
        }
        let world = |fixed: &[(usize, usize)]| {
            let mut a = vec![0usize; m.len()];
            for &v in &m.order {
                a[v] = match fixed.iter().find(|f| f.0 == v) {
                    Some(&(_, x)) => x,
                    None => selector[v][m.row(v, m.parents[v].iter().map(|&p| a[p]))],
                };
            }
            a
        };
        let factual = world(&[]);
        if q.evidence.iter().all(|&(v, x)| factual[v] == x) {
            d[world(&q.intervention)[q.target]] += p;
        }
        for k in (0..u.len()).rev() {
            u[k] += 1;
            if u[k] < m.cards[slots[k].0] {
                break;
            }
            u[k] = 0;
        }
    }
    let z: f64 = d.iter().sum();
    d.iter().map(|x| x / z).collect()
}

fn small(variables: usize, values: (usize, usize), parents: (usize, usize)) -> Shape {
    Shape { variables, roots: (1, 2), parents, values }
}

fn random_model(seed: u64, shape: &Shape) -> Model {
    let mut rng = Rng::new(seed);
    let parents = generate::structure(&mut rng, shape);
    generate::network(&mut rng, &parents, shape).compile().unwrap()
}

#[test]
fn elimination_matches_brute_force_on_random_networks() {
    let qshape = QueryShape { max_evidence: 3, observe_target: 0.5 };
    for seed in 0..150 {
        let m = random_model(seed, &small(6, (2, 3), (1, 2)));
        let mut rng = Rng::new(seed ^ 0xabc);
        for level in [Level::Associational, Level::Interventional] {
            let q = generate::query(&mut rng, &m, level, &qshape);
            let want = conditional(&joint(&m, &q.intervention), m.cards[q.target], q.target, &q.evidence);
            let got = infer::answer(&m, &q).unwrap();
            assert!(close(&got, &want, 1e-12), "seed {seed} {q:?}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn twin_network_matches_enumerated_selectors() {
    let qshape = QueryShape { max_evidence: 2, observe_target: 0.7 };
    let shapes = [small(5, (2, 2), (1, 2)), small(3, (3, 3), (1, 1))];
    let mut differs_from_doing = 0;
    for (i, shape) in shapes.iter().enumerate() {
        for seed in 0..40 {
            let m = random_model(seed * 7 + i as u64, shape);
            let mut rng = Rng::new(seed);
            let q = generate::query(&mut rng, &m, Level::Counterfactual, &qshape);
            let got = infer::answer(&m, &q).unwrap();
            let want = brute_counterfactual(&m, &q);
            assert!(close(&got, &want, 1e-12), "shape {i} seed {seed} {q:?}: {got:?} vs {want:?}");
            let doing =
                infer::answer(&m, &Resolved { level: Level::Interventional, evidence: vec![], ..q.clone() }).unwrap();
            differs_from_doing += usize::from(!close(&got, &doing, 1e-6));
        }
    }
    assert!(differs_from_doing > 20, "counterfactuals should mostly differ from interventions: {differs_from_doing}");
}

/// d-separation of `x` and `y` given `z` in the DAG `parents`: they are separated iff they are
/// disconnected in the moral graph of the ancestral set of {x, y} and z, with z removed.
fn d_separated(parents: &[Vec<usize>], x: usize, y: usize, z: &[usize]) -> bool {
    let keep = Model::ancestors(parents, [x, y].into_iter().chain(z.iter().copied()));
    let n = parents.len();
    let mut adj = vec![Vec::new(); n];
    for v in (0..n).filter(|&v| keep[v]) {
        for (i, &p) in parents[v].iter().enumerate() {
            adj[v].push(p);
            adj[p].push(v);
            for &q in &parents[v][i + 1..] {
                adj[p].push(q);
                adj[q].push(p);
            }
        }
    }
    let mut seen = vec![false; n];
    let mut stack = vec![x];
    while let Some(v) = stack.pop() {
        if v == y {
            return false;
        }
        if !std::mem::replace(&mut seen[v], true) {
            stack.extend(adj[v].iter().copied().filter(|w| keep[*w] && !z.contains(w)));
        }
    }
    true
}

/// Z satisfies the back-door criterion for (X, Y): no descendant of X, and it blocks every
/// path from X to Y that starts with an edge into X (d-separation once X's out-edges are cut).
fn back_door(m: &Model, x: usize, y: usize, z: &[usize]) -> bool {
    let below = m.descendants(&[x]);
    if z.iter().any(|&v| below[v] || v == x || v == y) {
        return false;
    }
    let cut: Vec<Vec<usize>> = m.parents.iter().map(|ps| ps.iter().copied().filter(|&p| p != x).collect()).collect();
    d_separated(&cut, x, y, z)
}

#[test]
fn interventions_equal_back_door_adjustment() {
    let mut checked = 0;
    for seed in 0..60 {
        let m = random_model(1000 + seed, &small(6, (2, 3), (1, 2)));
        let j = joint(&m, &[]);
        for x in 0..m.len() {
            for y in (0..m.len()).filter(|&y| y != x) {
                let others: Vec<usize> = (0..m.len()).filter(|&v| v != x && v != y).collect();
                let mut sets: Vec<Vec<usize>> = vec![vec![]];
                sets.extend(others.iter().map(|&a| vec![a]));
                for (i, &a) in others.iter().enumerate() {
                    sets.extend(others[i + 1..].iter().map(|&b| vec![a, b]));
                }
                let Some(z) = sets.into_iter().find(|z| back_door(&m, x, y, z)) else {
                    continue;
                };
                for xv in 0..m.cards[x] {
                    let q = Resolved {
                        level: Level::Interventional,
                        target: y,
                        evidence: vec![],
                        intervention: vec![(x, xv)],
                    };
                    let got = infer::answer(&m, &q).unwrap();
                    // sum_z P(y | x, z) P(z), from the joint distribution of the unmutilated network.
                    let mut want = vec![0.0; m.cards[y]];
                    let zs: usize = z.iter().map(|&v| m.cards[v]).product();
                    for mut code in 0..zs {
                        let mut ev = Vec::new();
                        for &v in z.iter().rev() {
                            ev.push((v, code % m.cards[v]));
                            code /= m.cards[v];
                        }
                        let pz: f64 = j.iter().filter(|(a, _)| ev.iter().all(|&(v, k)| a[v] == k)).map(|e| e.1).sum();
                        ev.push((x, xv));
                        let py = conditional(&j, m.cards[y], y, &ev);
                        want.iter_mut().zip(py).for_each(|(w, p)| *w += p * pz);
                    }
                    assert!(close(&got, &want, 1e-10), "seed {seed} x {x} y {y} z {z:?}: {got:?} vs {want:?}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} back-door checks ran");
}

// ---- generator ----

#[test]
fn generated_tasks_keep_their_contract() {
    let g = Generator::new(CausalConfig::default(), 5).unwrap();
    for i in 0..60 {
        let t = g.draw(Split::Train, i, None).unwrap();
        let d = &t.data;
        // Anyone can recompute the answer from the exported network and query.
        let again = answer::solve(&d["network"], &d["query"]).unwrap();
        let stored: Vec<f64> = serde_json::from_value(d["answer"].clone()).unwrap();
        assert_eq!(again, stored);
        let net = Network::from_json(&d["network"]).unwrap();
        assert_eq!(net.variables.len(), 10);
        assert!(net.variables.iter().all(|v| (2..=3).contains(&v.values.len())));
        // The prompt shows every CPT entry, rounded to exactly what the reference used.
        let prompt = d["prompt"].as_str().unwrap();
        for v in &net.variables {
            for row in &v.cpt {
                let shown: Vec<String> = row.iter().map(|p| format!("{p:.2}")).collect();
                assert!(prompt.contains(&format!("= [{}]", shown.join(", "))), "row {row:?} missing");
                assert!(row.iter().all(|p| (p * 100.0 - (p * 100.0).round()).abs() < 1e-9));
            }
        }
        assert!(prompt.contains("ANSWER [p0, p1"));
        assert_eq!(d["difficulty"].as_u64().unwrap() as usize, t.difficulty);
        assert_eq!(g.draw(Split::Train, i, None).unwrap(), t, "task i is a pure function of (seed, split, i)");
    }
}

#[test]
fn levels_and_difficulty_can_be_pinned() {
    let cfg = CausalConfig { min_difficulty: 6, max_difficulty: Some(8), ..CausalConfig::default() };
    let g = Generator::new(cfg, 1).unwrap();
    for level in Level::ALL {
        for i in 0..20 {
            let t = g.draw(Split::Train, i, Some(level)).unwrap();
            assert_eq!(t.level, level);
            assert_eq!(t.data["query"]["level"], json!(level.name()));
            assert!((6..=8).contains(&t.difficulty), "{}", t.difficulty);
        }
    }
}

#[test]
fn export_splits_share_no_graph_and_count_levels() {
    let mut train = Vec::new();
    let mut test = Vec::new();
    let cfg = CausalConfig { variables: 7, ..CausalConfig::default() };
    let s1 = export::export(cfg.clone(), 3, Split::Train, None, 300, &mut train).unwrap();
    let s2 = export::export(cfg, 3, Split::Test, Some(Level::Counterfactual), 40, &mut test).unwrap();
    let hashes = |bytes: &[u8]| -> Vec<String> {
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["graph_hash"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (hashes(&train), hashes(&test));
    assert_eq!((a.len(), b.len()), (300, 40));
    let a_set: std::collections::HashSet<_> = a.iter().collect();
    assert_eq!(a_set.len(), 300, "no graph repeats within a split");
    assert!(b.iter().all(|h| !a_set.contains(h)), "no graph is shared across splits");
    assert_eq!(s1.tasks, 300);
    assert_eq!(s1.histogram.values().flat_map(|m| m.values()).sum::<u64>(), 300);
    assert_eq!(s1.histogram.len(), 3, "all levels drawn: {:?}", s1.histogram);
    assert_eq!(s2.histogram.keys().copied().collect::<Vec<_>>(), vec![Level::Counterfactual]);
    assert!(s1.table().starts_with("level \\ size"));
    assert!(s1.table().contains("interventional"));
    let as_json = serde_json::to_value(&s2).unwrap();
    assert_eq!(as_json["split"], json!("test"));
    assert_eq!(
        as_json["histogram"]["counterfactual"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        40
    );
}

#[test]
fn bad_configs_are_errors_naming_the_field() {
    let err = |toml: &str| spec(&toml::from_str(toml).unwrap(), 0).err().unwrap().to_string();
    assert!(err("max_values = 11").contains("values"), "{}", err("max_values = 11"));
    assert!(err("levels = []").contains("levels"));
    assert!(err("levels = [\"causal\"]").contains("unknown variant"));
    assert!(err("min_roots = 0").contains("roots"));
    assert!(err("variabls = 3").contains("variabls"));
}

#[test]
fn user_tasks_without_prompt_or_answer_still_play() {
    let task = Task::new("mine", json!({"network": confounded(), "query": {"level": "associational", "target": "Y"}}));
    let mut env = Causal;
    let msgs = env.reset(&task, 0).unwrap();
    assert!(msgs[1].content.contains("P(Y | X=1, Z=0) = [0.60, 0.40]"), "{}", msgs[1].content);
    // P(Y=1) = 0.6*(0.8*0.1 + 0.2*0.4) + 0.4*(0.2*0.5 + 0.8*0.9) = 0.096 + 0.328.
    let p1: f64 = answer::parse(&gold(&task, None).unwrap()).unwrap()[1];
    assert!((p1 - 0.424).abs() < 1e-12);
    let broken =
        Task::new("b", json!({"network": {"variables": []}, "query": {"level": "associational", "target": "Y"}}));
    assert!(matches!(env.reset(&broken, 0), Err(EnvError::InvalidTask(m)) if m.contains("no variables")));
}

#[test]
fn train_levels_pin_the_training_split_only() {
    let cfg = CausalConfig { variables: 5, train_levels: Some(vec![Level::Interventional]), ..CausalConfig::default() };
    let g = Generator::new(cfg, 2).unwrap();
    for i in 0..20 {
        assert_eq!(g.draw(Split::Train, i, None).unwrap().level, Level::Interventional);
    }
    let test: std::collections::BTreeSet<Level> = (0..60).map(|i| g.draw(Split::Test, i, None).unwrap().level).collect();
    assert_eq!(test.len(), 3, "the test split keeps every level: {test:?}");
    let empty = CausalConfig { train_levels: Some(vec![]), ..CausalConfig::default() };
    assert!(empty.validate().unwrap_err().to_string().contains("train_levels"));
}

#[test]
fn rounded_gold_answers_sum_to_one_and_stay_within_the_threshold() {
    assert_eq!(answer::format_rounded(&[1.0 / 3.0; 3], 2), "ANSWER [0.34, 0.33, 0.33]");
    assert_eq!(answer::format_rounded(&[0.25, 0.75], 1), "ANSWER [0.3, 0.7]");
    assert_eq!(answer::format_rounded(&[0.68, 0.32], 3), "ANSWER [0.680, 0.320]");
    let cfg = CausalConfig { variables: 6, gold_decimals: Some(2), ..CausalConfig::default() };
    let g = Generator::new(cfg.clone(), 3).unwrap();
    for i in 0..40 {
        let t = g.draw(Split::Train, i, None).unwrap();
        let task = Task::new("t", t.data.clone());
        let exact: Vec<f64> = serde_json::from_value(t.data["answer"].clone()).unwrap();
        let line = gold(&task, cfg.gold_decimals).unwrap();
        let p = answer::parse(&line).unwrap();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{line}");
        // Each entry moves by at most half a unit before the remainders, one unit after.
        assert!(answer::tvd(&p, &exact) <= 0.5 * 0.01 * exact.len() as f64 + 1e-12, "{line} vs {exact:?}");
        assert_eq!(answer::parse(&gold(&task, None).unwrap()).unwrap(), exact);
    }
    let err = spec(&toml::from_str("gold_decimals = 0").unwrap(), 0).err().unwrap().to_string();
    assert!(err.contains("gold_decimals"), "{err}");
}
