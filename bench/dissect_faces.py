"""Forgetting to draw, measured (DCGAN paper §6.2, Fig. 6) on the FairFace DCGAN.

For face regions of the aligned 64x64 faces (mouth, eyes, a background corner), each layer and
each number K of maps: fit the paper's logistic regression on ``--n`` samples
(:func:`gankit.explore.dissect.dissect`), zero the K maps with the largest weights, and measure the
mean absolute change (8-bit levels) inside the region and outside it, and their ratio. The control
zeroes K random maps of the same layer (``--controls`` draws, mean and range of the ratio). A
ratio near 1 means the change is spread over the whole face; above 1, it is concentrated in the
region. ``contrast`` rows use the simpler per-map score (mean inside minus outside).

Writes ``bench/results/dissect_faces.json`` and ``docs/images/toolbox/dissect_dcgan_<region>.png``
for ``--figure-layer`` and ``--figure-top``.

    python bench/dissect_faces.py                 # ~3 CPU minutes
    python bench/dissect_faces.py --tops 3 --controls 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _environment import cpu_name, environment, write_json  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "bench" / "results" / "dissect_faces.json"
FIGURES = ROOT / "docs" / "images" / "toolbox"
REGIONS = {"mouth": "20,40,44,52", "eyes": "12,18,52,30", "corner": "0,0,12,12"}  # on the mean face


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default="runs/bench_faces/dcgan_all")
    ap.add_argument("--layers", default="main.5,main.8", help="Comma-separated layer names or indices.")
    ap.add_argument("--tops", default="3,8,16")
    ap.add_argument("--methods", default="logistic,contrast")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--controls", type=int, default=10)
    ap.add_argument("--figure-layer", default="main.8")
    ap.add_argument("--figure-top", type=int, default=8)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import gankit
    from gankit.explore.dissect import dissect, find_layer
    from gankit.viz import render_samples, save_image

    model = gankit.load(ROOT / args.run)
    doc = {"environment": {**environment(), "cpu": cpu_name()}, "run": args.run, "family": model.family,
           "step": model.step, "n": args.n, "controls": args.controls, "regions": REGIONS, "results": []}
    started = time.perf_counter()
    for region_name, region in REGIONS.items():
        for layer_spec in args.layers.split(","):
            layer = find_layer(model, layer_spec)
            for top in map(int, args.tops.split(",")):
                for method in args.methods.split(","):
                    out = dissect(model, layer, region, top=top, n=args.n, method=method, controls=args.controls)
                    ratios = out.control["ratios"]
                    row = {"region": region_name, "layer": layer.name, "maps": layer.channels, "size": list(layer.size),
                           "top": top, "method": method, "dropped": out.maps, **out.change,
                           "control": {k: out.control[k] for k in ("inside", "outside", "ratio")}
                           | {"ratio_min": min(ratios), "ratio_max": max(ratios)}}
                    doc["results"].append(row)
                    print(f"{region_name:6} {layer.name:7} K={top:<2} {method:8} ratio {out.change['ratio']:.2f} "
                          f"(inside {out.change['inside']:.1f}, outside {out.change['outside']:.1f}); random maps "
                          f"{out.control['ratio']:.2f} [{min(ratios):.2f}-{max(ratios):.2f}]", flush=True)
                    if (layer.name, top, method) == (args.figure_layer, args.figure_top, "logistic"):
                        images, nrow = out.figure(8)
                        path = FIGURES / f"dissect_{model.family}_{region_name}.png"
                        save_image(render_samples(images, nrow=nrow), path)
                        doc.setdefault("figures", {})[region_name] = str(path.relative_to(ROOT))
    doc["seconds"] = round(time.perf_counter() - started, 1)
    write_json(args.out, doc)


if __name__ == "__main__":
    main()
