"""What a reader polling TensorBoard's projector sees while exports run (test helper).

Every export `i` writes one new tensor `t/<i>` whose content says which export wrote it: N_i rows
(N varies with i) of `1000·i + row`, metadata rows `"<i>-<row>"`, and images filled with grey
level `i % 256`. An answer is consistent when every piece the plugin serves for a listed tensor
comes from that tensor's own export: the tensor's bytes match the shape the config lists and the
values of export i, the metadata has N_i rows of export i, the sprite's first cell has grey i.
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
from PIL import Image

_ROUTE = "/data/plugin/projector"
_NAME_RE = re.compile(r"t/(\d+)$")
WIDTH = 4


def rows_of(i: int) -> int:
    return 20 + 10 * (i % 3)


def export_arguments(i: int, n: int | None = None) -> dict:
    """The arguments of export i (`n` rows instead of its own, for a re-export with another N)."""
    n = rows_of(i) if n is None else n
    tensor = (1000 * i + np.arange(n, dtype=np.float64))[:, None] * np.ones((1, WIDTH))
    return {
        "embeddings": {f"t/{i:06d}": tensor},
        "images": np.full((n, 4, 4), i % 256, dtype=np.uint8),
        "metadata": [f"{i}-{row}" for row in range(n)],
    }


def _get(url: str, route: str, **params) -> bytes:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{_ROUTE}{route}?{query}", timeout=60) as response:
        return response.read()


def check_answers(url: str, run: str, rng: random.Random) -> list[str]:
    """One reader's round: runs, config, then tensor, metadata and sprite of two listed tensors.

    Returns the problems found (empty when every answer is consistent).
    """
    try:
        runs = json.loads(_get(url, "/runs"))
        if run not in runs:
            return [f"run {run!r} not listed ({runs})"]
        entries = json.loads(_get(url, "/info", run=run))["embeddings"]
    except (urllib.error.URLError, OSError, ValueError) as e:
        return [f"runs/info failed: {e}"]
    problems = []
    newest, other = entries[-1], rng.choice(entries)
    chosen = {newest["tensorName"]: newest, other["tensorName"]: other}
    for name, entry in chosen.items():
        match = _NAME_RE.match(name)
        if not match:
            problems.append(f"unexpected tensor {name!r}")
            continue
        i = int(match.group(1))
        n, d = (int(s) for s in entry.get("tensorShape", [0, 0]))
        if not entry.get("metadataPath") or not entry.get("sprite", {}).get("imagePath"):
            problems.append(f"{name}: listed without metadata or sprite")
            continue
        try:
            tensor = np.frombuffer(_get(url, "/tensor", run=run, name=name), dtype=np.float32)
            metadata = _get(url, "/metadata", run=run, name=name).decode("utf-8").rstrip("\n").split("\n")
            sprite = np.asarray(Image.open(io.BytesIO(_get(url, "/sprite_image", run=run, name=name))))
        except urllib.error.HTTPError as e:
            problems.append(f"{name}: HTTP {e.code} {e.read()[:120]!r}")
            continue
        except (urllib.error.URLError, OSError, ValueError) as e:
            problems.append(f"{name}: {e}")
            continue
        expected = np.repeat(1000 * i + np.arange(n, dtype=np.float32), d)
        if tensor.size != n * d or not np.array_equal(tensor, expected):
            problems.append(f"{name}: tensor of {tensor.size} values, config says {n}×{d}")
        if metadata != [f"{i}-{row}" for row in range(n)]:
            problems.append(f"{name}: {len(metadata)} metadata rows (first {metadata[0]!r}), "
                            f"config says {n} of export {i}")
        if sprite.ndim < 2 or int(sprite[0, 0]) != i % 256:
            problems.append(f"{name}: sprite of another export")
    return problems


def poll_during_exports(url: str, logdir: str, run: str, export, *, first: int, count: int,
                        reexport_every: int = 7, readers: int = 2) -> dict:
    """Runs `count` exports (`export(logdir, run=..., **export_arguments(i))`) while `readers` threads poll.

    Every `reexport_every`-th export is followed by a re-export of an earlier name with another N, and
    every 10th waits until the readers have finished one more round.
    Returns {"rounds", "inconsistent", "problems" (the first few), "exports", "refused", "reexported"}.
    """
    done = threading.Event()
    lock = threading.Lock()
    stats = {"rounds": 0, "inconsistent": 0, "problems": [], "exports": 0, "refused": 0, "reexported": 0}

    def read(seed: int) -> None:
        rng = random.Random(seed)
        while not done.is_set():
            problems = check_answers(url, run, rng)
            with lock:
                stats["rounds"] += 1
                if problems:
                    stats["inconsistent"] += 1
                    if len(stats["problems"]) < 10:
                        stats["problems"].extend(problems)

    threads = [threading.Thread(target=read, args=(seed,), daemon=True) for seed in range(readers)]
    for thread in threads:
        thread.start()
    try:
        for i in range(first, first + count):
            export(logdir, run=run, **export_arguments(i))
            stats["exports"] += 1
            if (i - first) % reexport_every == reexport_every - 1:
                earlier = i - 1
                try:
                    export(logdir, run=run, **export_arguments(earlier, n=rows_of(earlier) + 1))
                    stats["reexported"] += 1
                except ValueError:
                    stats["refused"] += 1
            if (i - first) % 10 == 9:  # the readers keep up: at least one more round every 10 exports
                with lock:
                    seen = stats["rounds"]
                while stats["rounds"] == seen and all(t.is_alive() for t in threads):
                    time.sleep(0.005)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=120)
    return stats
