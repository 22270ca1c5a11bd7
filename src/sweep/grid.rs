//! Grid files: a base config plus axes, expanded into a deterministic,
//! ordered list of fully resolved run specs.
//!
//! ```toml
//! base = "mnist-fs-stbp.toml"        # a config file (relative to the grid), or an inline [base] table
//! seeds = [1, 2, 3]                  # optional; several seeds per point give mean ± std
//! points = [                         # optional: explicit (α, K) pairs
//!   { alpha = [1, 2, 3, 2, 1], k = [4, 3, 3, 3, 2] },
//! ]
//! [layers]                           # optional: per-layer value lists, cartesian product
//! k = [[4], [3, 4], [3], [3], [2]]
//! alpha = [[1], [2, 3], [3], [2], [1]]
//! [axes]                             # optional: any other config key, dotted path
//! "model.surrogate.width" = [0.25, 0.5, 1.0]
//! [set]                              # optional: single overrides of the base
//! "train.epochs" = 1
//! ```
//!
//! Order: (α, K) points (explicit ones first, then the layer product), then
//! the other axes (in key order, last key fastest), then seeds (fastest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{Config, toml_error_line};
use crate::error::{Error, Result};

/// The grid file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    base: toml::Value,
    #[serde(default)]
    seeds: Option<Vec<u64>>,
    #[serde(default)]
    points: Option<Vec<PointSpec>>,
    #[serde(default)]
    layers: Option<LayerSpec>,
    #[serde(default)]
    axes: toml::Table,
    #[serde(default)]
    set: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointSpec {
    alpha: Vec<f32>,
    k: Vec<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerSpec {
    #[serde(default)]
    k: Option<Vec<Vec<usize>>>,
    #[serde(default)]
    alpha: Option<Vec<Vec<f32>>>,
}

/// One run of a sweep: its resolved config and identity.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Position in the whole (unsharded) grid.
    pub index: usize,
    /// Stable id: hash of the canonical JSON of the resolved config.
    pub run_id: String,
    /// Id of the point (the config with the seed left out): seeds of one
    /// point share it.
    pub point_id: String,
    /// Values of the generic axes (not α, K or seed), by key.
    pub axes: BTreeMap<String, serde_json::Value>,
    /// The resolved, validated config.
    pub config: Config,
}

/// An expanded grid.
#[derive(Clone, Debug)]
pub struct Grid {
    /// The grid file.
    pub path: PathBuf,
    /// Every run, in grid order.
    pub runs: Vec<RunSpec>,
}

/// `I/N`: run only the runs whose grid index is `I` modulo `N` (0-based `I`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole grid.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parse `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = |why: &str| Error::config("--shard", format!("{s:?}: {why}"));
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected I/N, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("I is not a whole number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad(
                "I must be in 0..N (0-based, as SLURM_ARRAY_TASK_ID with --array=0-(N-1))",
            ));
        }
        Ok(Shard { index, count })
    }

    /// Does this shard run grid index `i`?
    pub fn contains(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

/// 64-bit FNV-1a of `bytes`, as 16 hex digits.
pub fn fnv64_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Canonical JSON of a config (field order fixed by the struct).
pub fn canonical(cfg: &Config) -> String {
    serde_json::to_string(cfg).expect("config serialises")
}

/// Run id of a resolved config.
pub fn run_id(cfg: &Config) -> String {
    fnv64_hex(canonical(cfg).as_bytes())
}

/// Point id: the run id with the seed left out.
pub fn point_id(cfg: &Config) -> String {
    let mut c = cfg.clone();
    c.seed = 0;
    fnv64_hex(format!("point:{}", canonical(&c)).as_bytes())
}

/// Set the value at dotted `key` in `table`, creating missing tables
/// (unknown keys are rejected later, when the config is parsed).
fn set_path(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("is not a dotted config key such as model.surrogate.width".into());
    }
    let mut t = table;
    for p in &parts[..parts.len() - 1] {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("{p} is not a table")),
        };
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Cartesian product of per-position choices, last position fastest.
fn product<T: Clone>(choices: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    for c in choices {
        let mut next = Vec::with_capacity(out.len() * c.len());
        for prefix in &out {
            for v in c {
                let mut p = prefix.clone();
                p.push(v.clone());
                next.push(p);
            }
        }
        out = next;
    }
    out
}

impl Grid {
    /// Read, expand and validate a grid file. Nothing is written.
    pub fn load(path: &Path) -> Result<Grid> {
        crate::data::check_regular_file(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read grid: {e}")))?;
        Grid::from_toml_str(&text, path)
    }

    /// Expand grid text; `path` names it in errors and anchors a relative
    /// `base` file.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Grid> {
        let err = |field: &str, msg: String| Error::file(path, format!("{field}: {msg}"));
        let file: GridFile =
            toml::from_str(text).map_err(|e| Error::file(path, toml_error_line(&e, text)))?;
        // The base config as a TOML table.
        let mut base: toml::Table = match &file.base {
            toml::Value::String(rel) => {
                let p = path.parent().unwrap_or(Path::new(".")).join(rel);
                crate::data::check_regular_file(&p)?;
                let t = std::fs::read_to_string(&p)
                    .map_err(|e| err("base", format!("cannot read {}: {e}", p.display())))?;
                toml::from_str(&t).map_err(|e| Error::file(&p, toml_error_line(&e, &t)))?
            }
            toml::Value::Table(t) => t.clone(),
            _ => {
                return Err(err(
                    "base",
                    "must be a config file name or a [base] table".into(),
                ));
            }
        };
        for (key, v) in &file.set {
            set_path(&mut base, key, v.clone()).map_err(|m| err(&format!("set.{key}"), m))?;
        }
        let parse = |t: &toml::Table, field: &str| -> Result<Config> {
            let cfg: Config = toml::Value::Table(t.clone())
                .try_into()
                .map_err(|e: toml::de::Error| err(field, toml_error_line(&e, "")))?;
            cfg.validate().map_err(|e| err(field, e.to_string()))?;
            Ok(cfg)
        };
        let base_cfg = parse(&base, "base")?;
        // Axes apply to the normalised base (every default written out), so
        // a key such as model.surrogate.width works without a base section.
        let base: toml::Table = match toml::Value::try_from(&base_cfg) {
            Ok(toml::Value::Table(t)) => t,
            _ => return Err(err("base", "cannot be written back as TOML".into())),
        };

        // (α, K) points.
        let mut points: Vec<(Vec<f32>, Vec<usize>)> = Vec::new();
        if let Some(ps) = &file.points {
            if ps.is_empty() {
                return Err(err("points", "is empty".into()));
            }
            for (i, p) in ps.iter().enumerate() {
                if p.alpha.len() != p.k.len() {
                    return Err(err(
                        &format!("points[{i}]"),
                        format!("alpha has {} values but k has {}", p.alpha.len(), p.k.len()),
                    ));
                }
                points.push((p.alpha.clone(), p.k.clone()));
            }
        }
        if let Some(l) = &file.layers {
            let ks =
                l.k.clone()
                    .unwrap_or_else(|| base_cfg.model.k.iter().map(|&k| vec![k]).collect());
            let als = l
                .alpha
                .clone()
                .unwrap_or_else(|| base_cfg.model.alpha.iter().map(|&a| vec![a]).collect());
            if ks.len() != als.len() {
                return Err(err(
                    "layers",
                    format!("k lists {} layers but alpha lists {}", ks.len(), als.len()),
                ));
            }
            for (name, empty) in [
                ("k", ks.iter().position(Vec::is_empty)),
                ("alpha", als.iter().position(Vec::is_empty)),
            ] {
                if let Some(i) = empty {
                    return Err(err(
                        &format!("layers.{name}[{i}]"),
                        "is an empty axis".into(),
                    ));
                }
            }
            for a in product(&als) {
                for k in product(&ks) {
                    points.push((a.clone(), k));
                }
            }
        }
        if points.is_empty() {
            points.push((base_cfg.model.alpha.clone(), base_cfg.model.k.clone()));
        }

        // Generic axes (the `seed` key included), then the seeds list.
        let mut axis_keys: Vec<String> = Vec::new();
        let mut axis_vals: Vec<Vec<toml::Value>> = Vec::new();
        for (key, v) in &file.axes {
            let field = format!("axes.{key}");
            let vals = match v {
                toml::Value::Array(a) => a.clone(),
                _ => return Err(err(&field, "must be a list of values".into())),
            };
            if vals.is_empty() {
                return Err(err(&field, "is an empty axis".into()));
            }
            if key == "seed" && file.seeds.is_some() {
                return Err(err(
                    &field,
                    "seeds are given twice (axes.seed and seeds)".into(),
                ));
            }
            axis_keys.push(key.clone());
            axis_vals.push(vals);
        }
        let seeds: Vec<Option<u64>> = match &file.seeds {
            Some(s) if s.is_empty() => return Err(err("seeds", "is an empty axis".into())),
            Some(s) => s.iter().map(|&x| Some(x)).collect(),
            None => vec![None],
        };
        let combos = product(&axis_vals);

        let mut runs = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (pi, (alpha, k)) in points.iter().enumerate() {
            for combo in &combos {
                for seed in &seeds {
                    let mut t = base.clone();
                    let field = format!("points[{pi}]");
                    let arr = |v: Vec<toml::Value>| toml::Value::Array(v);
                    set_path(
                        &mut t,
                        "model.alpha",
                        arr(alpha
                            .iter()
                            .map(|&a| toml::Value::Float(a as f64))
                            .collect()),
                    )
                    .map_err(|m| err(&field, m))?;
                    set_path(
                        &mut t,
                        "model.k",
                        arr(k.iter().map(|&x| toml::Value::Integer(x as i64)).collect()),
                    )
                    .map_err(|m| err(&field, m))?;
                    let mut axes = BTreeMap::new();
                    for (key, v) in axis_keys.iter().zip(combo) {
                        set_path(&mut t, key, v.clone())
                            .map_err(|m| err(&format!("axes.{key}"), m))?;
                        if key != "seed" {
                            axes.insert(
                                key.clone(),
                                serde_json::to_value(v).expect("toml value as json"),
                            );
                        }
                    }
                    if let Some(s) = seed {
                        t.insert("seed".into(), toml::Value::Integer(*s as i64));
                    }
                    let what = if axis_keys.is_empty() {
                        field.clone()
                    } else {
                        let kv: Vec<String> =
                            axes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{field} with {}", kv.join(" "))
                    };
                    let config = parse(&t, &what)?;
                    let rid = run_id(&config);
                    if let Some(prev) = seen.insert(rid.clone(), runs.len()) {
                        return Err(err(
                            &what,
                            format!("gives the same run as grid run {prev} (duplicate point)"),
                        ));
                    }
                    runs.push(RunSpec {
                        index: runs.len(),
                        point_id: point_id(&config),
                        run_id: rid,
                        axes,
                        config,
                    });
                }
            }
        }
        Ok(Grid {
            path: path.to_path_buf(),
            runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[base]
name = "t"
[base.model]
layers = [121, 64, 10]
k = [4, 3]
alpha = [1.0, 2.0]
"#;

    fn grid(extra: &str) -> Result<Grid> {
        Grid::from_toml_str(&format!("{extra}\n{BASE}"), Path::new("g.toml"))
    }

    #[test]
    fn expands_points_layers_axes_and_seeds_in_order() {
        let g = grid(
            r#"seeds = [1, 2]
points = [{ alpha = [1, 1], k = [2, 2] }]
[layers]
k = [[4], [2, 3]]
[axes]
"model.surrogate.width" = [0.25, 1.0]
"#,
        )
        .unwrap();
        // 1 explicit + 2 layer points, × 2 widths × 2 seeds.
        assert_eq!(g.runs.len(), 12);
        let r = &g.runs;
        assert_eq!(r[0].config.model.k, vec![2, 2]);
        assert_eq!((r[0].config.seed, r[1].config.seed), (1, 2));
        assert_eq!(r[0].config.model.surrogate.width, 0.25);
        assert_eq!(r[2].config.model.surrogate.width, 1.0);
        assert_eq!(r[4].config.model.k, vec![4, 2]);
        assert_eq!(r[8].config.model.k, vec![4, 3]);
        assert_eq!(r[0].point_id, r[1].point_id);
        assert_ne!(r[0].run_id, r[1].run_id);
        assert_eq!(r[0].axes["model.surrogate.width"], serde_json::json!(0.25));
        let again = grid(
            r#"seeds = [1, 2]
points = [{ alpha = [1, 1], k = [2, 2] }]
[layers]
k = [[4], [2, 3]]
[axes]
"model.surrogate.width" = [0.25, 1.0]
"#,
        )
        .unwrap();
        let ids: Vec<_> = again.runs.iter().map(|r| r.run_id.clone()).collect();
        assert_eq!(
            ids,
            g.runs.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn rejects_bad_grids() {
        for (extra, needle) in [
            ("points = []", "points: is empty"),
            ("points = [{ alpha = [1], k = [2, 2] }]", "points[0]"),
            ("seeds = []", "seeds: is an empty axis"),
            ("[axes]\n\"model.foo\" = [1]", "unknown field"),
            ("[axes]\n\"train.lr\" = []", "empty axis"),
            ("[layers]\nk = [[4], []]", "layers.k[1]"),
            ("bogus = 1", "unknown field"),
            ("points = [{ alpha = [1, 1, 1], k = [2, 2, 2] }]", "model.k"),
        ] {
            let e = grid(extra).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra:?} gave {e:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn shards_partition_the_grid() {
        assert!(Shard::parse("3/2").is_err());
        assert!(Shard::parse("2/2").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x").is_err());
        let s: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        for i in 0..20 {
            assert_eq!(s.iter().filter(|sh| sh.contains(i)).count(), 1);
        }
    }
}
