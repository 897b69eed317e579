"""Train the small MNIST CNN shipped in ``src/gankit/metrics/weights/``.

Data: the built-in MNIST (the 10,000-image test set at 28x28), split with a fixed seed into 8,000
training and 2,000 held-out images. Light augmentation: random shifts of up to 2 px and small
rotations/scales. A few epochs on CPU (about a minute on 2 cores).

    python scripts/train_mnist_classifier.py [--epochs 8] [--seed 0] [--out src/gankit/metrics/weights]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit.data import load_dataset
from gankit.metrics.mnist_classifier import MnistCNN, held_out_split

ROOT = Path(__file__).resolve().parents[1]


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine: rotation +-10 deg, scale 0.9-1.1, shift +-2 px (of 28)."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] coords
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def evaluate(model: MnistCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "gankit" / "metrics" / "weights")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    ds = load_dataset("mnist", resolution=28)
    x = ds.data.float() / 127.5 - 1
    y = ds.labels.long()
    train_idx, test_idx = held_out_split(len(x), 8_000, seed=args.seed)
    xtr, ytr, xte, yte = x[train_idx], y[train_idx], x[test_idx], y[test_idx]

    model = MnistCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(xtr) / args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            xb = augment(xtr[idx], gen)
            loss = F.cross_entropy(model(xb), ytr[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        acc = evaluate(model, xte, yte)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(xtr):.4f}  held-out accuracy {acc:.4f} "
              f"({time.perf_counter() - started:.0f}s)", flush=True)

    acc = evaluate(model, xte, yte)
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(args.out / "mnist_cnn.safetensors"), metadata={"format": "gankit-mnist-cnn"})
    info = {
        "architecture": "MnistCNN (3 conv + BN, 3x3 pool, 576->128 fc features, 10 logits)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": "gankit built-in mnist (MNIST test set, 10,000 images, 28x28)",
        "split": {"seed": args.seed, "train": len(train_idx), "held_out": len(test_idx),
                  "how": "torch.randperm(10000, generator=manual_seed(seed)): first 8000 train, rest held out"},
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "augmentation": "random affine: rotate +-10 deg, scale +-10%, shift +-2 px",
        "held_out_accuracy": round(acc, 4),
        "train_seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "command": "python scripts/train_mnist_classifier.py --epochs %d --seed %d" % (args.epochs, args.seed),
    }
    (args.out / "mnist_cnn.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"held-out accuracy {acc:.4f}; wrote {args.out}/mnist_cnn.safetensors")


if __name__ == "__main__":
    main()
