"""_quiet: TensorFlow's start-up lines hidden in our entry points (fd-level), shown with verbose, errors kept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, **env}
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # not what keeps it quiet
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180, env=environ
    )


def test_quiet_stderr_hides_c_level_and_python_writes_and_replays_them_on_error():
    proc = _run(
        """
        import os, sys
        from keras_vizcallbacks._quiet import quiet_stderr
        with quiet_stderr():
            os.write(2, b"from C\\n")
            print("from Python", file=sys.stderr)
        with quiet_stderr(enabled=False):
            os.write(2, b"shown when disabled\\n")
        print("after", file=sys.stderr)
        try:
            with quiet_stderr():
                os.write(2, b"said before the failure\\n")
                raise ImportError("broken install")
        except ImportError:
            print("caught", file=sys.stderr)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["shown when disabled", "after", "said before the failure", "caught"]


def test_start_framework_prints_no_tensorflow_startup_lines():
    pytest.importorskip("tensorflow")
    proc = _run(
        """
        import sys
        from keras_vizcallbacks._quiet import start_framework
        keras = start_framework()
        import tensorflow as tf
        tf.constant(1.0) + 1  # the first op: nothing more to say either
        print(keras.backend.backend())
        """,
        KERAS_BACKEND="tensorflow",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tensorflow"
    assert proc.stderr == ""
