"""StarGAN's gender edit on real faces: does the structure loss (``lambda_struct``, from step
``struct_start``) that fixes ``mnist-attributes`` hold up on photos? The numbers of docs/families/stargan.md.

FairFace (``../shared/data/fairface``: the 2,000 validation faces with their ``gender`` labels),
the first 1,800 by number for training, the next 200 held out, 32 px, the small preset, once per
``--variant`` and ``--seed``. A small CNN trained on the same 1,800 faces (its accuracy on the
held-out real faces is the ceiling) judges each held-out face after the gender swap: the share it
reads as the target gender. Content kept: L1 of the edit and of G(x, c_org) to the input, and the
structure loss of the edit. Finished runs are rescored, not retrained.

Writes ``bench/results/stargan_faces_<name>.json`` and ``docs/images/stargan_faces_<name>.png``
(held-out faces, then the swap of each variant and seed).

    python bench/stargan_faces.py --name structure --seed 0 1 2 --variant plain lambda_struct=0 \
        --variant struct5-step0 lambda_struct=5 struct_start=0 --variant default
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from _environment import environment  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def _faces(source: Path, rows: list[dict], resolution: int):
    import numpy as np
    import torch
    from PIL import Image

    from gankit.data import to_signed
    from gankit.data.images import resize_center_crop  # as the training faces are loaded

    images = [np.asarray(resize_center_crop(Image.open(source / r["file"]).convert("RGB"), resolution)) for r in rows]
    x = to_signed(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))
    return x, torch.tensor([r["gender"] == "Male" for r in rows]).long()


def _gender_classifier(x, y, epochs: int = 25):
    """A 3-layer CNN with horizontal flips, seeded: the judge of the edits."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)
    side = x.shape[-1] // 8
    clf = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Dropout(0.3), nn.Linear(128 * side * side, 2))
    opt = torch.optim.Adam(clf.parameters(), 1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        clf.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            b = order[i:i + 64]
            xb = torch.where(torch.rand(len(b), 1, 1, 1) < 0.5, x[b].flip(-1), x[b])
            loss = F.cross_entropy(clf(xb), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return clf.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="names the JSON and figure")
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
                    help="a run: its name, then config overrides")
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "fairface")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None, help="default: the small preset's")
    ap.add_argument("--seed", type=int, nargs="+", default=[0], help="one run per variant and seed")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "stargan-faces")
    args = ap.parse_args(argv)

    import torch
    from torchvision.utils import save_image

    import gankit
    from gankit.losses import structure_loss

    labels = args.source / "labels.csv"
    if not labels.exists():
        print(f"error: no {labels} (FairFace with gender labels; see ../shared/data/README.md)", file=sys.stderr)
        return 2
    rows = sorted(csv.DictReader(labels.open()), key=lambda r: int(Path(r["file"]).stem))
    train, held = rows[:1800], rows[1800:2000]
    folder = args.runs / "train"
    if not folder.exists():  # the training faces as links, with their labels
        folder.mkdir(parents=True)
        for r in train:
            os.symlink((args.source / r["file"]).resolve(), folder / Path(r["file"]).name)
        (args.runs / "train.csv").write_text("file,gender\n" + "".join(f"{Path(r['file']).name},{r['gender']}\n"
                                                                         for r in train))
    x_train, y_train = _faces(args.source, train, args.resolution)
    x, y = _faces(args.source, held, args.resolution)
    judge = _gender_classifier(x_train, y_train)
    with torch.no_grad():
        ceiling = (judge(x).argmax(1) == y).float().mean().item()

    results, columns = [], [x[:16]]
    for (name, *sets), seed in ((v, s) for v in args.variant for s in args.seed):
        run = args.runs / f"{name}-s{seed}"
        if not (run / "config.json").exists():
            gankit.train("stargan", data=str(folder), out=run, preset="small", steps=args.steps,
                         resolution=args.resolution, seed=seed, quiet=True,
                         overrides=[f"attr_file={args.runs / 'train.csv'}", "attrs=gender", *sets])
        model = gankit.load(run)
        male = model.config.names.index("gender=Male")
        own = torch.zeros(len(x), 2)
        own[torch.arange(len(x)), torch.where(y == 1, male, 1 - male)] = 1
        with torch.no_grad():
            swapped, unchanged = model.translate(x, attrs=1 - own), model.translate(x, attrs=own)
            row = {"variant": name, "settings": " ".join(sets), "seed": seed, "steps": model.step,
                   "swap_read_as_target": (judge(swapped).argmax(1) == 1 - y).float().mean().item(),
                   "unchanged_read_as_own": (judge(unchanged).argmax(1) == y).float().mean().item(),
                   "swap_l1_to_input": (swapped - x).abs().mean().item(),
                   "unchanged_l1_to_input": (unchanged - x).abs().mean().item(),
                   "swap_structure_loss": structure_loss(x, swapped).item()}
        print(json.dumps(row), flush=True)
        results.append(row)
        columns.append(swapped[:16])
    out = ROOT / "bench" / "results" / f"stargan_faces_{args.name}.json"
    figure = ROOT / "docs" / "images" / f"stargan_faces_{args.name}.png"
    out.write_text(json.dumps({
        "benchmark": "stargan-faces", "name": args.name, "data": str(args.source), "train": 1800, "held_out": 200,
        "resolution": args.resolution, "seeds": args.seed, "judge_accuracy_on_real_faces": ceiling,
        "command": "python bench/stargan_faces.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": results, "figure": str(figure.relative_to(ROOT)), "environment": environment()}, indent=2) + "\n")
    save_image(torch.cat(columns) * 0.5 + 0.5, figure, nrow=16)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
