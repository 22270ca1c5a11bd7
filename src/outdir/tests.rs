//! Unit tests of the output-directory rules.

use super::*;

fn touch(dir: &Path, name: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, name).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const FRESH: Claim = Claim::Fresh { overwrite: false };
const OVERWRITE: Claim = Claim::Fresh { overwrite: true };

#[test]
fn missing_or_empty_directory_is_claimed_and_locked() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("a/b");
    let held = claim(&d, Kind::Run, FRESH).unwrap();
    assert_eq!(names(&d), vec![LOCK_FILE.to_string()]);
    let err = claim(&d, Kind::Run, FRESH).unwrap_err().to_string();
    assert!(err.contains("another fsnn process (pid "), "{err}");
    drop(held);
    // Only the lock file: still empty.
    claim(&d, Kind::Run, FRESH).unwrap();
}

#[test]
fn earlier_run_is_refused_then_overwritten() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for f in ["config.toml", "summary.json", "state.safetensors"] {
        touch(d, f);
    }
    let err = claim(d, Kind::Run, FRESH).unwrap_err().to_string();
    assert!(err.contains("already holds a training run"), "{err}");
    assert!(
        err.contains("--overwrite") && err.contains("--resume"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    assert_eq!(names(d).len(), 4);
    // Resuming does not look at the contents.
    drop(claim(d, Kind::Run, Claim::Resume).unwrap());
    let _held = claim(d, Kind::Run, OVERWRITE).unwrap();
    assert_eq!(names(d), vec![LOCK_FILE.to_string()]);
}

#[test]
fn foreign_files_are_never_removed() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    touch(d, "summary.json");
    touch(d, "notes.txt");
    for how in [FRESH, OVERWRITE] {
        let err = claim(d, Kind::Run, how).unwrap_err().to_string();
        assert!(
            err.contains("notes.txt") && err.contains("does not write"),
            "{err}"
        );
    }
    assert_eq!(names(d), vec![LOCK_FILE, "notes.txt", "summary.json"]);
    // A fine-tuning run inside a conversion is checked too.
    let c = t.path().join("conv");
    touch(&c, "convert.json");
    touch(&c, "finetune/metrics.csv");
    touch(&c, "finetune/mine.py");
    let err = claim(&c, Kind::Convert, OVERWRITE).unwrap_err().to_string();
    assert!(err.contains("finetune/mine.py"), "{err}");
    std::fs::remove_file(c.join("finetune/mine.py")).unwrap();
    drop(claim(&c, Kind::Convert, OVERWRITE).unwrap());
    assert_eq!(names(&c), vec![LOCK_FILE.to_string()]);
}

#[test]
fn stale_temporaries_go_only_when_alone_and_only_fsnn_ones() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    touch(d, ".fsnn-tmp-abc123");
    let _held = claim(d, Kind::Sweep, FRESH).unwrap();
    assert!(!d.join(".fsnn-tmp-abc123").exists());
    // A second sharer is not alone: a live writer's temporary stays.
    touch(d, ".fsnn-tmp-live");
    let _second = claim(d, Kind::Sweep, FRESH).unwrap();
    assert!(d.join(".fsnn-tmp-live").exists());
    // A file of a similar look is not fsnn's: refused, and left alone.
    touch(d, ".tmp-user-file");
    let err = claim(d, Kind::Sweep, FRESH).unwrap_err().to_string();
    assert!(err.contains(".tmp-user-file"), "{err}");
    assert!(d.join(".tmp-user-file").exists());
}

#[test]
fn report_accepts_sweep_and_slurm_files_but_not_others() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for f in [
        "results.jsonl",
        "slurm.json",
        "logs/1_0.out",
        "shard-0/results.jsonl",
        "report.md",
    ] {
        touch(d, f);
    }
    drop(claim(d, Kind::Report, FRESH).unwrap());
    assert!(d.join("report.md").exists());
    touch(d, "paper.tex");
    let err = claim(d, Kind::Report, FRESH).unwrap_err().to_string();
    assert!(err.contains("paper.tex"), "{err}");
    // A Slurm task's shard directory, with the task's notes, is a sweep's.
    drop(claim(&d.join("shard-0"), Kind::Sweep, FRESH).unwrap());
    touch(d, "shard-1/task.txt");
    drop(claim(&d.join("shard-1"), Kind::Sweep, FRESH).unwrap());
    // A sweep does not take a Slurm directory for its own.
    std::fs::remove_file(d.join("paper.tex")).unwrap();
    let err = claim(d, Kind::Sweep, FRESH).unwrap_err().to_string();
    assert!(err.contains("logs"), "{err}");
}

#[test]
fn overwrite_of_a_shared_sweep_directory_waits_for_no_one() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    touch(d, "results.jsonl");
    let held = claim(d, Kind::Sweep, FRESH).unwrap();
    let err = claim(d, Kind::Sweep, OVERWRITE).unwrap_err().to_string();
    assert!(err.contains("--overwrite"), "{err}");
    assert!(d.join("results.jsonl").exists());
    drop(held);
    drop(claim(d, Kind::Sweep, OVERWRITE).unwrap());
    assert!(!d.join("results.jsonl").exists());
}
