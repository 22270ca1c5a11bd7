//! Parallel runner: `jobs` worker threads pull run specs from a shared
//! queue and train each single-threaded; finished runs go through a channel
//! to the one thread that appends to `results.jsonl`. A worker skips a run
//! that another process (a shard sharing the directory) recorded meanwhile.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::progress::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::grid::RunSpec;
use super::results::{RunRecord, Writer};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::train::EpochStats;
use crate::train::job::{Observer, execute};

/// Train and test split shared by the workers.
pub type SharedData = Arc<(Dataset, Dataset)>;

/// What the workers report to the writer.
enum Msg {
    Done(Box<RunRecord>, String, f64),
    Failed(String, Error),
    /// Recorded by another process before this one started it.
    Elsewhere,
}

/// How the runs of [`run_all`] ended, besides being recorded here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Runs that failed (their errors were printed).
    pub failed: usize,
    /// Runs another process recorded first (not appended again).
    pub elsewhere: usize,
}

/// Live line of one worker.
struct LineObserver<'a> {
    pb: &'a ProgressBar,
    label: &'a str,
    epochs: usize,
    last: String,
    tick: Instant,
}

impl Observer for LineObserver<'_> {
    fn batch(&mut self, epoch: usize, done: usize, total: usize) {
        if self.tick.elapsed() < Duration::from_millis(200) && done < total {
            return;
        }
        self.tick = Instant::now();
        self.pb.set_message(format!(
            "{}  epoch {}/{}  batch {done}/{total}{}",
            self.label,
            epoch + 1,
            self.epochs,
            self.last
        ));
    }

    fn epoch(&mut self, s: &EpochStats) {
        self.last = format!(
            "  test {:.2}%  {:.1} spikes/img",
            s.test.accuracy, s.test.spikes_per_image
        );
    }
}

/// Short label of a run: `α/K`, the generic axis values, the seed.
pub fn run_label(spec: &RunSpec) -> String {
    let m = &spec.config.model;
    let mut s = super::alpha_k_label(&m.alpha, &m.k);
    for (k, v) in &spec.axes {
        s.push_str(&format!(" {}={}", super::short_key(k), super::value_str(v)));
    }
    s.push_str(&format!(" seed={}", spec.config.seed));
    s
}

/// Train one run (single-threaded), showing its progress on `pb`.
fn train_one(spec: &RunSpec, data: &HashMap<String, SharedData>, pb: &ProgressBar) -> Msg {
    let label = run_label(spec);
    pb.set_message(format!("{label}  starting"));
    let (train, test) = &*data[&super::data_key(&spec.config)];
    let mut obs = LineObserver {
        pb,
        label: &label,
        epochs: spec.config.train.epochs,
        last: String::new(),
        tick: Instant::now(),
    };
    let t0 = Instant::now();
    match execute(&spec.config, train, test, None, &mut obs, None) {
        Ok((summary, _, _)) => Msg::Done(
            Box::new(RunRecord {
                run_id: spec.run_id.clone(),
                point_id: spec.point_id.clone(),
                index: spec.index,
                axes: spec.axes.clone(),
                config: spec.config.clone(),
                summary,
            }),
            label,
            t0.elapsed().as_secs_f64(),
        ),
        Err(e) => Msg::Failed(label, e),
    }
}

/// Run `pending` on `jobs` threads, appending each finished run to
/// `writer`. `data` maps a data-section key to its loaded splits. Returns
/// the failed runs (their errors are printed) and those another process
/// recorded first.
pub fn run_all(
    pending: Vec<RunSpec>,
    jobs: usize,
    data: &HashMap<String, SharedData>,
    writer: &Mutex<Writer>,
    quiet: bool,
) -> Result<Tally> {
    let total = pending.len();
    let jobs = jobs.max(1).min(total.max(1));
    let tty = std::io::stderr().is_terminal() && !quiet;
    let mp = MultiProgress::with_draw_target(if tty {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let overall = mp.add(ProgressBar::new(total as u64));
    overall.set_style(
        ProgressStyle::with_template(
            "sweep [{bar:30}] {pos}/{len} runs  {elapsed_precise} elapsed  ETA {eta_precise}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    overall.enable_steady_tick(Duration::from_millis(500));
    let queue = Arc::new(Mutex::new(VecDeque::from(pending)));
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut tally = Tally::default();
    let mut write_err: Option<Error> = None;
    std::thread::scope(|scope| {
        for w in 0..jobs {
            let queue = Arc::clone(&queue);
            let tx = tx.clone();
            let pb = mp.add(ProgressBar::new_spinner());
            pb.set_style(
                ProgressStyle::with_template("  job {prefix}: {msg}").expect("valid template"),
            );
            pb.set_prefix(format!("{}", w + 1));
            scope.spawn(move || {
                loop {
                    let next = queue.lock().expect("queue lock").pop_front();
                    let Some(spec) = next else { break };
                    // An error here resurfaces at the append; train then.
                    let recorded = writer
                        .lock()
                        .expect("writer lock")
                        .is_recorded(&spec.run_id);
                    if recorded.unwrap_or(false) {
                        if tx.send(Msg::Elsewhere).is_err() {
                            break;
                        }
                        continue;
                    }
                    let msg = train_one(&spec, data, &pb);
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
                pb.finish_and_clear();
            });
        }
        drop(tx);
        let say = |line: String| {
            if tty {
                mp.println(line).ok();
            } else {
                // Ignore a closed stdout (e.g. piped into `head`).
                let _ = writeln!(std::io::stdout(), "{line}");
            }
        };
        // The writer: this thread, the only one touching the file.
        for msg in rx {
            match msg {
                Msg::Done(rec, label, secs) => {
                    let mut note = "";
                    if write_err.is_none() {
                        match writer.lock().expect("writer lock").append(&rec) {
                            Ok(true) => {}
                            Ok(false) => {
                                tally.elsewhere += 1;
                                note = "  (recorded by another process first)";
                            }
                            Err(e) => {
                                write_err = Some(e);
                                queue.lock().expect("queue lock").clear();
                            }
                        }
                    }
                    overall.inc(1);
                    let s = &rec.summary;
                    if !quiet {
                        say(format!(
                            "[{}/{total}] {label}  test {:.2}%  {:.1} spikes/img  {secs:.0}s{note}",
                            overall.position(),
                            s.test_acc,
                            s.spikes_per_image,
                        ));
                    }
                }
                Msg::Elsewhere => {
                    tally.elsewhere += 1;
                    overall.inc(1);
                }
                Msg::Failed(label, e) => {
                    tally.failed += 1;
                    overall.inc(1);
                    let line = format!("run {label} failed: {}", e.line());
                    if tty {
                        mp.println(&line).ok();
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
        }
    });
    overall.finish_and_clear();
    match write_err {
        Some(e) => Err(e),
        None => Ok(tally),
    }
}
