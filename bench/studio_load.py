"""The studio under load: ten browser tabs moving edit sliders at once.

    python bench/studio_load.py RUN [--clients 10] [--requests 10] [--port 7870]

Starts ``gankit serve RUN`` in a child process, then:
1. one client alone sends ``--requests`` edit requests (random slider values, a new one as soon
   as the last answer arrives): the latency of one user;
2. ``--clients`` clients do the same at once, each in its own thread with its own gradio_client
   connection (what ten tabs do: every request waits its turn in the model's queue slot).
Meanwhile the server's resident memory is read from /proc every 0.1 s. Writes
bench/results/studio_load.json: latency percentiles (ms) alone and under load, throughput,
the server's RSS before the load and its peak, and the errors seen (none expected).
RUN must be a style-based model (stylegan2): the edit sliders are what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _environment import cpu_name, environment  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"gankit serve exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the studio did not come up")


def client_loop(url: str, api: str, sliders: int, requests: int, seed: int, latencies: list, errors: list) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    rng = random.Random(seed)
    for _ in range(requests):
        values = [round(rng.uniform(-3, 3), 2) for _ in range(sliders)]
        started = time.perf_counter()
        try:
            # the edit tab's inputs: seed, truncation, "seed" (not the projected photo), the sliders
            client.submit(rng.randrange(100), 0.7, "seed", *values, api_name=api).result(timeout=300)
            latencies.append(1000 * (time.perf_counter() - started))
        except Exception as exc:  # a refused or failed request is a result, not a crash of the bench
            errors.append(str(exc)[:200])


def run_clients(url: str, api: str, sliders: int, clients: int, requests: int, pid: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    peak = [rss_mb(pid)]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client_loop, args=(url, api, sliders, requests, i, latencies, errors))
               for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    lat = np.array(latencies) if latencies else np.zeros(1)
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "error_examples": errors[:3],
            "seconds": round(seconds, 2), "requests_per_s": round(len(latencies) / seconds, 2),
            "latency_ms": {"p50": round(float(np.percentile(lat, 50))), "p95": round(float(np.percentile(lat, 95))),
                           "max": round(float(lat.max()))},
            "server_rss_peak_mb": round(peak[0])}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--requests", type=int, default=10)
    p.add_argument("--port", type=int, default=7870)
    args = p.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(args.run), "--port", str(args.port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_up(url, proc)
        from gankit.studio.app import slug
        from gankit.studio.tools import load_models

        (served,) = load_models([args.run]).values()
        model = served.model
        api = f"/{slug(served.name)}_edit"
        sliders = len(list(served.directions())[:12])  # the edit tab's sliders (gankit.studio.app)
        idle = rss_mb(proc.pid)
        client_loop(url, api, sliders, 2, 99, [], [])  # warm-up: first calls build caches
        warm = rss_mb(proc.pid)
        alone = run_clients(url, api, sliders, 1, args.requests, proc.pid)
        loaded = run_clients(url, api, sliders, args.clients, args.requests, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    record = {"environment": {**environment(), "cpu": cpu_name()}, "run": str(args.run), "family": model.family,
              "resolution": model.config.resolution, "sliders": sliders,
              "server_rss_mb": {"after_load": round(idle), "after_warm_up": round(warm)},
              "alone": alone, "under_load": loaded}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "studio_load.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
