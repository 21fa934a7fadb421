"""What the views cost a two-process JAX job: epoch time with and without them, on both processes.

Two processes on 127.0.0.1 (``jax.distributed``, gloo CPU collectives, one CPU device each) train the
design card's CNN (``kv.models.reference_cnn``) with ``keras.distribution.DataParallel``: each process
feeds ``--train`` shapes images per epoch in batches of ``--batch``; gradients are all-reduced every
step; each process computes on one thread (``--xla_cpu_multi_thread_eigen=false``). Only process 0
renders (``render_on="chief"``). The two configurations alternate, one epoch each, on the same model
(``initial_epoch`` continues the steps):

* ``baseline``: no views;
* ``views``: every view at its defaults (8 samples for FeatureMaps, GradCAM and Saliency; a
  ``--val``-image validation set for DecisionBoundary and ConfusionMatrix), ``every_n_epochs=1``.

Each round (one one-epoch ``fit``) ends with a barrier across the two processes
(``multihost_utils.sync_global_devices``), inside the timed interval: a process that has finished its
epoch waits there for the other, as it would at the next epoch's first all-reduce, so the wait for
process 0's render is counted in the round that rendered it, on both processes. Reported per process:
the median round time of each configuration (the first round of each, which traces, left out), the
ratio, and on process 0 each view's own time per render (median, first call left out).

    python benchmarks/distributed_jax.py                  # 6 measured rounds of each (~10 min on 2 cores)
    python benchmarks/distributed_jax.py --rounds 3 --train 512
    python benchmarks/distributed_jax.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="measured rounds of each configuration")
    parser.add_argument("--train", type=int, default=1024, help="training images per process per epoch")
    parser.add_argument("--val", type=int, default=400, help="validation images (DecisionBoundary, ConfusionMatrix)")
    parser.add_argument("--batch", type=int, default=64, help="batch size per process")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--process-id", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def launch(args: argparse.Namespace, argv: list[str]) -> int:
    import tempfile

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tempfile.mkdtemp(prefix="viz_dist_bench_")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *argv, "--process-id", str(i), "--port", str(port), "--out", out],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    try:
        outputs = [p.communicate(timeout=args.timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(p.returncode for p in procs):
        print(f"exit codes {[p.returncode for p in procs]}", file=sys.stderr)
        return 1
    results = [json.loads(o.strip().splitlines()[-1]) for o in outputs]
    report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "json"}, "processes": results}, f, indent=1)
    return 0


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\nTwo JAX processes, DataParallel, reference_cnn, {args.train} images x 2 processes per epoch, batch "
        f"{args.batch} per process, one XLA compute thread each; medians of {args.rounds} rounds\n"
    )
    print("process  baseline s/epoch  views s/epoch  ratio   wait after the fit: baseline  views  (s)")
    for r in sorted(results, key=lambda r: r["pid"]):
        b, v = statistics.median(r["baseline"][1:]), statistics.median(r["views"][1:])
        wb, wv = statistics.median(r["waits"]["baseline"][1:]), statistics.median(r["waits"]["views"][1:])
        print(f"{r['pid']:>7}  {b:16.2f}  {v:13.2f}  {v / b:5.2f}   {wb:26.2f}  {wv:5.2f}")
    print("\nrounds (s), baseline | views:")
    for r in sorted(results, key=lambda r: r["pid"]):
        print(
            f"  process {r['pid']}: {' '.join(f'{t:.2f}' for t in r['baseline'])} | "
            f"{' '.join(f'{t:.2f}' for t in r['views'])}"
        )
    zero = next(r for r in results if r["pid"] == 0)
    print("\nprocess 0, own time per render (median of the calls after the first; first call):")
    total = 0.0
    for name, times in zero["render"].items():
        steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
        total += steady
        print(f"  {name:<17} {steady:6.3f} s   (first {times[0]:.2f} s)")
    print(f"  {'all':<17} {total:6.3f} s")


def worker(args: argparse.Namespace) -> int:
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"  # one compute thread per process
    import jax
    from jax.experimental import multihost_utils

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{args.port}", num_processes=2, process_id=args.process_id
    )
    import keras

    import keras_vizcallbacks as kv
    from keras_vizcallbacks import _backend

    distribution = keras.distribution.DataParallel()
    distribution.auto_shard_dataset = False
    keras.distribution.set_distribution(distribution)
    me = jax.process_index()
    _backend.set_random_seed(0)  # the same initial weights on both processes
    train = kv.datasets.shapes(args.train, seed=10 + me)
    val = kv.datasets.shapes(args.val, seed=1)
    names = train.class_names
    model = kv.models.reference_cnn(n_classes=len(names))
    log = os.path.join(args.out, "logs")
    samples = (val.images[:8], val.labels[:8])
    views = [
        kv.FilterGrid(log),
        kv.FeatureMaps(log, samples=samples, class_names=names),
        kv.GradCAM(log, samples=samples, class_names=names),
        kv.Saliency(log, samples=samples, class_names=names),
        kv.DecisionBoundary(log, data=(val.images, val.labels), class_names=names),
        kv.ConfusionMatrix(log, data=(val.images, val.labels), class_names=names),
    ]
    times: dict[str, list[float]] = {"baseline": [], "views": []}
    waits: dict[str, list[float]] = {"baseline": [], "views": []}  # in the barrier, after the fit returned
    epoch = 0
    for _ in range(args.rounds + 1):
        for config in ("baseline", "views"):
            start = time.perf_counter()
            model.fit(
                train.images,
                train.labels,
                batch_size=args.batch,
                initial_epoch=epoch,
                epochs=epoch + 1,
                callbacks=views if config == "views" else [],
                verbose=0,
            )
            fitted = time.perf_counter()
            multihost_utils.sync_global_devices(f"round {epoch}")
            times[config].append(time.perf_counter() - start)
            waits[config].append(time.perf_counter() - fitted)
            epoch += 1
    result = {
        "pid": me,
        **times,
        "waits": waits,
        "render": {type(v).__name__: v.timings for v in views if v.timings},
        "written": sum(len(v.written) for v in views),
    }
    print(json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    return launch(args, argv) if args.process_id is None else worker(args)


if __name__ == "__main__":
    sys.exit(main())
