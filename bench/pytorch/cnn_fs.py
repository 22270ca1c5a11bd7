#!/usr/bin/env python3
"""PyTorch baseline for fsnn's MNIST CNN training step (eager and torch.compile).

The network, neuron and training step are those of
``configs/mnist-cnn-fs-stbp.toml`` (docs/cnn.md), so that a training epoch of
fsnn and of PyTorch can be timed on the same machine:

    pixels in [0, 1] (28x28)
    -> FS coding (K=4, alpha=1)                        input coding, no gradient
    -> conv 32 3x3 pad 1 -> FS (K=4, alpha=2) -> avgpool 2
    -> conv 32 3x3 pad 1 -> FS (K=4, alpha=2) -> avgpool 2
    -> fc 128 -> FS (K=3, alpha=2)
    -> fc 10                                            class score (no spikes)
    cross-entropy (mean over the batch), Adam lr 1e-3, batch 100

How it mirrors fsnn (src/neuron/fs.rs, fs_kernels.rs, surrogate.rs):

* FS neuron, steps t = 1..K (0-based index ``t - 1`` in the code), binary
  tables ``T(t) = h(t) = d(t) = alpha * 2**-t``::

      v(1) = x;  z(t) = [v(t) - T(t) > 0]  (strict);  v(t+1) = v(t) - h(t) z(t)
      out = sum_t d(t) z(t)

* STBP surrogate: ``dz/du = 1 if |u| < a else 0`` with ``u = v(t) - T(t)`` and
  ``a = 0.5`` (peak 1, not normalised by 1/(2a); open window, exactly as
  ``surrogate::rectangular``).  The gradient flows through the whole K-step
  recurrence including the reset path (full BPTT), whose closed form is::

      d out / dx = sum_t d(t) s_t prod_{r<t} (1 - h(r) s_r)

  Two implementations of the same derivative are provided (``--fs-impl``):

  ``closed``  a custom autograd.Function whose forward runs the K steps once
              and stores ``d out/dx`` (fsnn's ``forward_train``); its
              backward is one multiply (fsnn's FS backward ``g * deriv``).
  ``bptt``    the K steps written as ordinary differentiable ops with a
              Heaviside Function whose backward is the rectangular window;
              autograd (or AOTAutograd under torch.compile) unrolls the
              recurrence.  Same derivative, up to float rounding order.

  ``auto`` (default) uses ``closed``: in eager mode it is the faster (one
  pass of in-place ops per step forward, one multiply backward, against an
  autograd graph of K steps); under torch.compile both fuse into one kernel
  per FS layer and direction and time alike (``--fs-impl bptt`` times the
  other formulation).

* The input coding runs the forward only (fsnn computes no gradient for the
  pixels, and its first conv computes no input gradient; here the input
  tensor does not require grad, so PyTorch skips that gradient too).  It is
  part of every timed step, as in fsnn, where it is applied inside the
  forward pass.
* Layers use PyTorch's default initialisation, which fsnn copies
  (``U(+-1/sqrt(fan_in))`` for weights and biases).  fsnn keeps activations
  in NHWC and flattens in (h, w, c) order, PyTorch in (c, h, w): a fixed
  permutation of fc1's input columns, the same function class.
* Adam: beta = (0.9, 0.999), eps = 1e-8, bias-corrected exactly as
  ``src/train/adam.rs`` (PyTorch's formula).  The fused CPU kernel is used.
* A timed training step is: gather a shuffled batch, forward (input coding
  included), cross-entropy, backward, Adam step, zero_grad.  fsnn's step also
  counts spikes and training accuracy; this one accumulates loss and
  training accuracy (cheap) but does not count spikes.

``--selftest`` checks the neuron against the independent float64 reference
values ``tests/data/fs_neuron.json`` (forward output, spike counts and
surrogate d out/dx, both FS variants, both implementations) and checks that
both implementations -- and, with ``--mode compile``, their compiled
versions -- give the same loss and parameter gradients on one batch.

Usage examples (from the repository root)::

    python bench/pytorch/cnn_fs.py --selftest
    python bench/pytorch/cnn_fs.py --mode eager --threads 1
    python bench/pytorch/cnn_fs.py --mode compile --threads 2 --data /path/to/mnist
    python bench/pytorch/cnn_fs.py --check-epoch --data /path/to/mnist
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import struct
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

# The CPU-only use of the CUDA wheel needs no NumPy; silence the import note.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

EPOCH_IMAGES = 60_000
BATCH = 100
LR = 1e-3
SURROGATE_WIDTH = 0.5
# (K, alpha) of the four FS codings: input, conv1, conv2, fc1.
CODINGS = [(4, 1.0), (4, 2.0), (4, 2.0), (3, 2.0)]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VECTORS = REPO_ROOT / "tests" / "data" / "fs_neuron.json"


# --------------------------------------------------------------------------
# FS neuron
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Steps:
    """Per-step constants of one FS coding (fsnn's ``fs_kernels::Steps``).

    ``thr[t]`` threshold T, ``val[t]`` value a spike adds to the output
    (d(t); 0.5 for the legacy half-spike variant), ``rst[t]`` reset per spike
    (h(t); 0.5*h(t) for half-spike), ``width`` the surrogate window ``a``.
    Index ``t`` is 0-based for step t+1.
    """

    thr: tuple[float, ...]
    val: tuple[float, ...]
    rst: tuple[float, ...]
    width: float = SURROGATE_WIDTH

    @property
    def k(self) -> int:
        return len(self.thr)

    @staticmethod
    def binary(k: int, alpha: float, width: float = SURROGATE_WIDTH) -> "Steps":
        """``T(t) = h(t) = d(t) = alpha * 2**-t``, t = 1..K (rounded to f32)."""
        v = tuple(_f32(alpha * 0.5**t) for t in range(1, k + 1))
        return Steps(v, v, v, width)

    @staticmethod
    def from_tables(T, h, d, variant="fs", width=SURROGATE_WIDTH) -> "Steps":
        amp = {"fs": 1.0, "half-spike": 0.5}[variant]
        val = tuple(_f32(x) for x in d) if variant == "fs" else (0.5,) * len(T)
        return Steps(
            tuple(_f32(x) for x in T),
            val,
            tuple(_f32(amp * x) for x in h),
            _f32(width),
        )


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def fs_forward(x: torch.Tensor, st: Steps) -> torch.Tensor:
    """FS output ``sum_t d(t) z(t)``, no gradient (fsnn's ``forward``)."""
    v = x.clone()
    out = torch.zeros_like(x)
    z = torch.empty_like(x)
    for t in range(st.k):
        torch.gt(v, st.thr[t], out=z)  # v - T > 0 exactly when v > T (IEEE)
        out.add_(z, alpha=st.val[t])
        if t + 1 < st.k:
            v.add_(z, alpha=-st.rst[t])
    return out


def fs_spikes(x: torch.Tensor, st: Steps) -> torch.Tensor:
    """Per-element spike count ``sum_t z(t)``."""
    v = x.clone()
    n = torch.zeros_like(x)
    for t in range(st.k):
        z = (v > st.thr[t]).to(x.dtype)
        n.add_(z)
        v.add_(z, alpha=-st.rst[t])
    return n


def fs_forward_train(x: torch.Tensor, st: Steps) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and surrogate derivative d out/dx in one pass over the K steps.

    Mirrors ``fs_kernels::train_lanes``: with ``p`` the running product
    ``prod_{r<t} (1 - h(r) s_r)``, ``acc += d(t) s_t p;  p *= 1 - h(t) s_t``
    (written ``p -= h(t) s_t p``, one pass instead of three; for binary
    tables with a power-of-two alpha every value involved is a short dyadic
    fraction, so both orders give the same bits).  The masks are written
    as floats into preallocated buffers: in eager mode this is about twice
    as fast as boolean temporaries.
    """
    v = x.clone()
    out = torch.zeros_like(x)
    acc = torch.zeros_like(x)
    p = torch.ones_like(x)
    u = torch.empty_like(x)
    z = torch.empty_like(x)
    s = torch.empty_like(x)
    last = st.k - 1
    for t in range(st.k):
        torch.sub(v, st.thr[t], out=u)
        torch.gt(u, 0.0, out=z)
        torch.lt(u.abs_(), st.width, out=s)
        out.add_(z, alpha=st.val[t])
        acc.addcmul_(p, s, value=st.val[t])
        if t < last:
            p.addcmul_(p, s, value=-st.rst[t])
            v.add_(z, alpha=-st.rst[t])
    return out, acc


class FSClosed(torch.autograd.Function):
    """FS neuron with the closed-form BPTT derivative stored by the forward."""

    @staticmethod
    def forward(ctx, x, st: Steps):
        out, deriv = fs_forward_train(x, st)
        ctx.save_for_backward(deriv)
        return out

    @staticmethod
    def backward(ctx, g):
        (deriv,) = ctx.saved_tensors
        return g * deriv, None


class Heaviside(torch.autograd.Function):
    """``z = [u > 0]``; backward ``g * [|u| < a]`` (STBP rectangular window)."""

    @staticmethod
    def forward(ctx, u, width: float):
        ctx.save_for_backward(u)
        ctx.width = width
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * (u.abs() < ctx.width).to(g.dtype), None


def fs_bptt(x: torch.Tensor, st: Steps) -> torch.Tensor:
    """FS neuron as K differentiable steps; autograd does the BPTT."""
    v = x
    out = None
    for t in range(st.k):
        z = Heaviside.apply(v - st.thr[t], st.width)
        out = z * st.val[t] if out is None else out + z * st.val[t]
        if t + 1 < st.k:
            v = v - z * st.rst[t]
    return out


class FS(nn.Module):
    def __init__(self, k: int, alpha: float, impl: str):
        super().__init__()
        self.steps = Steps.binary(k, alpha)
        self.impl = impl

    def forward(self, x):
        if self.impl == "closed":
            return FSClosed.apply(x, self.steps)
        return fs_bptt(x, self.steps)

    def extra_repr(self):
        return f"K={self.steps.k}, thr={self.steps.thr}, impl={self.impl}"


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------


class FsCnn(nn.Module):
    """The CNN of configs/mnist-cnn-fs-stbp.toml."""

    def __init__(self, impl: str = "closed"):
        super().__init__()
        self.input_steps = Steps.binary(*CODINGS[0])
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.fs1 = FS(*CODINGS[1], impl)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fs2 = FS(*CODINGS[2], impl)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fs3 = FS(*CODINGS[3], impl)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, pixels):
        x = fs_forward(pixels, self.input_steps)
        x = F.avg_pool2d(self.fs1(self.conv1(x)), 2)
        x = F.avg_pool2d(self.fs2(self.conv2(x)), 2)
        x = self.fs3(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=LR, foreach=True)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def _open_idx(path: Path) -> bytes:
    for p in (path, path.with_name(path.name + ".gz")):
        if p.exists():
            opener = gzip.open if p.suffix == ".gz" else open
            with opener(p, "rb") as f:
                return f.read()
    raise FileNotFoundError(f"{path} (or {path.name}.gz) not found")


def load_idx_images(path: Path) -> torch.Tensor:
    raw = _open_idx(path)
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX image file (magic {magic})")
    px = torch.frombuffer(bytearray(raw[16 : 16 + n * rows * cols]), dtype=torch.uint8)
    return (px.to(torch.float32) / 255.0).view(n, 1, rows, cols)


def load_idx_labels(path: Path) -> torch.Tensor:
    raw = _open_idx(path)
    magic, n = struct.unpack(">II", raw[:8])
    if magic != 2049:
        raise ValueError(f"{path}: not an IDX label file (magic {magic})")
    return torch.frombuffer(bytearray(raw[8 : 8 + n]), dtype=torch.uint8).to(torch.int64)


def load_mnist(data_dir: Path, split: str):
    prefix = "train" if split == "train" else "t10k"
    x = load_idx_images(data_dir / f"{prefix}-images-idx3-ubyte")
    y = load_idx_labels(data_dir / f"{prefix}-labels-idx1-ubyte")
    return x, y


def synthetic(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.arange(n) % 10
    return x, y


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


class Trainer:
    def __init__(self, mode: str, impl: str, compile_mode: str, seed: int):
        torch.manual_seed(seed)
        self.model = FsCnn(impl)
        self.opt = make_optimizer(self.model)
        self.gen = torch.Generator().manual_seed(seed)

        def loss_fn(x, y):
            out = self.model(x)
            loss = F.cross_entropy(out, y)
            hits = (out.argmax(1) == y).sum()
            return loss, hits

        if mode == "compile":
            loss_fn = torch.compile(loss_fn, mode=compile_mode, dynamic=False)
        self.loss_fn = loss_fn

    def step(self, x, y):
        loss, hits = self.loss_fn(x, y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach(), hits

    def epoch(self, x: torch.Tensor, y: torch.Tensor, batches: int | None = None):
        """One shuffled pass over (x, y) in batches of 100 (the first
        ``batches`` only, if given); returns (mean loss, train accuracy %)."""
        order = torch.randperm(x.shape[0], generator=self.gen)
        nb = x.shape[0] // BATCH if batches is None else batches
        loss_sum = torch.zeros(())
        hits = torch.zeros((), dtype=torch.int64)
        for b in range(nb):
            idx = order[b * BATCH : (b + 1) * BATCH]
            loss, h = self.step(x[idx], y[idx])
            loss_sum += loss
            hits += h
        return loss_sum.item() / max(nb, 1), 100.0 * hits.item() / max(nb * BATCH, 1)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.model.eval()
        hits = 0
        for b in range(0, x.shape[0], BATCH):
            out = self.model(x[b : b + BATCH])
            hits += (out.argmax(1) == y[b : b + BATCH]).sum().item()
        self.model.train()
        return 100.0 * hits / x.shape[0]


def get_data(args, n_train: int):
    if args.data:
        x, y = load_mnist(Path(args.data), "train")
        return x[:n_train], y[:n_train], f"MNIST 28x28 from {args.data}"
    x, y = synthetic(n_train)
    return x, y, "synthetic uniform [0,1) 28x28 (no --data)"


def resolve_impl(args) -> str:
    return "closed" if args.fs_impl == "auto" else args.fs_impl


def run_bench(args) -> dict:
    images = max(BATCH, args.images // BATCH * BATCH)
    impl = resolve_impl(args)
    x, y, origin = get_data(args, images)
    if x.shape[0] < images:
        raise SystemExit(f"only {x.shape[0]} training images available")
    tr = Trainer(args.mode, impl, args.compile_mode, args.seed)

    t0 = time.perf_counter()
    if args.warmup_batches > 0:
        reps = math.ceil(args.warmup_batches * BATCH / images)
        left = args.warmup_batches
        for _ in range(reps):
            nb = min(left, images // BATCH)
            tr.epoch(x, y, nb)
            left -= nb
    warmup_s = time.perf_counter() - t0

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        tr.epoch(x, y)
        times.append(time.perf_counter() - t0)
    best = min(times)
    scale = EPOCH_IMAGES / images
    return {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "mode": args.mode,
        "compile_mode": args.compile_mode if args.mode == "compile" else None,
        "fs_impl": impl,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "images": images,
        "batch_size": BATCH,
        "data": origin,
        "warmup_batches": args.warmup_batches,
        "warmup_seconds": warmup_s,
        "repeats": args.repeats,
        "repeat_seconds": times,
        "epoch_seconds": best * scale,
        "epoch_seconds_all": [t * scale for t in times],
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def run_check_epoch(args) -> dict:
    if not args.data:
        raise SystemExit("--check-epoch needs --data DIR (MNIST IDX files)")
    impl = resolve_impl(args)
    x, y = load_mnist(Path(args.data), "train")
    xt, yt = load_mnist(Path(args.data), "test")
    n = EPOCH_IMAGES if args.images_given is None else args.images_given
    n = max(BATCH, min(n, x.shape[0]) // BATCH * BATCH)
    nt = min(args.test_images, xt.shape[0])
    tr = Trainer(args.mode, impl, args.compile_mode, args.seed)
    t0 = time.perf_counter()
    loss, acc = tr.epoch(x[:n], y[:n])
    train_s = time.perf_counter() - t0
    test_acc = tr.evaluate(xt[:nt], yt[:nt])
    return {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "mode": args.mode,
        "fs_impl": impl,
        "threads": torch.get_num_threads(),
        "train_images": n,
        "test_images": nt,
        "train_loss": loss,
        "train_accuracy": acc,
        "test_accuracy": test_acc,
        "train_seconds": train_s,
    }


# --------------------------------------------------------------------------
# Self-test against the float64 reference values
# --------------------------------------------------------------------------


def check_vectors(path: Path) -> tuple[int, int, int]:
    """FS forward, spike counts and surrogate d out/dx of every
    implementation against the float64 reference; returns
    (cases, values compared, failing groups)."""
    cases = json.loads(path.read_text())["cases"]
    fails = checked = 0
    for c in cases:
        assert c["surrogate"]["kind"] == "rectangular"
        st = Steps.from_tables(c["T"], c["h"], c["d"], c["variant"], c["surrogate"]["a"])
        label = f"{c['variant']} K={c['K']} alpha={c['alpha']}"
        if c["variant"] == "fs" and c["T"] == c["h"] == c["d"]:
            if Steps.binary(c["K"], c["alpha"], st.width) != st:
                print(f"  FAIL {label}: tables differ from Steps.binary")
                fails += 1
        x = torch.tensor(c["x"], dtype=torch.float64).to(torch.float32)
        want = {k: torch.tensor(c[k], dtype=torch.float64) for k in ("out", "spikes", "dout_dx")}
        out_t, deriv_t = fs_forward_train(x, st)
        got = {
            "fs_forward": (fs_forward(x, st), "out"),
            "fs_spikes": (fs_spikes(x, st), "spikes"),
            "fs_forward_train out": (out_t, "out"),
            "fs_forward_train deriv": (deriv_t, "dout_dx"),
        }
        for name, fn in (("closed", FSClosed.apply), ("bptt", fs_bptt)):
            xg = x.clone().requires_grad_(True)
            out = fn(xg, st)
            (gx,) = torch.autograd.grad(out.sum(), xg)
            got[f"{name} out"] = (out.detach(), "out")
            got[f"{name} autograd d out/dx"] = (gx, "dout_dx")
        for what, (g, key) in got.items():
            ok = (g.double() - want[key]).abs() <= 1e-5 * (1.0 + want[key].abs())
            checked += ok.numel()
            if not bool(ok.all()):
                fails += 1
                i = int((~ok).nonzero()[0])
                print(f"  FAIL {label} {what}: x={c['x'][i]} got {g[i].item()} want {want[key][i].item()}")
    return len(cases), checked, fails


def network_grads(impl: str, mode: str, x, y):
    torch.manual_seed(1)
    model = FsCnn(impl)

    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)

    if mode == "compile":
        loss_fn = torch.compile(loss_fn, dynamic=False)
    loss = loss_fn(x, y)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


def check_network(mode: str) -> int:
    """Loss and parameter gradients of one batch: bptt vs closed (eager),
    and compiled vs eager for both under --mode compile."""
    x, y = synthetic(BATCH, seed=3)
    ref_loss, ref = network_grads("closed", "eager", x, y)
    runs = [("bptt", "eager")]
    if mode == "compile":
        runs += [("closed", "compile"), ("bptt", "compile")]
    fails = 0
    for impl, m in runs:
        loss, grads = network_grads(impl, m, x, y)
        worst = max(((grads[n] - g).abs().max() / g.abs().max().clamp_min(1e-12)).item() for n, g in ref.items())
        ok = abs(loss - ref_loss) <= 1e-5 * (1 + abs(ref_loss)) and worst <= 1e-3
        fails += not ok
        print(
            f"  network, {impl} {m} vs closed eager: loss {loss:.7f} vs {ref_loss:.7f}, "
            f"largest gradient difference {worst:.2e} of the tensor's max: {'ok' if ok else 'FAIL'}"
        )
    return fails


def selftest(args) -> bool:
    path = Path(args.vectors) if args.vectors else DEFAULT_VECTORS
    if not path.exists():
        raise SystemExit(f"{path} not found; pass --vectors FILE")
    n, checked, fails = check_vectors(path)
    print(
        f"  {n} reference cases from {path}: {checked} values (forward, spike counts, "
        f"surrogate d out/dx; closed and bptt) {'ok' if fails == 0 else f'FAIL ({fails} groups)'}"
    )
    fails += check_network(args.mode)
    print(f"selftest ({args.mode}): {'PASS' if fails == 0 else 'FAIL'}")
    return fails == 0


# --------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (interop threads: 1)")
    ap.add_argument("--images", type=int, default=None, help="timed images (default 6000; rounded down to a multiple of 100)")
    ap.add_argument("--warmup-batches", type=int, default=5, help="untimed batches first (they include compilation)")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes over the images; the best is reported")
    ap.add_argument("--data", default=None, help="directory with the MNIST IDX files (.gz or plain); random data if omitted")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--fs-impl", choices=["auto", "closed", "bptt"], default="auto")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode (default, max-autotune-no-cudagraphs, ...)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-epoch", action="store_true", help="train one epoch on MNIST (--images to shorten) and print test accuracy")
    ap.add_argument("--test-images", type=int, default=10_000, help="test images evaluated by --check-epoch")
    ap.add_argument("--selftest", action="store_true", help="compare the FS neuron with fs_neuron.json and exit")
    ap.add_argument("--vectors", default=None, help="reference values for --selftest (default tests/data/fs_neuron.json)")
    args = ap.parse_args(argv)
    args.images_given = args.images
    if args.images is None:
        args.images = 6000
    if args.threads < 1 or args.repeats < 1 or args.warmup_batches < 0:
        ap.error("--threads and --repeats must be >= 1, --warmup-batches >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.set_num_threads(args.threads)

    if args.selftest:
        return 0 if selftest(args) else 1

    if args.check_epoch:
        r = run_check_epoch(args)
        print(
            f"pytorch {r['torch_version']} check-epoch mode={r['mode']} fs={r['fs_impl']} "
            f"threads={r['threads']} train_images={r['train_images']} "
            f"train_loss={r['train_loss']:.4f} train_acc={r['train_accuracy']:.2f}% "
            f"test_acc={r['test_accuracy']:.2f}% ({r['test_images']} test images) "
            f"train_s={r['train_seconds']:.1f}"
        )
    else:
        r = run_bench(args)
        print(
            f"pytorch {r['torch_version']} mode={r['mode']} fs={r['fs_impl']} threads={r['threads']} "
            f"images={r['images']} data={r['data']!r} epoch_seconds={r['epoch_seconds']:.2f} "
            f"(best of {r['repeats']}; per pass {', '.join(f'{t:.3f}' for t in r['repeat_seconds'])} s) "
            f"warmup_seconds={r['warmup_seconds']:.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
