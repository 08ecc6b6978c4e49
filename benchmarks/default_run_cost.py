"""What a default `projector-train` run pays for its snapshots and pictures, part by part and as a whole.

Three measurements (each prints a Markdown table; wall seconds and CPU seconds of this process, CPU being the
less noisy one on a shared machine):

  parts  one snapshot of a model trained `--train-steps` steps, split into its parts (the probe's forward pass,
         the PCA of each wide layer with the variance it keeps, the k-NN separability of each layer, the
         export write, the class embedding), the whole snapshot as its separability table shows it, and the
         pictures' parts (predicting the test images, one periodic log, the filter patterns at the end);
  runs   whole `projector-train --model M --steps S` runs, defaults vs `--snapshot-every 0 --images-every 0`,
         in alternating pairs (subprocesses): the median of each side and their ratio (target <= 1.05);
  jit    `model.fit` with and without XLA (`jit_compile=True`), alternating: seconds and test accuracy;
  threads  the exporter's PCA with its big products on one BLAS thread vs every core, alternating;
  batches  the snapshot's streamed pass at 250, 500 and 1,000 rows a batch and with XLA, beside the bare
         forward pass at the same batch sizes: seconds and page faults;
  variance the share of variance the PCA keeps on lenet's wide layers at steps 0, 300 and 1,500 of a training;
  targets  every target figure in one run: a later snapshot as the run's table shows it and as a ratio to the
         bare forward pass of the probe measured beside it (alternating repeats in this process), then whole
         runs, defaults vs everything off (`--layouts off` too where `projector-train` has the flag), wall
         seconds to the run's last output line, in alternating pairs after a warm-up, and from that line until
         every snapshot's layouts are served (the next run starts after that); `--tutorial-pairs N` adds the
         tutorial model's 10,000-step runs (long).

    MNIST_DATA_DIR=... PYTHONPATH=. python benchmarks/default_run_cost.py parts --model lenet
    MNIST_DATA_DIR=... PYTHONPATH=. python benchmarks/default_run_cost.py runs --model lenet --pairs 3
    MNIST_DATA_DIR=... PYTHONPATH=. python benchmarks/default_run_cost.py jit --model lenet --steps 300
    MNIST_DATA_DIR=... PYTHONPATH=. python benchmarks/default_run_cost.py threads --pairs 5
    MNIST_DATA_DIR=... PYTHONPATH=. python benchmarks/default_run_cost.py variance
    MNIST_DATA_DIR=... PYTHONPATH=. python benchmarks/default_run_cost.py targets --repeats 5 --pairs 3
    MNIST_DATA_DIR=... PYTHONPATH=. python benchmarks/default_run_cost.py batches --repeats 3 --pause 2

`parts` reads the snapshot's and the pictures' parts through the library's current modules; to measure an older
checkout ("before"), run that checkout's own copy of this script.
"""

from __future__ import annotations

import argparse
import inspect
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.layouts import wait_for_layouts

ROWS: list[tuple[str, float, float, str]] = []


def _timed(label: str, work, note=""):
    """Runs `work()`, records its wall and CPU seconds; `note` may be a function of the result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ROWS.append((label, wall, cpu, note(result) if callable(note) else note))
    return result


def _print_rows(title: str) -> None:
    print(f"\n{title}\n\n| part | wall s | CPU s | note |\n|---|---:|---:|---|")
    for label, wall, cpu, note in ROWS:
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {note} |")
    ROWS.clear()


def _trained(model_name: str, steps: int):
    import keras

    from training.mnist import load_mnist
    from training.models import build_model, compile_model

    data = load_mnist()
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(model_name, data.image_shape, data.num_classes), 1e-4)
    model.fit(data.train_images[: 64 * steps], data.train_labels[: 64 * steps], batch_size=64, epochs=1, verbose=0)
    return data, model


def parts(args) -> None:
    from projector_export import DEFAULT_PROBE_SIZE, LayerSnapshotter, SharedScores, check_probe, take_probe
    from projector_export import error_metadata as meta
    from projector_export.class_scores import class_embedding
    from projector_export.exporter import export_embeddings
    from projector_export.images import ImageLogger
    from projector_export.images.filter_patterns import filter_patterns
    from projector_export.layer_outputs import LayerOutputs
    from projector_export.model_layers import conv_layers
    from projector_export.reduction import DEFAULT_PCA_COMPONENTS, PCA_THRESHOLD_DIM, pca
    from projector_export.separability import knn_separability

    data, model = _trained(args.model, args.train_steps)
    x, y = take_probe(data.test_images, data.test_labels, DEFAULT_PROBE_SIZE)
    logdir = tempfile.mkdtemp(prefix="default_run_cost-")
    snapshotter = LayerSnapshotter(model, check_probe(x, y), logdir, run="parts")
    layers = snapshotter.plan.layers
    outputs = LayerOutputs(model, layers, x)
    outputs(x[:500])  # compile the predict function outside the timings
    for _ in range(3):  # the first call also pays for touching new memory; the row shows the median
        tensors = scores = None
        tensors, scores = _timed("forward pass of the probe (all layers)", lambda: outputs(x), lambda result: (
            f"{len(x)} images; " + ", ".join(f"{name} {_shape(a)}" for name, a in result[0].items())))
    walls, cpus = zip(*[(row[1], row[2]) for row in ROWS], strict=True)
    ROWS[:] = [(ROWS[0][0], statistics.median(walls), statistics.median(cpus), ROWS[0][3] + "; median of 3")]
    if "pca_components" in inspect.signature(LayerOutputs.__call__).parameters:  # the streamed PCA exists
        streaming = LayerOutputs(model, layers, x)
        streaming(x[:500])
        for label in ("fresh sketch", "warm start from the call before"):
            time.sleep(args.pause)
            _timed(f"forward pass with the streamed PCA of the wide layers ({label})",
                   lambda: streaming(x, DEFAULT_PCA_COMPONENTS), lambda result: "; ".join(
                       f"{name} keeps {r.explained_variance_ratio:.2%}" for name, r in result[0].items()
                       if hasattr(r, "explained_variance_ratio")))
        del streaming
    reduced = {}
    for name, array in tensors.items():
        if array.shape[1] > PCA_THRESHOLD_DIM:
            result = _timed(f"PCA {name}", lambda a=array: pca(a, DEFAULT_PCA_COMPONENTS), lambda r, a=array: (
                f"{_shape(a)} -> {r.coordinates.shape[1]}, keeps {r.explained_variance_ratio:.2%} of the variance"))
            reduced[name] = result.coordinates
        else:
            reduced[name] = array
    for name, array in reduced.items():
        _timed(f"separability {name}", lambda a=array: knn_separability(a, y), _shape(array))
    columns = meta.error_metadata(scores, y, data.class_names)
    _timed("export write (reduce none)", lambda: export_embeddings(
        logdir, {f"{n}/w": a for n, a in reduced.items()}, run="write", images=x, metadata=columns, reduce="none"))
    weights = class_embedding(model, scores.shape[1])
    _timed("class embedding (means + write)", lambda: export_embeddings(
        logdir, {"class_weights/w": weights}, run="write", images=meta.class_mean_images(x, y, len(weights)),
        metadata=meta.class_metadata(data.class_names)))
    del tensors
    time.sleep(args.pause)
    _timed("first whole snapshot (traces the extractor, writes the sprite)", lambda: snapshotter.snapshot(0))
    records = []
    for step in (1, 2, 3):  # a pause before each, as between a run's snapshots (memory freed meanwhile)
        time.sleep(args.pause)
        records.append(_timed(f"whole snapshot (step {step})", lambda s=step: snapshotter.snapshot(s)))
    table_seconds = statistics.median(r.seconds for r in records)
    _print_rows(f"One {args.model} snapshot ({len(layers)} layers, {len(x)} probe images), model trained "
                f"{args.train_steps} steps; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
                f"{args.pause:.0f} s pause before each timed call of a forward pass or snapshot")
    print(f"\nSnapshot seconds as the separability table shows them (later snapshots, median of 3): "
          f"{table_seconds:.2f}")
    print(snapshotter.table())

    logger = ImageLogger(data.test_images, data.test_labels, logdir, run="pictures", class_names=data.class_names)
    logger.set_model(model)
    logger.on_begin(0)  # the model checks and the feature-map extractor, as when training begins
    logger._log(0)
    _timed(f"predict the {len(data.test_images)} test images", logger._probabilities)
    _timed("one periodic picture log, alone", lambda: logger._log(0))
    if args.model != "mlp":
        logger.shared_scores = SharedScores()
        logger.shared_scores.put(7, x, scores)
        _timed("one periodic picture log, probe scores shared", lambda: logger._log(7))
    low, high = logger._value_range
    _timed("filter patterns (end of training)", lambda: [
        filter_patterns(model, layer, steps=logger.pattern_steps, value_range=(low, high))
        for layer in conv_layers(model)])
    logger.writer.close()
    shutil.rmtree(logdir, ignore_errors=True)
    _print_rows("Pictures")


def _shape(array) -> str:
    return f"{array.shape[0]}x{array.shape[1]}"


def runs(args) -> None:
    common = ["--model", args.model, "--steps", str(args.steps)]  # exactly the command
    sides = {"defaults": [], "off": ["--snapshot-every", "0", "--images-every", "0"]}
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    table_seconds: list[list[float]] = []  # the seconds column of each defaults run's separability table
    with tempfile.TemporaryDirectory(prefix="default_run_cost-") as logdir:
        # A short run first, not timed: the first process after a while pays for reading TensorFlow's
        # libraries from disk, which would be charged to whichever side came first.
        subprocess.run([sys.executable, "-m", "training.train", "--model", args.model, "--steps", "20",
                        *sides["off"], "--logdir", logdir, "--run", "warm-up"], check=True, stdout=subprocess.DEVNULL)
        for pair in range(args.pairs):
            order = list(sides) if pair % 2 == 0 else list(sides)[::-1]
            for side in order:
                command = [sys.executable, "-m", "training.train", *common, *sides[side], "--logdir", logdir,
                           "--run", f"{side}-{pair}"]
                start, before = time.perf_counter(), _children_cpu()
                out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
                seconds[side].append(time.perf_counter() - start)
                cpu[side].append(_children_cpu() - before)
                if side == "defaults":
                    table_seconds.append(_table_seconds(out))
                print(f"pair {pair} {side}: {seconds[side][-1]:.1f} s wall, {cpu[side][-1]:.1f} s CPU "
                      f"(load average {os.getloadavg()[0]:.1f})"
                      + (f"; snapshot seconds {table_seconds[-1]}" if side == "defaults" else ""), flush=True)
    on, off = statistics.median(seconds["defaults"]), statistics.median(seconds["off"])
    ratios = [a / b for a, b in zip(seconds["defaults"], seconds["off"], strict=True)]
    print(f"\n`projector-train --model {args.model} --steps {args.steps}` (whole runs incl. start-up, "
          f"{args.pairs} alternating pairs, {os.cpu_count()} cores)\n")
    print("| run | median wall s | all wall s | median CPU s |\n|---|---:|---|---:|")
    for side, label in (("off", "--snapshot-every 0 --images-every 0"), ("defaults", "defaults")):
        print(f"| {label} | {statistics.median(seconds[side]):.1f} | "
              f"{', '.join(f'{s:.1f}' for s in seconds[side])} | {statistics.median(cpu[side]):.1f} |")
    print(f"\nratio of the medians: {on / off:.3f}; median of the pair ratios: {statistics.median(ratios):.3f}; "
          f"CPU ratio of the medians: {statistics.median(cpu['defaults']) / statistics.median(cpu['off']):.3f}")
    for row, values in enumerate(zip(*table_seconds, strict=True)):
        print(f"snapshot {row + 1} as the separability table shows it: median {statistics.median(values):.1f} s "
              f"(all: {', '.join(f'{v:.1f}' for v in values)})")


def _table_seconds(out: str) -> list[float]:
    """The seconds column of the separability table `projector-train` prints at the end of training."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Separability:"))
    rows = []
    for line in lines[head + 2:]:
        fields = line.split()
        if not fields or not fields[0].isdigit():
            break
        rows.append(float(fields[-1]))
    return rows


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def jit(args) -> None:
    import keras

    from training.mnist import load_mnist
    from training.models import build_model

    data = load_mnist()
    n = 64 * args.steps
    results: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    for _ in range(args.pairs):
        for flag in (False, True):
            keras.utils.set_random_seed(0)
            model = build_model(args.model, data.image_shape, data.num_classes)
            model.compile(optimizer=keras.optimizers.Adam(1e-4), metrics=["accuracy"], jit_compile=flag,
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(data.train_images[:64], data.train_labels[:64], batch_size=64, verbose=0)  # compile
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(data.train_images[:n], data.train_labels[:n], batch_size=64, epochs=1, verbose=0, shuffle=False)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            accuracy = model.evaluate(data.test_images, data.test_labels, batch_size=1000, verbose=0)[1]
            results[flag].append((wall, cpu, accuracy))
    print(f"\n`model.fit` of {args.model}, {args.steps} steps of batch 64, median of {args.pairs} alternating "
          f"runs, {os.cpu_count()} cores\n\n| jit_compile | wall s | CPU s | test accuracy |\n|---|---:|---:|---:|")
    for flag, rows in results.items():
        wall, cpu, accuracy = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"| {flag} | {wall:.1f} | {cpu:.1f} | {accuracy:.4f} |")


def threads(args) -> None:
    """The exporter's PCA with its big products on one BLAS thread and on every core, alternating, on a wide
    layer's outputs (lenet conv1 of the probe) and a 10,000×1024 tensor (the export benchmark's stand-in)."""
    import numpy as np

    from projector_export import DEFAULT_PROBE_SIZE, reduction, take_probe
    from projector_export.layer_outputs import LayerOutputs

    data, model = _trained(args.model, args.train_steps)
    x, _ = take_probe(data.test_images, data.test_labels, DEFAULT_PROBE_SIZE)
    conv1 = LayerOutputs(model, ["conv1"], x)(x)[0]["conv1"]
    flat = data.test_images.reshape(len(data.test_images), -1).astype(np.float32) / 255
    wide = np.maximum(flat @ np.random.default_rng(0).standard_normal((flat.shape[1], 1024), dtype=np.float32), 0)
    cores = os.cpu_count() or 1
    seconds: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.pairs):
        for name, array in ((f"conv1 {_shape(conv1)}", conv1), (f"ReLU features {_shape(wide)}", wide)):
            for count in (1, cores):
                reduction._BLAS_THREADS = count
                start = time.perf_counter()
                reduction.pca(array, reduction.DEFAULT_PCA_COMPONENTS)
                seconds.setdefault((name, count), []).append(time.perf_counter() - start)
    print(f"\n`pca` of {args.pairs} alternating repeats, load average {os.getloadavg()[0]:.1f}\n\n"
          "| tensor | big products on | median s | all s |\n|---|---|---:|---|")
    for (name, count), values in seconds.items():
        print(f"| {name} | {count} thread(s) | {statistics.median(values):.2f} | "
              f"{', '.join(f'{v:.2f}' for v in values)} |")


def variance(args) -> None:
    """The share of variance the PCA keeps on lenet's wide layers (the probe) at steps 0, 300 and 1,500 of one
    training: the exporter's `pca` of the whole outputs, a snapshot's streamed PCA (fresh at step 0, then
    started from the step before's directions) where the checkout has it, and the best possible (exact)."""
    import keras
    import numpy as np

    from projector_export import DEFAULT_PROBE_SIZE, take_probe
    from projector_export.layer_outputs import LayerOutputs
    from projector_export.reduction import DEFAULT_PCA_COMPONENTS, pca
    from training.mnist import load_mnist
    from training.models import build_model, compile_model

    data = load_mnist()
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(args.model, data.image_shape, data.num_classes), 1e-4)
    x, _ = take_probe(data.test_images, data.test_labels, DEFAULT_PROBE_SIZE)
    plain = LayerOutputs(model, ["conv1", "conv2"], x)
    streams = "pca_components" in inspect.signature(LayerOutputs.__call__).parameters
    snapshots = LayerOutputs(model, ["conv1", "conv2"], x) if streams else None
    print(f"\n`{args.model}`, {len(x)} probe images, {DEFAULT_PCA_COMPONENTS} components\n\n"
          "| step | layer | `pca` of the outputs | snapshot's streamed PCA | best possible |\n|---|---|---:|---:|---:|")
    done = 0
    for step in (0, 300, 1500):
        rows = np.arange(64 * done, 64 * step) % len(data.train_images)  # batches of 64, as `projector-train`
        if step > done:
            model.fit(data.train_images[rows], data.train_labels[rows], batch_size=64, epochs=1, verbose=0)
        done = step
        full = plain(x)[0]
        streamed = snapshots(x, DEFAULT_PCA_COMPONENTS)[0] if streams else {}
        for name, array in full.items():
            centred = array.astype(np.float64) - array.mean(axis=0)
            eigenvalues = np.linalg.eigvalsh(centred @ centred.T)[::-1]  # N < D: the N×N Gram matrix
            best = eigenvalues[:DEFAULT_PCA_COMPONENTS].sum() / eigenvalues.sum()
            ours = pca(array, DEFAULT_PCA_COMPONENTS).explained_variance_ratio
            stream = f"{streamed[name].explained_variance_ratio:.2%}" if name in streamed else "-"
            print(f"| {step} | {name} | {ours:.2%} | {stream} | {best:.2%} |", flush=True)


def targets(args) -> None:
    """Every target figure in one run: the later snapshot against the bare forward pass, then whole runs."""
    _snapshot_against_forward_pass(args)
    off = ["--snapshot-every", "0", "--images-every", "0"]
    if "--layouts" in subprocess.run([sys.executable, "-m", "training.train", "--help"], check=True,
                                     stdout=subprocess.PIPE, text=True).stdout:
        off += ["--layouts", "off"]
    if args.pairs:
        _whole_runs(args.model, args.steps, args.pairs, off)
    if args.tutorial_pairs:
        _whole_runs("tutorial", 10_000, args.tutorial_pairs, off)


def _snapshot_against_forward_pass(args) -> None:
    """A later snapshot (as the table shows it, and wall/CPU around the call), the bare forward pass of the probe
    through the model's compiled predict step, and the other passes of a run's last step over test images (the
    validation, the pictures' predict of the rows the probe does not cover), alternating, `args.pause` idle
    seconds before each."""
    from projector_export import DEFAULT_PROBE_SIZE, LayerSnapshotter, check_probe, take_probe
    from projector_export.prediction import predict_scores

    data, model = _trained(args.model, args.train_steps)
    x, y = take_probe(data.test_images, data.test_labels, DEFAULT_PROBE_SIZE)
    others = data.test_images[len(x):]
    figures: dict[str, list[tuple[float, float]]] = {}
    table: list[float] = []
    with tempfile.TemporaryDirectory(prefix="default_run_cost-") as logdir:
        snapshotter = LayerSnapshotter(model, check_probe(x, y), logdir, run="targets")
        snapshotter.snapshot(0)  # the first snapshot: traces the extractor, writes the sprite
        predict_scores(model, x[:500])  # compiles the model's predict step
        model.evaluate(data.test_images[:1000], data.test_labels[:1000], batch_size=1000, verbose=0)
        work = {
            "bare forward pass of the probe": lambda step: predict_scores(model, x),
            "snapshot call": lambda step: table.append(snapshotter.snapshot(step).seconds),
            f"validation over the {len(data.test_images)} test images": lambda step: model.evaluate(
                data.test_images, data.test_labels, batch_size=1000, verbose=0),
            f"pictures' predict of the {len(others)} test images the probe does not cover": lambda step: (
                predict_scores(model, others, 1000)),
        }
        for repeat in range(args.repeats):
            for side in (list(work) if repeat % 2 == 0 else list(work)[::-1]):
                time.sleep(args.pause)
                wall, cpu = time.perf_counter(), time.process_time()
                work[side](repeat + 1)
                figures.setdefault(side, []).append((time.perf_counter() - wall, time.process_time() - cpu))
        layers = len(snapshotter.plan.layers)
    print(f"\nA later {args.model} snapshot ({len(x)} probe images, {layers} layers, model trained "
          f"{args.train_steps} steps) and the passes beside it, {args.repeats} alternating repeats, "
          f"{args.pause:.0f} s idle before each; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n")
    print("| measure | median wall s | median CPU s | all wall s |\n|---|---:|---:|---|")
    print(f"| snapshot as the table shows it | {statistics.median(table):.2f} | | "
          f"{', '.join(f'{s:.2f}' for s in table)} |")
    medians = {}
    for side, values in figures.items():
        walls, cpus = zip(*values, strict=True)
        medians[side] = statistics.median(walls), statistics.median(cpus)
        print(f"| {side} | {medians[side][0]:.2f} | {medians[side][1]:.2f} | {', '.join(f'{w:.2f}' for w in walls)} |")
    (snap_wall, snap_cpu), (bare_wall, bare_cpu) = medians["snapshot call"], medians["bare forward pass of the probe"]
    print(f"\nsnapshot / bare forward pass: table {statistics.median(table) / bare_wall:.2f} (goal <= 1.5); wall "
          f"{snap_wall / bare_wall:.2f}; CPU {snap_cpu / bare_cpu:.2f}")
    validation = medians[f"validation over the {len(data.test_images)} test images"]
    print(f"one pass at a step with validation, snapshot and pictures would remove the validation's pass over the "
          f"test images: {validation[0]:.2f} s wall, {validation[1]:.2f} s CPU per such step", flush=True)


def _whole_runs(model: str, steps: int, pairs: int, off: list[str]) -> None:
    """`projector-train --model M --steps S`, defaults vs `off`, in alternating pairs after an untimed warm-up: wall
    seconds from the start to the run's last output line (and to its exit), CPU seconds of the process."""
    sides = {"defaults": [], "off": off}
    figures: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
    table: list[list[float]] = []  # the seconds column of each defaults run's separability table
    served: list[tuple[float, float]] = []  # last line -> every layout served, -> the worker's exit
    with tempfile.TemporaryDirectory(prefix="default_run_cost-") as logdir:
        subprocess.run([sys.executable, "-m", "training.train", "--model", model, "--steps", "20", *off,
                        "--logdir", logdir, "--run", "warm-up"], check=True, stdout=subprocess.DEVNULL)
        for pair in range(pairs):
            for side in (list(sides) if pair % 2 == 0 else list(sides)[::-1]):
                *timings, out = _timed_run([sys.executable, "-m", "training.train", "--model", model, "--steps",
                                            str(steps), *sides[side], "--logdir", logdir, "--run", f"{side}-{pair}"])
                figures[side].append(tuple(timings))
                table += [_table_seconds(out)] if side == "defaults" else []
                if side == "defaults" and "--layouts" in off:  # the next run starts once these layouts are done
                    exit_delay = timings[1] - timings[0]
                    served.append(tuple(exit_delay + s for s in wait_for_layouts(logdir, f"{side}-{pair}")))
                print(f"{model} pair {pair} {side}: {timings[0]:.1f} s to the last line, {timings[1]:.1f} s to exit, "
                      f"{timings[2]:.1f} s CPU (load average {os.getloadavg()[0]:.1f})"
                      + (f"; snapshot seconds {table[-1]}" if side == "defaults" else ""), flush=True)
    print(f"\n`projector-train --model {model} --steps {steps}`, defaults vs `{' '.join(off)}`, {pairs} alternating "
          f"pairs after a warm-up, {os.cpu_count()} cores\n")
    print("| run | median wall s to the last line | all | median wall s to exit | median CPU s |\n"
          "|---|---:|---|---:|---:|")
    medians = {}
    for side in ("off", "defaults"):
        columns = list(zip(*figures[side], strict=True))
        medians[side] = [statistics.median(column) for column in columns]
        print(f"| {side} | {medians[side][0]:.1f} | {', '.join(f'{v:.1f}' for v in columns[0])} | "
              f"{medians[side][1]:.1f} | {medians[side][2]:.1f} |")
    pair_ratios = [a[0] / b[0] for a, b in zip(figures["defaults"], figures["off"], strict=True)]
    print(f"\nwall ratio (last line) of the medians: {medians['defaults'][0] / medians['off'][0]:.3f}; median of the "
          f"pair ratios: {statistics.median(pair_ratios):.3f}; CPU ratio of the medians: "
          f"{medians['defaults'][2] / medians['off'][2]:.3f}")
    if served:
        laid_out, done = zip(*served, strict=True)
        print(f"defaults: from the last line to every snapshot's layouts served: median "
              f"{statistics.median(laid_out):.1f} s (all: {', '.join(f'{v:.1f}' for v in laid_out)}; goal <= 30); "
              f"to the worker's exit (trajectories built): median {statistics.median(done):.1f} s")
    for row, values in enumerate(zip(*table, strict=True)):
        print(f"snapshot {row + 1} as the separability table shows it: median {statistics.median(values):.1f} s "
              f"(all: {', '.join(f'{v:.1f}' for v in values)})", flush=True)


def _timed_run(command: list[str]) -> tuple[float, float, float, str]:
    """Runs `command`; wall seconds to its last output line and to its exit, its CPU seconds and its output."""
    start, before = time.perf_counter(), _children_cpu()
    last, lines = start, []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            last = time.perf_counter()
            lines.append(line)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return last - start, time.perf_counter() - start, _children_cpu() - before, "".join(lines)


def batches(args) -> None:
    """The snapshot's streamed pass (a later snapshot's: warm sample pass, then every row) at batch sizes of 250,
    500 and 1,000 rows and with XLA, against the bare forward pass at the same batch sizes, alternating: wall
    and CPU seconds and the minor page faults of each call (fresh pages the process touched)."""
    import tensorflow as tf

    from projector_export import DEFAULT_PROBE_SIZE, check_probe, plan_snapshots, take_probe
    from projector_export.layer_outputs import LayerOutputs
    from projector_export.prediction import predict_scores
    from projector_export.reduction import DEFAULT_PCA_COMPONENTS

    data, model = _trained(args.model, args.train_steps)
    x, y = take_probe(data.test_images, data.test_labels, DEFAULT_PROBE_SIZE)
    layers = plan_snapshots(model, check_probe(x, y)).layers  # the snapshot's, as `projector-train` chooses them
    outputs = {}
    for xla in (False, True):
        outputs[xla] = LayerOutputs(model, layers, x)
        outputs[xla](x, DEFAULT_PCA_COMPONENTS)  # traces the steps, then XLA-compiled copies of them
        if xla:
            outputs[xla]._steps = {key: tf.function(step.python_function, input_signature=step.input_signature,
                                                    autograph=False, jit_compile=True)
                                   for key, step in outputs[xla]._steps.items()}
        outputs[xla](x, DEFAULT_PCA_COMPONENTS)
    work = {}
    for rows in (250, 500, 1000):
        predict_scores(model, x[:rows], rows)
        work[f"bare forward pass, {rows} rows a batch"] = lambda rows=rows: predict_scores(model, x, rows)
        work[f"streamed pass, {rows} rows a batch"] = lambda rows=rows: _batched(outputs[False], rows, x)
    work["streamed pass, 250 rows a batch, XLA"] = lambda: _batched(outputs[True], 250, x)
    figures: dict[str, list[tuple[float, float, int]]] = {}
    for repeat in range(args.repeats):
        for label in (list(work) if repeat % 2 == 0 else list(work)[::-1]):
            time.sleep(args.pause)
            before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            work[label]()
            after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            figures.setdefault(label, []).append((wall, cpu, after.ru_minflt - before.ru_minflt))
    print(f"\n{args.model}, {len(x)} probe images, medians of {args.repeats} alternating repeats, {args.pause:.0f} s "
          f"idle before each; load average {os.getloadavg()[0]:.1f}\n\n"
          "| pass | wall s | CPU s | minor page faults |\n|---|---:|---:|---:|")
    for label, values in figures.items():
        wall, cpu, faults = (statistics.median(column) for column in zip(*values, strict=True))
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {faults:,.0f} |")


def _batched(outputs, rows: int, x):
    """`outputs(x)` with its streamed PCA, `rows` rows a batch."""
    from projector_export.reduction import DEFAULT_PCA_COMPONENTS

    outputs._batch_rows = rows
    return outputs(x, DEFAULT_PCA_COMPONENTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("parts", "runs", "jit", "threads", "variance", "targets", "batches"))
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--steps", type=int, default=1500, help="runs: steps per run; jit: steps timed")
    parser.add_argument("--train-steps", type=int, default=300, help="parts: steps trained before the snapshot")
    parser.add_argument("--pairs", type=int, default=3, help="runs/jit: alternating pairs")
    parser.add_argument("--repeats", type=int, default=5, help="targets: alternating snapshot/forward repeats")
    parser.add_argument("--tutorial-pairs", type=int, default=0,
                        help="targets: also this many pairs of the tutorial model's 10,000-step runs (long)")
    parser.add_argument("--pause", type=float, default=30.0,
                        help="parts: seconds of idle before each timed snapshot (memory returns to the system "
                             "as in a run's minutes between snapshots)")
    args = parser.parse_args()
    {"parts": parts, "runs": runs, "jit": jit, "threads": threads, "variance": variance,
     "targets": targets, "batches": batches}[args.what](args)


if __name__ == "__main__":
    main()
