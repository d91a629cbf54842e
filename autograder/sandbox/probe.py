"""Answers the grader's questions from inside the student's kernel.

This file's source is sent to the kernel before the student's first cell (after
``protocol.py``'s, executed into a private namespace: see ``execute.probe_source``);
it registers a comm target and leaves no names behind. It is *not* trusted: student code can
replace or break it, and the grader treats every answer as untrusted data. Its
only job is to turn live objects into plain data: JSON values and arrays as
``.npy`` bytes, which the grader loads without pickle and validates.

Requests arrive as Jupyter comm messages (target ``autograder.probe``), not as
code to execute: IPython's input transformers, AST transformers and cell hooks,
which student code can install, never see them. The answer is sent back on the
same comm.

The same probe answers in a clean room (``autograder/grading/cleanroom.py``), a
fresh kernel that loads the models the student's kernel saved; the student's own
kernel is only asked to save its models and report its values and figures.
"""


def _answerer(protocol):
    """``answer(request) -> reply``: the probe's handlers, over the kernel's namespace."""
    import base64
    import io
    import os
    import numpy as np
    from IPython import get_ipython

    user_ns = get_ipython().user_ns

    def lookup(name):
        if name not in user_ns:
            raise LookupError(f"the notebook defines no variable named `{name}`")
        return user_ns[name]

    def to_array(value):
        if hasattr(value, "numpy"):
            value = value.numpy()
        return np.asarray(value)

    def encode(array):
        buffer = io.BytesIO()
        np.save(buffer, to_array(array), allow_pickle=False)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def plain(value):
        """JSON-able copy of numbers, strings, lists and dicts; arrays become lists."""
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        array = to_array(value)
        if array.dtype.kind in "biuf":
            return array.tolist()
        raise TypeError(f"a value of type {type(value).__name__} is not plain data")

    def layer_info(layer):
        config = layer.get_config()
        info = {"class_name": type(layer).__name__, "name": layer.name,
                "params": int(layer.count_params()) if layer.built else 0}
        for key in ("units", "filters", "kernel_size", "pool_size", "strides", "rate",
                    "return_sequences", "output_dim", "input_dim", "max_tokens",
                    "output_mode", "ngrams", "kernel_regularizer", "activity_regularizer",
                    "bias_regularizer"):
            if key in config:
                info[key] = plain(config[key]) if not isinstance(config[key], dict) \
                    else config[key].get("class_name", str(config[key]))
        activation = config.get("activation")
        if activation is not None:
            info["activation"] = activation if isinstance(activation, str) else \
                getattr(activation, "__name__", str(activation))
        for attr in ("layer", "forward_layer"):  # wrappers such as Bidirectional
            if hasattr(layer, attr):
                info["wrapped"] = type(getattr(layer, attr)).__name__
        try:
            info["output_shape"] = plain(layer.output.shape)
        except Exception:
            pass
        if isinstance(getattr(layer, "layers", None), list):  # a model used as a layer
            info["layers"] = [layer_info(inner) for inner in layer.layers]
        return info

    def describe(name):
        model = lookup(name)
        kind = [c.__module__ + "." + c.__name__ for c in type(model).__mro__]
        info = {"type": type(model).__name__, "mro": kind}
        if hasattr(model, "layers") and hasattr(model, "count_params"):
            layers = [layer_info(layer) for layer in model.layers]
            optimizer = getattr(model, "optimizer", None)
            iterations = getattr(optimizer, "iterations", None) if optimizer else None
            info.update(
                layers=layers,
                params=int(model.count_params()) if model.built else 0,
                built=bool(model.built),
                optimizer=type(optimizer).__name__ if optimizer is not None else None,
                iterations=int(to_array(iterations)) if iterations is not None else 0,
                loss=str(getattr(model, "loss", None)),
            )
        return info, {}

    def weights(name):
        model = lookup(name)
        return {"count": len(model.get_weights())}, {
            protocol["weight_key"](i): w for i, w in enumerate(model.get_weights())}

    def save_model(name, directory):
        """Save ``name`` as a Keras archive (architecture, weights, assets) into the
        sandbox's outbox; report what the model merely records about its training."""
        import keras

        model = lookup(name)
        if not isinstance(model, keras.Model):
            raise TypeError(f"`{name}` is a {type(model).__name__}, not a Keras model")
        path = os.path.join(directory, name + protocol["ARCHIVE_SUFFIX"])
        # Keras stages assets in temporary folders: keep them in the outbox, which the
        # grader emptied, so a notebook that filled its scratch space can still save.
        import tempfile
        saved_tempdir, tempfile.tempdir = tempfile.tempdir, directory
        try:
            model.save(path)
        finally:
            tempfile.tempdir = saved_tempdir
        optimizer = getattr(model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None) if optimizer is not None else None
        claims = {"optimizer": type(optimizer).__name__ if optimizer is not None else None,
                  "iterations": int(to_array(iterations)) if iterations is not None else 0,
                  "loss": str(getattr(model, "loss", None))}
        return {"file": os.path.basename(path), "claims": claims}, {}

    def predict(name, inputs, batch_size=256):
        model = lookup(name)
        data = np.load(inputs, allow_pickle=False)
        return {}, {"outputs": model.predict(data, batch_size=batch_size, verbose=0)}

    def predict_texts(name, inputs, batch_size=256):
        """``predict`` on a batch of strings (a JSON list the grader wrote to the inbox)."""
        import json
        import tensorflow as tf

        model = lookup(name)
        with open(inputs, encoding="utf-8") as handle:
            texts = json.load(handle)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise TypeError("the texts to predict on were not a list of strings")
        batch = tf.constant(texts)
        try:
            rank = len(model.inputs[0].shape)
        except Exception:  # a subclassed model has no declared inputs
            rank = 1
        if rank == 2:  # keras.Input(shape=(1,), dtype="string"): one string per row
            batch = tf.reshape(batch, (-1, 1))
        return {}, {"outputs": model.predict(batch, batch_size=batch_size, verbose=0)}

    def call(name, inputs=None, kwargs=None):
        function = lookup(name)
        args = []
        if inputs:
            with np.load(inputs, allow_pickle=False) as files:
                args = [files[protocol["argument_key"](i)] for i in range(len(files.files))]
        result = function(*args, **(kwargs or {}))
        if isinstance(result, (list, tuple)):
            return {"count": len(result)}, {protocol["result_key"](i): r
                                            for i, r in enumerate(result)}
        return {"count": 1}, {protocol["result_key"](0): result}

    def value(name):
        found = lookup(name)
        try:
            return {"value": plain(found)}, {}
        except TypeError:
            pass
        array = to_array(found)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` is a {type(found).__name__}, not plain data "
                            "(a number, string, list or array)")
        return {"value": None}, {"array": array}

    def figures():
        import matplotlib.pyplot as plt

        result, arrays = [], {}
        for number in plt.get_fignums():
            figure = plt.figure(number)
            axes_info = []
            for a, axes in enumerate(figure.axes):
                lines = []
                for l, line in enumerate(axes.get_lines()):
                    key = protocol["line_key"](number, a, l)
                    arrays[key + "x"] = np.asarray(line.get_xdata(), dtype=float)
                    arrays[key + "y"] = np.asarray(line.get_ydata(), dtype=float)
                    lines.append({"label": str(line.get_label()), "key": key})
                axes_info.append({"title": axes.get_title(), "xlabel": axes.get_xlabel(),
                                  "ylabel": axes.get_ylabel(), "lines": lines})
            result.append({"number": number, "axes": axes_info})
        return {"figures": result}, arrays

    def rendered_figures(limit=protocol["MAX_FIGURES"]):
        """The open figures as PNG bytes, for the student's feedback page."""
        import io as _io
        import matplotlib.pyplot as plt

        arrays = {}
        for i, number in enumerate(plt.get_fignums()[:limit]):
            buffer = _io.BytesIO()
            plt.figure(number).savefig(buffer, format="png", dpi=72)
            arrays[protocol["png_key"](i)] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        return {"count": len(arrays)}, arrays

    handlers = {protocol["DESCRIBE"]: describe, protocol["WEIGHTS"]: weights,
                protocol["PREDICT"]: predict, protocol["PREDICT_TEXTS"]: predict_texts,
                protocol["RENDERED_FIGURES"]: rendered_figures, protocol["CALL"]: call,
                protocol["VALUE"]: value, protocol["FIGURES"]: figures,
                protocol["SAVE_MODEL"]: save_model}
    assert set(handlers) == set(protocol["KINDS"])

    def answer(request):
        reply = {"id": request.get("id")}
        try:
            handler = handlers[request["kind"]]
            data, arrays = handler(**request.get("args", {}))
            reply.update(ok=True, data=plain(data),
                         arrays={k: encode(v) for k, v in arrays.items()})
        except Exception as error:  # reported to the grader as plain text
            reply.update(ok=False, error=f"{type(error).__name__}: {error}"[:protocol["MAX_TEXT"]])
        return reply

    return answer


def _register(protocol, answer):
    """Answer the grader's comm requests (the sandbox); a student's own kernel, saving its
    bundle, calls ``answer`` directly instead (``autograder/student.py``)."""
    from IPython import get_ipython

    def on_open(comm, message):
        comm.send(answer(message["content"]["data"]))
        comm.close()

    get_ipython().kernel.comm_manager.register_target(protocol["PROBE_TARGET"], on_open)
