"""Seeds for fuzz_tf_checkpoint: small checkpoints written by TensorFlow, each packed as the target
reads it ([uint32 index length][.index][.data-00000-of-00001]). Needs TensorFlow, so the seeds are
committed (corpus/fuzz_tf_checkpoint/) rather than made by make_seeds.py; remake them with the
venv of mrcnn_testing.tensorflow_python(): .tfod/venv/bin/python tests/fuzz/make_tf_checkpoint_seeds.py"""
import os
import struct
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = Path(__file__).resolve().parent / "corpus" / "fuzz_tf_checkpoint"


def pack(prefix):
    index = Path(prefix + ".index").read_bytes()
    return struct.pack("<I", len(index)) + index + Path(prefix + ".data-00000-of-00001").read_bytes()


def tf2(folder):
    """Object-based: nested objects, a string, bool, bfloat16 and float16 variable."""
    root = tf.Module()
    root.inner = tf.Module()
    root.inner.w = tf.Variable(np.arange(4, dtype=np.float32).reshape(2, 2), name="w")
    root.inner.text = tf.Variable([b"a", b"", b"xyz"])
    root.flags = tf.Variable([True, False])
    root.half = tf.Variable(tf.constant([1.5, -2.0], tf.bfloat16))
    root.f16 = tf.Variable(np.array([0.5], np.float16))
    return tf.train.Checkpoint(model=root).save(str(folder / "ck"))


def tf1(folder):
    """Name-based (tf.compat.v1 Saver): int32, int64, float64."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(np.array([1, -2], np.int32), name="a/i32"),
                     tf.compat.v1.Variable(np.array([[3]], np.int64), name="a/i64"),
                     tf.compat.v1.Variable(np.array([0.25]), name="b/f64")]
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.train.Saver(variables).save(session, str(folder / "model.ckpt"))


def partitioned(folder):
    """A TF1 variable partitioned in three slices along its second dimension."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("grid", initializer=tf.constant(np.arange(12, dtype=np.float32).reshape(2, 3, 2)),
                                  partitioner=tf.compat.v1.fixed_size_partitioner(3, axis=1))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.train.Saver().save(session, str(folder / "model.ckpt"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, write in [("tf2_object_graph", tf2), ("tf1_saver", tf1), ("tf1_partitioned", partitioned)]:
            (OUT / name).write_bytes(pack(write(Path(tmp) / name)))


if __name__ == "__main__":
    main()
