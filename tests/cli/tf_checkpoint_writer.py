"""Writes TF checkpoints of every kind mrcnn reads, with TensorFlow itself, and what TF reads back
from them (so the tests compare mrcnn's reader with TF's, bit for bit). Run by the TF venv's Python
(see mrcnn_testing.tensorflow_python): python tf_checkpoint_writer.py OUT

OUT/<case>/... the checkpoint; OUT/<case>.expected/manifest.json: [{key, dtype, shape, file |
strings_hex}] as TF's own reader returns them, plus {key: full_name} of the object graph in
OUT/<case>.expected/full_names.json for TF2 checkpoints."""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf-keras, as the TF OD API needs
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import trackable_object_graph_pb2  # noqa: E402

RNG = np.random.default_rng(0)


def every_dtype():
    """One variable of each dtype the reader supports; values chosen to catch byte-order and width slips."""
    return {
        "f32": tf.Variable(RNG.standard_normal((3, 4)).astype(np.float32)),
        "f16": tf.Variable(RNG.standard_normal(5).astype(np.float16)),
        "bf16": tf.Variable(tf.constant(RNG.standard_normal((2, 3)), tf.bfloat16)),
        "f64": tf.Variable(RNG.standard_normal((2, 2, 2))),
        "i32": tf.Variable(np.array([-(2**31), 2**31 - 1, 7], np.int32)),
        "i64": tf.Variable(np.array([[-(2**63), 2**63 - 1]], np.int64)),
        "flags": tf.Variable([True, False, True, True]),
        "text": tf.Variable([[b"", b"a"], [b"\x00\xff binary", "\u00e9t\u00e9".encode()], [b"tail\x00", b"\n"]]),
        "scalar_text": tf.Variable(b"x" * 300),  # a length that needs a two-byte varint
        "big": tf.Variable(np.arange(4096, dtype=np.float32) * 0.25 + 1000.0),  # findable in the shard
    }


class Block(tf.Module):
    def __init__(self, depth):
        super().__init__()
        self.kernel = tf.Variable(RNG.standard_normal((2, 2)).astype(np.float32), name=f"block{depth}_kernel")
        self.child = Block(depth + 1) if depth < 2 else None


def keras_model():
    """A small Keras model after one Adam step: layer_with_weights-N keys and optimizer slot variables
    (the legacy optimizer, as the TF OD API's checkpoints have them)."""
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Dense(4, input_shape=(3,)), tf.keras.layers.BatchNormalization(),
                                 tf.keras.layers.Dense(2, name="head")])
    optimizer = tf.keras.optimizers.legacy.Adam()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(tf.ones((2, 3)), training=True) ** 2)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return model, optimizer


def write_tf2(out):
    model, optimizer = keras_model()
    module = tf.Module()
    module.values = every_dtype()
    module.nested = Block(0)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, values=module, step=tf.Variable(3, dtype=tf.int64))
    return checkpoint.save(str(out / "tf2" / "ckpt"))


def write_tf1(out, sharded):
    """tf.compat.v1.train.Saver in graph mode; sharded saves one shard per device (two CPU devices)."""
    name = "tf1_sharded" if sharded else "tf1"
    values = {key: v.numpy() for key, v in every_dtype().items()}  # eager, before the graph
    graph = tf.Graph()
    with graph.as_default():
        variables = []
        for i, (key, value) in enumerate(values.items()):
            with tf.device(f"/cpu:{i % 2}"), tf.compat.v1.variable_scope("scope"):
                variables.append(tf.compat.v1.Variable(tf.constant(value), name=key))
        saver = tf.compat.v1.train.Saver(variables, sharded=sharded)
        config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
        with tf.compat.v1.Session(graph=graph, config=config) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            (out / name).mkdir(parents=True, exist_ok=True)  # sharded saves do not create it
            return saver.save(session, str(out / name / "model.ckpt"))


def write_partitioned(out):
    """A TF1 partitioned variable: saved as three slices (of unequal size) under encoded keys."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("emb", initializer=tf.constant(np.arange(14, dtype=np.float32).reshape(7, 2)),
                                  partitioner=tf.compat.v1.fixed_size_partitioner(3))
        tf.compat.v1.get_variable("grid", initializer=tf.constant(RNG.standard_normal((7, 3, 5))),
                                  partitioner=tf.compat.v1.fixed_size_partitioner(3, axis=1))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.train.Saver().save(session, str(out / "partitioned" / "model.ckpt"))


def write_saved_model(out):
    module = tf.Module()
    module.values = every_dtype()
    module.double = tf.function(lambda x: 2 * x, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(out / "saved_model"))
    return str(out / "saved_model" / "variables" / "variables")


def expected(prefix, target):
    """What TF's own reader returns for every key, in tf_checkpoint_dump's manifest format."""
    target.mkdir(parents=True)
    reader = tf.train.load_checkpoint(prefix)
    dtypes, shapes = reader.get_variable_to_dtype_map(), reader.get_variable_to_shape_map()
    manifest = []
    for i, key in enumerate(sorted(shapes)):
        value = reader.get_tensor(key)
        row = {"key": key, "dtype": dtypes[key].name, "shape": list(shapes[key])}
        if dtypes[key] == tf.string:  # object arrays: numpy's fixed-width bytes would drop trailing NULs
            row["strings_hex"] = [bytes(s).hex() for s in np.asarray(value, dtype=object).reshape(-1)]
        else:
            row["file"] = f"{i}.bin"
            (target / row["file"]).write_bytes(np.asarray(value).tobytes())
        manifest.append(row)
    (target / "manifest.json").write_text(json.dumps(manifest))
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes:
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        names = {a.checkpoint_key: a.full_name for node in graph.nodes for a in node.attributes}
        (target / "full_names.json").write_text(json.dumps(names))


def main():
    out = Path(sys.argv[1])
    prefixes = {"tf2": write_tf2(out), "tf1": write_tf1(out, False), "tf1_sharded": write_tf1(out, True),
                "saved_model": write_saved_model(out), "partitioned": write_partitioned(out)}
    for case, prefix in prefixes.items():
        expected(prefix, out / f"{case}.expected")
    (out / "prefixes.json").write_text(json.dumps(prefixes))


if __name__ == "__main__":
    main()
