//! `Observer::stop`: a job stops after the batch it is asked to, with
//! `Error::Interrupted`, leaving the state of its last finished epoch, from
//! which it resumes to the numbers of an uninterrupted run (the Python
//! API's Ctrl-C).

use std::path::Path;

use fsnn::checkpoint::state::{self, STATE_FILE};
use fsnn::data::Dataset;
use fsnn::train::job::{Observer, Silent, execute};
use fsnn::{Config, Error};

/// 40 synthetic 4×4 images, 10 classes.
fn data() -> Dataset {
    let n = 40;
    let x = (0..n * 16)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    let y = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset {
        x,
        y,
        n,
        dim: 16,
        side: 4,
    }
}

fn config() -> Config {
    let text = "name = \"stop\"\nseed = 5\n[data]\nresize = 4\n\
                [model]\nlayers = [16, 8, 10]\nneuron = \"lif\"\n\
                [train]\nepochs = 3\nbatch_size = 10\nloss = \"mse\"\ncheckpoint_every = 1\n";
    let cfg = Config::from_toml_str(text, Path::new("stop.toml")).unwrap();
    cfg.validate().unwrap();
    cfg
}

/// Stops after batch `at.1` (1-based) of epoch `at.0` (0-based).
struct StopAt {
    at: (usize, usize),
    seen: Vec<(usize, usize, usize)>,
}

impl Observer for StopAt {
    fn batch(&mut self, epoch: usize, done: usize, total: usize) {
        self.seen.push((epoch, done, total));
    }
    fn stop(&mut self) -> bool {
        self.seen.last().map(|&(e, d, _)| (e, d)) == Some(self.at)
    }
}

#[test]
fn a_stopped_job_keeps_its_last_epoch_and_resumes_to_the_same_model() {
    let (cfg, d) = (config(), data());
    let dir = tempfile::tempdir().unwrap();
    let mut obs = StopAt {
        at: (1, 2),
        seen: Vec::new(),
    };
    let Err(err) = execute(&cfg, &d, &d, Some(dir.path()), &mut obs, None) else {
        panic!("the job did not stop");
    };
    assert!(matches!(err, Error::Interrupted(_)), "{err}");
    assert_eq!(err.line(), "interrupted: during epoch 2 after batch 2/4");
    assert_eq!(obs.seen.len(), 4 + 2, "no batch after the stop");
    assert!(!dir.path().join("model.safetensors").exists());
    let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "header and epoch 1");

    let (trainer, progress) = state::load(&dir.path().join(STATE_FILE)).unwrap();
    assert_eq!(trainer.epoch, 1);
    let resumed = execute(&cfg, &d, &d, None, &mut Silent, Some((trainer, progress))).unwrap();
    let straight = execute(&cfg, &d, &d, None, &mut Silent, None).unwrap();
    assert_eq!(
        fsnn::checkpoint::to_safetensors(&resumed.1.model, &cfg),
        fsnn::checkpoint::to_safetensors(&straight.1.model, &cfg)
    );
    assert_eq!(resumed.0.test_acc, straight.0.test_acc);
}

#[test]
fn an_observer_that_never_stops_changes_nothing() {
    let (cfg, d) = (config(), data());
    let mut obs = StopAt {
        at: (9, 9),
        seen: Vec::new(),
    };
    let watched = execute(&cfg, &d, &d, None, &mut obs, None).unwrap();
    let silent = execute(&cfg, &d, &d, None, &mut Silent, None).unwrap();
    assert_eq!(obs.seen.len(), 3 * 4);
    assert_eq!(
        fsnn::checkpoint::to_safetensors(&watched.1.model, &cfg),
        fsnn::checkpoint::to_safetensors(&silent.1.model, &cfg)
    );
}
