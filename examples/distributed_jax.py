"""Every view under JAX's distribution API, on one machine: one process or several.

By default the script starts two processes of itself on 127.0.0.1 (``jax.distributed`` with gloo CPU
collectives), each with one CPU device, and trains with ``keras.distribution.DataParallel``: the
weights are replicated, each process feeds its own batch, gradients are all-reduced. Only process 0
renders the views (``render_on="chief"``, the default), from its own copy of the weights; process 1
runs the same script with the same callbacks and renders nothing. With ``--processes 1`` one process
trains over ``--devices`` virtual CPU devices, with DataParallel or (``--layout model``) a
ModelParallel layout that splits the conv kernels over the devices.

    python examples/distributed_jax.py                                  # 2 processes, DataParallel
    python examples/distributed_jax.py --processes 1 --devices 2 --layout model
    python examples/distributed_jax.py --small                          # 2 epochs on a few hundred images
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

Each run writes a new logs/jax_dp-<timestamp> (jax_mp with --layout model), one directory for the
whole job; --logdir DIR picks one.

On a real cluster each host runs the worker part (``--process-id``, ``--port`` and the coordinator's
address) once; JAX can also find them itself (``jax.distributed.initialize()`` on SLURM, TPU pods).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="few images and 2 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="default 6, 2 with --small")
    parser.add_argument("--processes", type=int, default=2, help="JAX processes on this machine (default 2)")
    parser.add_argument("--devices", type=int, default=1, help="virtual CPU devices per process (default 1)")
    parser.add_argument("--layout", choices=["data", "model"], default="data", help="model: one process only")
    parser.add_argument("--logdir", default=None, help="default: a new logs/jax_dp-<timestamp> (jax_mp)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before the launcher stops the processes")
    parser.add_argument("--process-id", type=int, default=None, help=argparse.SUPPRESS)  # set by the launcher
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.layout == "model" and args.processes > 1:
        parser.error(
            "--layout model needs --processes 1: the views render on one process, which must hold the "
            "whole weights (ModelParallel across processes is refused at train begin)"
        )
    if args.logdir is None and args.process_id is None:  # the launcher (or a lone process) names it once
        from keras_vizcallbacks.demo import new_log_dir

        args.logdir = new_log_dir("jax_mp" if args.layout == "model" else "jax_dp")
    return args


def launch(args: argparse.Namespace, argv: list[str]) -> int:
    """Start ``--processes`` copies of this script as one JAX job; wait (bounded); stop them all in any outcome."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = [*argv, "--logdir", args.logdir, "--port", str(port)]  # one log directory for every process
    procs = [
        subprocess.Popen([sys.executable, __file__, *common, "--process-id", str(i)]) for i in range(args.processes)
    ]
    deadline = time.monotonic() + args.timeout
    try:
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline or any(p.returncode not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    if any(codes):
        print(f"the processes ended with exit codes {codes}", file=sys.stderr)
        return 1
    print(f"\ntensorboard --logdir {args.logdir} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


def worker(args: argparse.Namespace) -> int:
    # Both must be set before JAX starts: the virtual devices, and the backend of Keras.
    if args.devices > 1:
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    os.environ["KERAS_BACKEND"] = "jax"
    import jax

    if args.processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{args.port}",
            num_processes=args.processes,
            process_id=args.process_id,
            initialization_timeout=120,
        )
    import keras

    import keras_vizcallbacks as kv
    from keras_vizcallbacks import _backend  # set_random_seed without importing TensorFlow under JAX

    devices = keras.distribution.list_devices()
    if args.layout == "data":
        distribution = keras.distribution.DataParallel(devices=devices)
        distribution.auto_shard_dataset = False  # numpy inputs: every process feeds its own batches
    else:
        mesh = keras.distribution.DeviceMesh((1, len(devices)), ["batch", "model"], devices)
        layouts = keras.distribution.LayoutMap(mesh)
        layouts[".*conv2d.*/kernel"] = (None, None, None, "model")  # conv kernels split by output channel
        distribution = keras.distribution.ModelParallel(layout_map=layouts, batch_dim_name="batch")
    keras.distribution.set_distribution(distribution)
    me = jax.process_index()
    print(f"process {me} of {jax.process_count()}: {len(devices)} devices in the job, {jax.local_device_count()} here")

    epochs = args.epochs or (2 if args.small else 6)
    n_train, n_val = (256, 64) if args.small else (2000, 400)
    # Every process must build the same initial weights: the same seed everywhere.
    _backend.set_random_seed(0)
    train = kv.datasets.shapes(n_train, seed=10 + me)  # each process its own share of the data
    val = kv.datasets.shapes(n_val, seed=1)
    names = train.class_names
    model = kv.models.reference_cnn(n_classes=len(names))

    log = args.logdir  # the same path on every process: only process 0 writes there
    samples = (val.images[:8], val.labels[:8])
    callbacks = [
        kv.FilterGrid(log),
        kv.FeatureMaps(log, samples=samples, class_names=names, max_samples=4),
        kv.GradCAM(log, samples=samples, class_names=names),
        kv.Saliency(log, samples=samples, class_names=names),
        kv.DecisionBoundary(log, data=(val.images, val.labels), class_names=names),
        kv.ConfusionMatrix(log, data=(val.images, val.labels), class_names=names),
    ]
    model.fit(
        train.images, train.labels, batch_size=64, epochs=epochs, callbacks=callbacks, verbose=2 if me == 0 else 0
    )
    rendered = sum(len(c.written) for c in callbacks)
    print(f"process {me}: {'rendered ' + str(rendered) + ' images' if rendered else 'rendered nothing'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if args.processes > 1 and args.process_id is None:
        return launch(args, argv)
    return worker(args)


if __name__ == "__main__":
    sys.exit(main())
