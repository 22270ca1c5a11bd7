//! Provenance checks of a resumed run: the training state must go on with
//! the config and the data it started with.

use std::path::Path;

use crate::config::Config;
use crate::data::fingerprint::DataPrint;
use crate::error::{Error, Result};

/// Dotted keys whose values differ between two TOML tables (missing on
/// one side counts), in key order.
fn toml_differences(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<String>) {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                toml_differences(&key, x, y, out)
            }
            (x, y) if x != y => out.push(key),
            _ => {}
        }
    }
}

/// The config keys (dotted) in which `a` and `b` differ.
pub fn config_differences(a: &Config, b: &Config) -> Vec<String> {
    let table = |c: &Config| -> toml::Table { c.to_toml().parse().unwrap_or_default() };
    let mut out = Vec::new();
    toml_differences("", &table(a), &table(b), &mut out);
    out
}

/// At most four items, then "and N more".
fn listed<S: AsRef<str>>(items: &[S]) -> String {
    let mut s: Vec<&str> = items.iter().take(4).map(AsRef::as_ref).collect();
    let more = format!("and {} more", items.len().saturating_sub(4));
    if items.len() > 4 {
        s.push(&more);
    }
    s.join(", ")
}

/// Refuse to resume the run in `dir` when its `config.toml` no longer is
/// the config of its training state (`state`, read from `state_path`).
/// A missing `config.toml` is written again by the run.
pub fn check_config_file(dir: &Path, state_path: &Path, state: &Config) -> Result<()> {
    let path = dir.join("config.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::file(&path, format!("cannot read config: {e}"))),
    };
    let file = Config::from_toml_str(&text, &path)?;
    let diff = config_differences(&file, state);
    if diff.is_empty() {
        return Ok(());
    }
    Err(Error::file(
        &path,
        format!(
            "differs from the config in {} ({}): a resumed run continues with its saved config; restore config.toml, or start a new run with the new config",
            state_path.display(),
            listed(&diff)
        ),
    ))
}

/// Refuse to resume when the data now (`now`, from `data_dir`) are not
/// those the state recorded; a state without a record (written before fsnn
/// recorded it) resumes with a warning.
pub fn check_resume_data(
    state_path: &Path,
    recorded: Option<&DataPrint>,
    now: &DataPrint,
    data_dir: &Path,
) -> Result<()> {
    let Some(rec) = recorded else {
        eprintln!(
            "warning: {} records no training data (written by an older fsnn); resuming without checking that {} holds the same data",
            state_path.display(),
            data_dir.display()
        );
        return Ok(());
    };
    let diff = rec.differences(now);
    if diff.is_empty() {
        return Ok(());
    }
    Err(Error::file(
        state_path,
        format!(
            "was trained on other data than {} ({} differ); resume with the data the run started on, or start a new run",
            data_dir.display(),
            listed(&diff)
        ),
    ))
}

/// A one-line warning when `now` (test split only) differs from the test
/// data a model was trained and evaluated with; `None` when they agree or
/// nothing was recorded.
pub fn eval_data_warning(
    model_path: &Path,
    recorded: Option<&DataPrint>,
    now: &DataPrint,
    data_dir: &Path,
) -> Option<String> {
    let rec = recorded?;
    let diff: Vec<&str> = rec
        .differences(now)
        .into_iter()
        .filter(|d| !d.starts_with("train"))
        .collect();
    (!diff.is_empty()).then(|| {
        format!(
            "warning: the data in {} differ from those {} was trained on ({} differ); evaluating on them anyway",
            data_dir.display(),
            model_path.display(),
            listed(&diff)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_dotted_keys() {
        let text = "name = \"t\"\n[model]\nlayers = [4, 3]\nk = [2, 2]\nalpha = [1.0, 1.0]\n";
        let a = Config::from_toml_str(text, Path::new("t.toml")).unwrap();
        let mut b = a.clone();
        assert!(config_differences(&a, &b).is_empty());
        b.train.epochs += 1;
        b.seed += 1;
        b.data.train_limit = 7;
        assert_eq!(
            config_differences(&a, &b),
            vec!["data.train_limit", "seed", "train.epochs"]
        );
    }
}
