//! The seeded synthetic generator: small databases from a few schema families, and questions
//! from templates at five difficulty levels, each with a gold query. Works with no download.
//!
//! Every database of a family has the same schema: an entity table (`customers`, `students`,
//! `airlines`) and a fact table that points at it (`orders`, `enrollments`, `flights`). Rows come
//! from the seed; numeric columns hold distinct values, so `ORDER BY ... LIMIT` questions have one
//! right answer. Train and test tasks use different database instances, so a test question is
//! never asked of a database seen in training.

use rlvr_engine::{BoxError, Split, Task, TaskSource, seed};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Bump when the generated databases or questions change, so cached files are not reused.
const GENERATOR_VERSION: u64 = 1;

/// The difficulty levels, easiest first.
pub const LEVELS: [&str; 5] = ["filter", "aggregate", "join", "nested", "order_limit"];

/// One schema family.
struct Family {
    name: &'static str,
    /// Entity table, its key, singular and plural nouns.
    entity: &'static str,
    key: &'static str,
    noun: &'static str,
    nouns: &'static str,
    /// Categorical column of the entity and how questions call it.
    cat: &'static str,
    cat_label: &'static str,
    cat_values: &'static [&'static str],
    /// Numeric column of the entity, its label, and its value range (distinct integers, scaled).
    num: &'static str,
    num_label: &'static str,
    num_range: (i64, i64),
    num_scale: f64,
    /// Fact table, its key, the foreign key to the entity, its plural noun.
    fact: &'static str,
    fact_key: &'static str,
    facts: &'static str,
    /// Categorical column of the fact table.
    fact_cat: &'static str,
    fact_cat_values: &'static [&'static str],
    /// Numeric measure of the fact table, its label, range.
    measure: &'static str,
    measure_label: &'static str,
    measure_range: (i64, i64),
}

const FIRST: &[&str] = &[
    "Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena", "Milo", "Nia", "Omar",
    "Pia", "Quin", "Rosa", "Sami", "Tara",
];
const LAST: &[&str] =
    &["Abe", "Berg", "Chen", "Diaz", "Eze", "Fox", "Gray", "Holt", "Ito", "Jain", "Kim", "Lund", "Moss", "Ng", "Ortiz"];
const CARRIERS: &[&str] = &[
    "Aero", "Blue", "Coral", "Delta", "Echo", "Falcon", "Gale", "Horizon", "Iris", "Jet", "Kite", "Lark", "Meridian",
    "Nimbus", "Orbit",
];
const CARRIER_SUFFIX: &[&str] = &["Air", "Airways", "Wings", "Express", "Connect", "Jet"];

const FAMILIES: [Family; 3] = [
    Family {
        name: "shop",
        entity: "customers",
        key: "customer_id",
        noun: "customer",
        nouns: "customers",
        cat: "city",
        cat_label: "city",
        cat_values: &["Lyon", "Oslo", "Porto", "Quito", "Seoul", "Tunis"],
        num: "credit_limit",
        num_label: "credit limit",
        num_range: (100, 5000),
        num_scale: 1.0,
        fact: "orders",
        fact_key: "order_id",
        facts: "orders",
        fact_cat: "product",
        fact_cat_values: &["lamp", "desk", "chair", "kettle", "rug", "shelf", "clock"],
        measure: "quantity",
        measure_label: "quantity",
        measure_range: (1, 20),
    },
    Family {
        name: "school",
        entity: "students",
        key: "student_id",
        noun: "student",
        nouns: "students",
        cat: "major",
        cat_label: "major",
        cat_values: &["biology", "history", "math", "music", "physics"],
        num: "gpa",
        num_label: "GPA",
        num_range: (150, 400),
        num_scale: 0.01,
        fact: "enrollments",
        fact_key: "enrollment_id",
        facts: "enrollments",
        fact_cat: "course",
        fact_cat_values: &["algebra", "chemistry", "drawing", "ethics", "french", "geology"],
        measure: "credits",
        measure_label: "credits",
        measure_range: (1, 6),
    },
    Family {
        name: "flights",
        entity: "airlines",
        key: "airline_id",
        noun: "airline",
        nouns: "airlines",
        cat: "country",
        cat_label: "country",
        cat_values: &["Brazil", "Canada", "Chile", "Japan", "Kenya", "Norway"],
        num: "fleet_size",
        num_label: "fleet size",
        num_range: (5, 900),
        num_scale: 1.0,
        fact: "flights",
        fact_key: "flight_id",
        facts: "flights",
        fact_cat: "destination",
        fact_cat_values: &["ATH", "BKK", "CPT", "DXB", "LIM", "MEX", "NRT", "YUL"],
        measure: "distance",
        measure_label: "distance",
        measure_range: (200, 9000),
    },
];

/// The names of the schema families.
pub fn family_names() -> Vec<&'static str> {
    FAMILIES.iter().map(|f| f.name).collect()
}

/// The templates: (name, level). Every level has at least two.
pub const TEMPLATES: [(&str, &str); 11] = [
    ("filter_category", "filter"),
    ("filter_number", "filter"),
    ("count_by_category", "aggregate"),
    ("average_by_category", "aggregate"),
    ("join_total", "join"),
    ("join_filter", "join"),
    ("above_average", "nested"),
    ("without_facts", "nested"),
    ("top_k", "order_limit"),
    ("most_common_category", "order_limit"),
    ("top_k_by_total", "order_limit"),
];

/// Settings of the synthetic source (the `synthetic` table of `[env.config]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Families to draw from. Default: all (`shop`, `school`, `flights`).
    pub families: Vec<String>,
    /// Levels to draw from. Default: all five.
    pub levels: Vec<String>,
    /// Database instances per family for training tasks. Default 4.
    pub train_dbs: u32,
    /// Database instances per family for test tasks (disjoint from training). Default 2.
    pub test_dbs: u32,
    /// Entity rows per database (fact rows are about three times as many). Default 30.
    pub rows: u32,
    /// Tasks in the test split. Default 200.
    pub test_size: u64,
    /// Where databases are written. Default `$XDG_CACHE_HOME/rlvr/sql-synth` (else
    /// `~/.cache/rlvr/sql-synth`). Files are named by a hash of everything that shapes them.
    pub db_dir: Option<PathBuf>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            families: family_names().into_iter().map(String::from).collect(),
            levels: LEVELS.iter().map(|s| s.to_string()).collect(),
            train_dbs: 4,
            test_dbs: 2,
            rows: 30,
            test_size: 200,
            db_dir: None,
        }
    }
}

/// The cache directory of rlvr: `$XDG_CACHE_HOME/rlvr`, else `~/.cache/rlvr`, else a temp dir.
pub fn cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("rlvr");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(h).join(".cache").join("rlvr");
    }
    std::env::temp_dir().join("rlvr")
}

/// One generated database, kept in memory to draw question parameters from.
struct Instance {
    path: PathBuf,
    db_id: String,
    names: Vec<String>,
    cats: Vec<&'static str>,
    nums: Vec<i64>,
    /// (entity index, fact category, measure) per fact row.
    facts: Vec<(usize, &'static str, i64)>,
}

/// The synthetic task source.
pub struct SynthTasks {
    config: SynthConfig,
    seed: u64,
    families: Vec<usize>,
    templates: Vec<usize>,
    /// Per family: train instances, then test instances.
    instances: Vec<Vec<Instance>>,
    compare: String,
    keep_distinct: bool,
}

/// Distinct draws from `lo..=hi` driven by `h`.
fn distinct(h: u64, n: usize, lo: i64, hi: i64) -> Vec<i64> {
    let span = (hi - lo + 1) as u64;
    let mut out: Vec<i64> = Vec::with_capacity(n);
    let mut k = 0u64;
    while out.len() < n && (out.len() as u64) < span {
        let v = lo + (seed::derive(h, &[k]) % span) as i64;
        k += 1;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn pick<T: Copy>(h: u64, items: &[T]) -> T {
    items[(h % items.len() as u64) as usize]
}

impl SynthTasks {
    /// Builds the generator, writing any database not yet on disk.
    pub fn new(config: SynthConfig, seed: u64, compare: &str, keep_distinct: bool) -> Result<Self, BoxError> {
        let families = config
            .families
            .iter()
            .map(|f| {
                FAMILIES
                    .iter()
                    .position(|x| x.name == f)
                    .ok_or_else(|| format!("unknown family `{f}`; known: {}", family_names().join(", ")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if families.is_empty() {
            return Err("families must name at least one schema family".into());
        }
        if let Some(l) = config.levels.iter().find(|l| !LEVELS.contains(&l.as_str())) {
            return Err(format!("unknown level `{l}`; known: {}", LEVELS.join(", ")).into());
        }
        let templates: Vec<usize> =
            (0..TEMPLATES.len()).filter(|&t| config.levels.iter().any(|l| l == TEMPLATES[t].1)).collect();
        if templates.is_empty() {
            return Err("levels must name at least one level".into());
        }
        if config.train_dbs == 0 || config.test_dbs == 0 {
            return Err("train_dbs and test_dbs must be at least 1".into());
        }
        if !(4..=10_000).contains(&config.rows) {
            return Err(format!("rows must lie in 4..=10000, got {}", config.rows).into());
        }
        let dir = config.db_dir.clone().unwrap_or_else(|| cache_dir().join("sql-synth"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut instances = Vec::new();
        for (fi, family) in FAMILIES.iter().enumerate() {
            let mut list = Vec::new();
            if families.contains(&fi) {
                for k in 0..config.train_dbs + config.test_dbs {
                    list.push(Self::instance(&dir, fi, family, k, seed, config.rows)?);
                }
            }
            instances.push(list);
        }
        Ok(Self { config, seed, families, templates, instances, compare: compare.into(), keep_distinct })
    }

    fn instance(dir: &Path, fi: usize, f: &Family, k: u32, seed: u64, rows: u32) -> Result<Instance, BoxError> {
        let h = seed::derive(seed, &[GENERATOR_VERSION, fi as u64, u64::from(k), u64::from(rows)]);
        let n = rows as usize;
        let mut names = Vec::with_capacity(n);
        let mut i = 0u64;
        while names.len() < n {
            let a = seed::derive(h, &[1, i]);
            let name = if f.name == "flights" {
                format!("{} {}", pick(a, CARRIERS), pick(a >> 20, CARRIER_SUFFIX))
            } else {
                format!("{} {}", pick(a, FIRST), pick(a >> 20, LAST))
            };
            i += 1;
            if !names.contains(&name) || i > 10_000 {
                names.push(if names.contains(&name) { format!("{name} {}", names.len()) } else { name });
            }
        }
        let cats: Vec<&'static str> = (0..n).map(|i| pick(seed::derive(h, &[2, i as u64]), f.cat_values)).collect();
        let nums = distinct(seed::derive(h, &[3]), n, f.num_range.0, f.num_range.1);
        if nums.len() < n {
            return Err(format!("family {} cannot hold {n} distinct {} values", f.name, f.num).into());
        }
        let n_facts = 3 * n;
        let span = (f.measure_range.1 - f.measure_range.0 + 1) as u64;
        // The last entity never gets a fact, so "entities without facts" is never empty.
        let facts: Vec<(usize, &'static str, i64)> = (0..n_facts)
            .map(|j| {
                let g = seed::derive(h, &[5, j as u64]);
                (
                    (g % (n as u64 - 1)) as usize,
                    pick(g >> 16, f.fact_cat_values),
                    f.measure_range.0 + (seed::mix(g) % span) as i64,
                )
            })
            .collect();
        let db_id = format!("{}_{k}", f.name);
        let path = dir.join(format!("{db_id}-{h:016x}.sqlite"));
        let inst = Instance { path, db_id, names, cats, nums, facts };
        if !inst.path.is_file() {
            inst.write(f)?;
        }
        Ok(inst)
    }

    fn num_value(f: &Family, v: i64) -> String {
        if f.num_scale == 1.0 { v.to_string() } else { format!("{:.2}", v as f64 * f.num_scale) }
    }

    fn task_for(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        let h = seed::derive(self.seed, &[0x5e1, split.index(), index]);
        let fi = self.families[(h % self.families.len() as u64) as usize];
        let (first, count) = match split {
            Split::Train => (0, self.config.train_dbs),
            Split::Test => (self.config.train_dbs, self.config.test_dbs),
        };
        let inst = &self.instances[fi][(first + (seed::mix(h ^ 1) % u64::from(count)) as u32) as usize];
        let t = self.templates[(seed::mix(h ^ 2) % self.templates.len() as u64) as usize];
        let (question, gold) = question(&FAMILIES[fi], inst, TEMPLATES[t].0, seed::mix(h ^ 3));
        let tag = if split == Split::Train { "train" } else { "test" };
        Ok(Task::new(
            format!("{tag}-{index}"),
            json!({
                "db": inst.path.to_string_lossy(),
                "db_id": inst.db_id,
                "question": question,
                "gold": gold,
                "compare": self.compare,
                "keep_distinct": self.keep_distinct,
                "family": FAMILIES[fi].name,
                "level": TEMPLATES[t].1,
                "template": TEMPLATES[t].0,
            }),
        ))
    }
}

impl Instance {
    /// Writes the database to a temporary name, then renames it into place, so a reader never
    /// sees a half-written file and concurrent writers do not clash.
    fn write(&self, f: &Family) -> Result<(), BoxError> {
        let tmp = self.path.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut conn = Connection::open(&tmp)?;
        let num_type = if f.num_scale == 1.0 { "INTEGER" } else { "REAL" };
        let tx = conn.transaction()?;
        tx.execute_batch(&format!(
            "CREATE TABLE {e} (\n  {k} INTEGER PRIMARY KEY,\n  name TEXT NOT NULL,\n  {c} TEXT,\n  {n} {num_type}\n);\n\
             CREATE TABLE {fact} (\n  {fk} INTEGER PRIMARY KEY,\n  {k} INTEGER REFERENCES {e}({k}),\n  {fc} TEXT,\n  {m} INTEGER\n);",
            e = f.entity,
            k = f.key,
            c = f.cat,
            n = f.num,
            fact = f.fact,
            fk = f.fact_key,
            fc = f.fact_cat,
            m = f.measure,
        ))?;
        {
            let mut ins = tx.prepare(&format!("INSERT INTO {} VALUES (?1, ?2, ?3, ?4)", f.entity))?;
            for i in 0..self.names.len() {
                let num: rusqlite::types::Value = if f.num_scale == 1.0 {
                    self.nums[i].into()
                } else {
                    (Self::scaled(self.nums[i], f.num_scale)).into()
                };
                ins.execute(rusqlite::params![i as i64 + 1, self.names[i], self.cats[i], num])?;
            }
            let mut ins = tx.prepare(&format!("INSERT INTO {} VALUES (?1, ?2, ?3, ?4)", f.fact))?;
            for (j, (e, c, m)) in self.facts.iter().enumerate() {
                ins.execute(rusqlite::params![j as i64 + 1, *e as i64 + 1, c, m])?;
            }
        }
        tx.commit()?;
        drop(conn);
        std::fs::rename(&tmp, &self.path).map_err(|e| format!("moving {} into place: {e}", self.path.display()))?;
        Ok(())
    }

    fn scaled(v: i64, scale: f64) -> f64 {
        // Round through text so the stored value is the nearest double to the decimal shown.
        format!("{:.2}", v as f64 * scale).parse().unwrap_or(v as f64 * scale)
    }
}

/// The question text and gold query of `template` on `inst`, parameters drawn by `h`.
fn question(f: &Family, inst: &Instance, template: &str, h: u64) -> (String, String) {
    let n = inst.names.len();
    let (e, k, fact) = (f.entity, f.key, f.fact);
    let entity_i = (h % n as u64) as usize;
    let cat = inst.cats[entity_i];
    match template {
        "filter_category" => (
            format!("List the names of all {} whose {} is {cat}.", f.nouns, f.cat_label),
            format!("SELECT name FROM {e} WHERE {} = '{cat}'", f.cat),
        ),
        "filter_number" => {
            let mut sorted = inst.nums.clone();
            sorted.sort();
            let cut = SynthTasks::num_value(f, sorted[n / 4 + (h as usize >> 8) % (n / 2)]);
            (
                format!("Which {} have a {} greater than {cut}? Give their names.", f.nouns, f.num_label),
                format!("SELECT name FROM {e} WHERE {} > {cut}", f.num),
            )
        }
        "count_by_category" => (
            format!(
                "How many {} are there for each {}? Give each {} with its count.",
                f.nouns, f.cat_label, f.cat_label
            ),
            format!("SELECT {c}, COUNT(*) FROM {e} GROUP BY {c}", c = f.cat),
        ),
        "average_by_category" => (
            format!("What is the average {} of {} in each {}?", f.num_label, f.nouns, f.cat_label),
            format!("SELECT {c}, AVG({}) FROM {e} GROUP BY {c}", f.num, c = f.cat),
        ),
        "join_total" => (
            format!(
                "For each {} that has {}, give its name and the total {} of its {}.",
                f.noun, f.facts, f.measure_label, f.facts
            ),
            format!(
                "SELECT T1.name, SUM(T2.{m}) FROM {e} AS T1 JOIN {fact} AS T2 ON T1.{k} = T2.{k} GROUP BY T1.{k}",
                m = f.measure
            ),
        ),
        "join_filter" => {
            let fc = inst.facts[(h as usize >> 4) % inst.facts.len()].1;
            (
                format!(
                    "What are the names of the {} with at least one {} whose {} is {fc}?",
                    f.nouns,
                    &f.facts[..f.facts.len() - 1],
                    f.fact_cat
                ),
                format!(
                    "SELECT DISTINCT T1.name FROM {e} AS T1 JOIN {fact} AS T2 ON T1.{k} = T2.{k} WHERE T2.{} = '{fc}'",
                    f.fact_cat
                ),
            )
        }
        "above_average" => (
            format!("Which {} have a {} above the average of all {}? Give their names.", f.nouns, f.num_label, f.nouns),
            format!("SELECT name FROM {e} WHERE {n} > (SELECT AVG({n}) FROM {e})", n = f.num),
        ),
        "without_facts" => (
            format!("Which {} have no {}? Give their names.", f.nouns, f.facts),
            format!("SELECT name FROM {e} WHERE {k} NOT IN (SELECT {k} FROM {fact})"),
        ),
        "top_k" => {
            let top = 1 + (h as usize >> 12) % 5;
            (
                format!("What are the names of the {top} {} with the highest {}, highest first?", f.nouns, f.num_label),
                format!("SELECT name FROM {e} ORDER BY {} DESC LIMIT {top}", f.num),
            )
        }
        "most_common_category" => (
            format!("Which {} has the most {}? If several tie, give the alphabetically first.", f.cat_label, f.nouns),
            format!("SELECT {c} FROM {e} GROUP BY {c} ORDER BY COUNT(*) DESC, {c} ASC LIMIT 1", c = f.cat),
        ),
        _ => {
            let top = 1 + (h as usize >> 12) % 3;
            (
                format!(
                    "Give the names of the {top} {} whose {} have the largest total {}, largest first (ties broken by name).",
                    f.nouns, f.facts, f.measure_label
                ),
                format!(
                    "SELECT T1.name FROM {e} AS T1 JOIN {fact} AS T2 ON T1.{k} = T2.{k} GROUP BY T1.{k} \
                     ORDER BY SUM(T2.{m}) DESC, T1.name ASC LIMIT {top}",
                    m = f.measure
                ),
            )
        }
    }
}

impl TaskSource for SynthTasks {
    fn len(&self, split: Split) -> Option<u64> {
        match split {
            Split::Train => None,
            Split::Test => Some(self.config.test_size),
        }
    }

    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        self.task_for(split, index)
    }
}

/// Every (family, template) pair on the first training database of each family: the tasks a
/// conformance test checks so that no template or level is left out.
pub fn all_templates(tasks: &SynthTasks) -> Vec<Task> {
    let mut out = Vec::new();
    for &fi in &tasks.families {
        let inst = &tasks.instances[fi][0];
        for &t in &tasks.templates {
            for variant in 0..3u64 {
                let (question, gold) =
                    question(&FAMILIES[fi], inst, TEMPLATES[t].0, seed::derive(tasks.seed, &[t as u64, variant]));
                out.push(Task::new(
                    format!("{}-{}-{variant}", inst.db_id, TEMPLATES[t].0),
                    json!({
                        "db": inst.path.to_string_lossy(),
                        "db_id": inst.db_id,
                        "question": question,
                        "gold": gold,
                        "compare": tasks.compare,
                        "keep_distinct": tasks.keep_distinct,
                        "family": FAMILIES[fi].name,
                        "level": TEMPLATES[t].1,
                        "template": TEMPLATES[t].0,
                    }),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::sandbox::{Limits, Sandbox};

    fn tasks(dir: &Path) -> SynthTasks {
        let cfg = SynthConfig { db_dir: Some(dir.to_path_buf()), ..SynthConfig::default() };
        SynthTasks::new(cfg, 5, "spider", false).unwrap()
    }

    #[test]
    fn every_template_has_a_level_and_every_level_a_template() {
        for level in LEVELS {
            assert!(TEMPLATES.iter().filter(|t| t.1 == level).count() >= 2, "{level}");
        }
    }

    #[test]
    fn every_gold_query_runs_and_returns_rows() {
        let dir = tempfile::tempdir().unwrap();
        let t = tasks(dir.path());
        let all = all_templates(&t);
        assert_eq!(all.len(), 3 * TEMPLATES.len() * 3);
        for task in all {
            let mut s = Sandbox::open_read_only(Path::new(task.str_field("db").unwrap()), Limits::default()).unwrap();
            let r = s.run(task.str_field("gold").unwrap()).unwrap_or_else(|e| panic!("{}: {e}", task.id));
            assert!(!r.rows.is_empty(), "{}: gold {} returned no rows", task.id, task.data["gold"]);
        }
    }

    #[test]
    fn same_seed_same_tasks_and_splits_use_different_databases() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (tasks(dir.path()), tasks(dir.path()));
        for i in 0..20 {
            assert_eq!(a.task(Split::Train, i).unwrap(), b.task(Split::Train, i).unwrap());
        }
        let train: std::collections::HashSet<String> =
            (0..200).map(|i| a.task(Split::Train, i).unwrap().data["db_id"].as_str().unwrap().to_string()).collect();
        for i in 0..50 {
            let db = a.task(Split::Test, i).unwrap().data["db_id"].as_str().unwrap().to_string();
            assert!(!train.contains(&db), "test database {db} also used in training");
        }
    }

    #[test]
    fn bad_config_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            SynthConfig { families: vec!["zoo".into()], db_dir: Some(dir.path().into()), ..SynthConfig::default() };
        assert!(SynthTasks::new(cfg, 0, "spider", false).err().unwrap().to_string().contains("unknown family `zoo`"));
        let cfg =
            SynthConfig { levels: vec!["hard".into()], db_dir: Some(dir.path().into()), ..SynthConfig::default() };
        assert!(SynthTasks::new(cfg, 0, "spider", false).err().unwrap().to_string().contains("unknown level `hard`"));
    }
}
