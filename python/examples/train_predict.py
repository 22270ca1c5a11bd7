"""Train a small LIF network from Python, predict with it, export it to NIR.

Run from the repository root after `pip install ./python nir`:

    python python/examples/train_predict.py [MNIST_DIR]

MNIST_DIR defaults to the CLI's lookup ($FSNN_DATA, ./data/mnist, ...;
`fsnn.data.get("mnist")` downloads it).
"""

import gzip
import sys
from pathlib import Path

import numpy as np

import fsnn

data = Path(sys.argv[1]) if len(sys.argv) > 1 else None
config = {
    "name": "example-lif",
    "data": {"dataset": "mnist", "resize": 11, "train_limit": 5000, "test_limit": 1000},
    "model": {"layers": [121, 64, 10], "neuron": "lif", "lif": {"t": 4, "v_th": 0.5, "tau": 0.2}},
    "train": {"epochs": 3, "batch_size": 50, "loss": "mse", "lr": 3e-3},
}
run = fsnn.train(config, data=data, out="runs/example-lif", overwrite=True)
print(f"test accuracy {run.summary['test_acc']:.2f} %, {run.summary['spikes_per_image']:.1f} spikes/image")

# Predict on raw 28x28 test images (the model resizes them to 11x11 itself).
mnist = data or Path("../shared/data/mnist")
with gzip.open(mnist / "t10k-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:10]
with gzip.open(mnist / "t10k-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)[:10]
logits = run.model.predict(images.astype(np.float32) / np.float32(255))
print("predicted", logits.argmax(axis=1), "true", labels)
print("spikes on these images:", run.model.spike_counts(images.astype(np.float32) / 255))

try:
    fsnn.write_nir(run.model, "runs/example-lif/model.nir")
    print("wrote runs/example-lif/model.nir")
except ImportError as e:
    print(e)
