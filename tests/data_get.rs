//! `fsnn data get` against a small HTTP server on 127.0.0.1 that each test
//! starts itself: a good mirror, a missing file (404) and a mirror serving
//! corrupt bytes (the next mirror is tried), a connection dropped mid-file
//! (resumed with `Range`), a server that ignores `Range`, no mirror
//! reachable, and the lookup that then finds the downloaded files.
//!
//! The server serves small synthetic IDX `.gz` files whose SHA-256 digests
//! the tests inject with `FSNN_DATA_SHA256`; `FSNN_MIRRORS` replaces the
//! built-in mirrors, so only 127.0.0.1 is ever contacted. Every server
//! thread stops when its test drops it, or by itself after 30 s.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{assert_input_error, assert_ok, fsnn_cmd, gzip, idx_bytes, mnist_dir, s};
use fsnn::data::{DatasetKind, Split, load_split};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The four file names, in the order the tool fetches them.
const NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// One request the server saw.
#[derive(Debug, Clone)]
struct Req {
    /// Request path, e.g. `/good/train-images-idx3-ubyte.gz`.
    path: String,
    /// Start offset of a `Range: bytes=N-` header.
    range: Option<u64>,
    /// How many requests for the same path came before this one.
    nth: usize,
}

/// How the server answers one request.
enum Reply {
    /// The bytes, honouring `Range` (206 / 416).
    Bytes(Vec<u8>),
    /// The bytes with `200 OK`, whatever the `Range`.
    IgnoreRange(Vec<u8>),
    /// `200 OK` announcing all bytes, sending the first `k`, then closing.
    DropAfter(Vec<u8>, usize),
    /// A bodiless status.
    Status(u16),
}

type Handler = dyn Fn(&Req) -> Reply + Send + Sync;

/// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1.
struct Server {
    port: u16,
    log: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (Arc::clone(&log), Arc::clone(&stop));
        let handler: Box<Handler> = Box::new(handler);
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &*handler, &log2),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// Base URL of the mirror under `/prefix/`.
    fn url(&self, prefix: &str) -> String {
        format!("http://127.0.0.1:{}/{prefix}/", self.port)
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read one request from `stream`, log it and answer it.
fn serve(mut stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Req>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    let range = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let value = value.trim().strip_prefix("bytes=")?;
        (name.trim().eq_ignore_ascii_case("range"))
            .then(|| value.trim_end_matches('-').parse().ok())?
    });
    let req = {
        let mut log = log.lock().expect("log");
        let nth = log.iter().filter(|r| r.path == path).count();
        let req = Req { path, range, nth };
        log.push(req.clone());
        req
    };
    let _ = respond(&mut stream, &req, handler(&req));
}

fn respond(stream: &mut TcpStream, req: &Req, reply: Reply) -> std::io::Result<()> {
    let head = |status: &str, len: usize, extra: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n")
    };
    match reply {
        Reply::Bytes(b) => match req.range.map(|r| r as usize) {
            Some(r) if r >= b.len() => {
                let extra = format!("Content-Range: bytes */{}\r\n", b.len());
                stream.write_all(head("416 Range Not Satisfiable", 0, &extra).as_bytes())
            }
            Some(r) => {
                let extra = format!("Content-Range: bytes {r}-{}/{}\r\n", b.len() - 1, b.len());
                stream.write_all(head("206 Partial Content", b.len() - r, &extra).as_bytes())?;
                stream.write_all(&b[r..])
            }
            None => {
                stream.write_all(head("200 OK", b.len(), "").as_bytes())?;
                stream.write_all(&b)
            }
        },
        Reply::IgnoreRange(b) => {
            stream.write_all(head("200 OK", b.len(), "").as_bytes())?;
            stream.write_all(&b)
        }
        Reply::DropAfter(b, k) => {
            stream.write_all(head("200 OK", b.len(), "").as_bytes())?;
            stream.write_all(&b[..k])?;
            stream.flush()
        }
        Reply::Status(code) => stream.write_all(head(&format!("{code} Status"), 0, "").as_bytes()),
    }
}

/// Synthetic dataset files: `n_train`/`n_test` 28×28 noise images (so that
/// gzip barely shrinks them) and labels `i % 10`, gzipped, in [`NAMES`] order.
fn synthetic(n_train: u32, n_test: u32) -> Vec<Vec<u8>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: u32| -> Vec<u8> {
        (0..n * 784)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect()
    };
    let labels = |n: u32| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
    vec![
        gzip(&idx_bytes(&[n_train, 28, 28], &noise(n_train))),
        gzip(&idx_bytes(&[n_train], &labels(n_train))),
        gzip(&idx_bytes(&[n_test, 28, 28], &noise(n_test))),
        gzip(&idx_bytes(&[n_test], &labels(n_test))),
    ]
}

/// The `FSNN_DATA_SHA256` value naming the digests of `files`.
fn digests(files: &[Vec<u8>]) -> String {
    NAMES
        .iter()
        .zip(files)
        .map(|(n, b)| {
            let hex: String = Sha256::digest(b)
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect();
            format!("{n}={hex}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The file index of a request path ending in one of [`NAMES`].
fn file_index(path: &str) -> usize {
    NAMES
        .iter()
        .position(|n| path.ends_with(n))
        .expect("known file")
}

/// A server answering every request with the file it names, honouring `Range`.
fn serving(files: &[Vec<u8>]) -> Server {
    let served = files.to_vec();
    Server::start(move |r| Reply::Bytes(served[file_index(&r.path)].clone()))
}

/// `fsnn data get mnist --dir DIR` from `mirrors` with the digests of
/// `files`; asserts that it succeeded and that exactly `files` landed.
fn get_mnist(home: &Path, mirrors: &str, files: &[Vec<u8>], dir: &Path) -> Output {
    let o = data_get(
        home,
        mirrors,
        Some(&digests(files)),
        &["mnist", "--dir", s(dir)],
    );
    assert_ok(&o);
    assert_landed(dir, files);
    o
}

/// Assert that `needle` occurs `n` times in the standard output of `o`.
fn assert_stdout_count(o: &Output, needle: &str, n: usize) {
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.matches(needle).count(), n, "{stdout}");
}

/// `fsnn data get ARGS` with `mirrors` as `FSNN_MIRRORS`, `sha` as
/// `FSNN_DATA_SHA256`, no proxy and no `FSNN_DATA`, and `home` as the home
/// and XDG data directory.
fn data_get(home: &Path, mirrors: &str, sha: Option<&str>, args: &[&str]) -> Output {
    let mut c = fsnn_cmd();
    c.arg("data").arg("get").args(args).current_dir(home);
    for var in ["FSNN_DATA", "FSNN_DATA_SHA256", "ALL_PROXY", "all_proxy"] {
        c.env_remove(var);
    }
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
        c.env_remove(var);
    }
    c.env("FSNN_MIRRORS", mirrors)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("xdg"));
    if let Some(sha) = sha {
        c.env("FSNN_DATA_SHA256", sha);
    }
    c.output().expect("run fsnn")
}

/// Assert that `dir` holds exactly `files` under [`NAMES`] and no `.part`.
fn assert_landed(dir: &Path, files: &[Vec<u8>]) {
    for (name, bytes) in NAMES.iter().zip(files) {
        let got = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == *bytes, "{name} differs from the served file");
    }
    let parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "part"))
        .collect();
    assert!(parts.is_empty(), "leftover .part files: {parts:?}");
}

#[test]
fn good_mirror_lands_four_verified_files_and_a_rerun_fetches_nothing() {
    let files = synthetic(30, 10);
    let server = serving(&files);
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("mnist");
    let sha = digests(&files);
    let o = get_mnist(tmp.path(), &server.url("m"), &files, &dir);
    assert_eq!(server.requests().len(), 4);
    assert_stdout_count(&o, "SHA-256 verified", 4);

    let ds = load_split(&dir, DatasetKind::Mnist, Split::Train, None, None).expect("load");
    assert_eq!((ds.n, ds.side), (30, 28));

    let o = data_get(
        tmp.path(),
        &server.url("m"),
        Some(&sha),
        &["mnist", "--dir", s(&dir)],
    );
    assert_ok(&o);
    assert_eq!(server.requests().len(), 4, "a rerun fetched again");
    assert_stdout_count(&o, "present and verified", 4);
}

#[test]
fn corrupt_mirror_is_skipped_and_its_file_never_lands() {
    let files = synthetic(20, 10);
    let served = files.clone();
    let server = Server::start(move |r| {
        let mut b = served[file_index(&r.path)].clone();
        if r.path.starts_with("/gone/") {
            return Reply::Status(404);
        }
        if r.path.starts_with("/bad/") {
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
        }
        Reply::Bytes(b)
    });
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("d");
    let sha = digests(&files);
    let mirrors = format!(
        "{} {},{}",
        server.url("gone"),
        server.url("bad"),
        server.url("good")
    );
    get_mnist(tmp.path(), &mirrors, &files, &dir);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    let want: Vec<String> = NAMES
        .iter()
        .flat_map(|n| {
            [
                format!("/gone/{n}"),
                format!("/bad/{n}"),
                format!("/good/{n}"),
            ]
        })
        .collect();
    assert_eq!(paths, want);

    // Only corrupt mirrors: exit 2, one line, and no file (final or .part).
    let dir2 = tmp.path().join("d2");
    let o = data_get(
        tmp.path(),
        &server.url("bad"),
        Some(&sha),
        &["mnist", "--dir", s(&dir2)],
    );
    assert_input_error(&o, &["mnist", NAMES[0], "/bad/", "SHA-256"]);
    let left: Vec<_> = std::fs::read_dir(&dir2)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n != fsnn::data::download::DOWNLOAD_LOCK)
        .collect();
    assert!(left.is_empty(), "a corrupt download stayed: {left:?}");
}

#[test]
fn dropped_connection_is_resumed_with_range() {
    let files = synthetic(40, 10);
    let served = files.clone();
    let half = files[0].len() / 2;
    let server = Server::start(move |r| {
        let b = served[file_index(&r.path)].clone();
        if file_index(&r.path) == 0 && r.nth == 0 {
            Reply::DropAfter(b, half)
        } else {
            Reply::Bytes(b)
        }
    });
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("d");
    let o = get_mnist(tmp.path(), &server.url("m"), &files, &dir);
    let reqs = server.requests();
    let images: Vec<Option<u64>> = reqs
        .iter()
        .filter(|r| r.path.ends_with(NAMES[0]))
        .map(|r| r.range)
        .collect();
    assert_eq!(images, vec![None, Some(half as u64)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("resuming"));
}

#[test]
fn a_rerun_resumes_a_kept_part_file() {
    let files = synthetic(40, 10);
    let server = serving(&files);
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).expect("mkdir");
    let k = files[0].len() / 3;
    std::fs::write(dir.join(format!("{}.part", NAMES[0])), &files[0][..k]).expect("part");
    get_mnist(tmp.path(), &server.url("m"), &files, &dir);
    let first = &server.requests()[0];
    assert_eq!(
        (first.path.as_str(), first.range),
        ("/m/train-images-idx3-ubyte.gz", Some(k as u64))
    );
    assert_eq!(server.requests().len(), 4);
}

/// A kept `.part` whose bytes are wrong is fetched again from zero: after a
/// `206` (the train images, 100 wrong bytes) or a `416` (the train labels,
/// a `.part` longer than the file) the check fails and the mirror is asked
/// once more without `Range`; a server that ignores `Range` sends the whole
/// file with `200`, which replaces the `.part` at once.
#[test]
fn a_bad_kept_prefix_is_refetched_and_a_server_ignoring_range_restarts_cleanly() {
    let files = synthetic(20, 10);
    let b = files.clone();
    let honours = serving(&files);
    let ignores = Server::start(move |r| Reply::IgnoreRange(b[file_index(&r.path)].clone()));
    let long = files[1].len() as u64 + 10;
    for (server, again) in [(&honours, true), (&ignores, false)] {
        let tmp = TempDir::new().expect("tmp");
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).expect("mkdir");
        for (i, len) in [(0, 100), (1, long)] {
            let part = dir.join(format!("{}.part", NAMES[i]));
            std::fs::write(part, vec![0xEEu8; len as usize]).expect("part");
        }
        get_mnist(tmp.path(), &server.url("m"), &files, &dir);
        for (i, len) in [(0, 100), (1, long)] {
            let ranges: Vec<Option<u64>> = server
                .requests()
                .iter()
                .filter(|r| r.path.ends_with(NAMES[i]))
                .map(|r| r.range)
                .collect();
            let want = if again {
                vec![Some(len), None]
            } else {
                vec![Some(len)]
            };
            assert_eq!(ranges, want, "{}", NAMES[i]);
        }
    }
}

#[test]
fn no_mirror_reachable_exits_2_with_one_line() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("d");
    let mirrors = format!("http://127.0.0.1:{closed}/a/");
    let flag = format!("http://127.0.0.1:{closed}/b");
    let o = data_get(
        tmp.path(),
        &mirrors,
        None,
        &["kmnist", "--dir", s(&dir), "--mirror", &flag],
    );
    assert_input_error(
        &o,
        &[
            "kmnist",
            NAMES[0],
            "2 mirror(s)",
            &format!("127.0.0.1:{closed}/a/"),
        ],
    );
    assert!(!dir.join(NAMES[0]).exists());
}

#[test]
fn bad_arguments_exit_2() {
    let tmp = TempDir::new().expect("tmp");
    let o = data_get(tmp.path(), "http://127.0.0.1:9/", None, &["cifar"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kmnist"));
    let o = data_get(
        tmp.path(),
        "http://127.0.0.1:9/",
        None,
        &["mnist", "--mirror", "ftp://x/"],
    );
    assert_input_error(&o, &["--mirror", "ftp://x/"]);
    let o = data_get(tmp.path(), "file:///x", None, &["mnist"]);
    assert_input_error(&o, &["FSNN_MIRRORS", "file:///x"]);
    let o = data_get(
        tmp.path(),
        "http://127.0.0.1:9/",
        Some("train-images-idx3-ubyte.gz=12"),
        &["mnist"],
    );
    assert_input_error(&o, &["FSNN_DATA_SHA256", "64 hex digits"]);
}

/// The built-in MNIST digests are those of the original files: with them in
/// place nothing is fetched (the only mirror is a closed port).
#[test]
fn builtin_mnist_digests_match_the_original_files() {
    if !common::require_data(
        &mnist_dir(),
        "builtin_mnist_digests_match_the_original_files",
    ) {
        return;
    }
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("mnist");
    std::fs::create_dir(&dir).expect("mkdir");
    for n in NAMES {
        std::fs::copy(mnist_dir().join(n), dir.join(n)).expect("copy");
    }
    let o = data_get(
        tmp.path(),
        "http://127.0.0.1:9/",
        None,
        &["mnist", "--dir", s(&dir)],
    );
    assert_ok(&o);
    assert_stdout_count(&o, "present and verified", 4);
}

/// Without `--dir` the files go to the platform data directory, which
/// `fsnn train` then searches; before that, `fsnn train` names the command.
#[test]
fn platform_directory_is_used_and_searched() {
    let files = synthetic(30, 10);
    let server = serving(&files);
    let tmp = TempDir::new().expect("tmp");
    let config = tmp.path().join("k.toml");
    std::fs::write(&config, TINY_KMNIST).expect("config");
    let train = |out: &str| {
        let mut c = fsnn_cmd();
        c.args(["train", "--quiet", "--config", s(&config), "--out"])
            .arg(tmp.path().join(out))
            .current_dir(tmp.path())
            .env_remove("FSNN_DATA")
            .env("HOME", tmp.path())
            .env("XDG_DATA_HOME", tmp.path().join("xdg"));
        c.output().expect("run fsnn")
    };
    let o = train("before");
    assert_input_error(&o, &["`fsnn data get kmnist`", "xdg/fsnn/kmnist"]);

    let o = data_get(
        tmp.path(),
        &server.url("k"),
        Some(&digests(&files)),
        &["kmnist", "-q"],
    );
    assert_ok(&o);
    assert_landed(&tmp.path().join("xdg/fsnn/kmnist"), &files);
    assert_ok(&train("after"));
    assert!(tmp.path().join("after/summary.json").is_file());
}

/// A tiny KMNIST network: 30 training and 10 test images, one epoch.
const TINY_KMNIST: &str = r#"name = "tiny-kmnist"
seed = 1

[data]
dataset = "kmnist"
resize = 7
train_limit = 30
test_limit = 10

[model]
layers = [49, 8, 10]
k = [4, 3]
alpha = [1.0, 2.0]
variant = "fs"
surrogate = { kind = "rectangular", width = 0.5 }

[train]
epochs = 1
batch_size = 10
loss = "mse"
lr = 1e-3
"#;

#[test]
fn a_second_download_into_a_busy_directory_exits_2_naming_the_holder() {
    let files = synthetic(30, 10);
    let server = serving(&files);
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("mnist");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // This test process plays the first downloader.
    let held = fsnn::outdir::DirLock::exclusive_on(&dir, fsnn::data::download::DOWNLOAD_LOCK)
        .expect("lock");
    let sha = digests(&files);
    let o = data_get(
        tmp.path(),
        &server.url("m"),
        Some(&sha),
        &["mnist", "--dir", s(&dir)],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(server.requests().is_empty(), "nothing is fetched");
    drop(held);
    get_mnist(tmp.path(), &server.url("m"), &files, &dir);
}
