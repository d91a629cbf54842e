"""Checking a model archive the student's kernel saved, before anything loads it.

A model crosses the trust boundary as a Keras archive (``model.save``: a zip of
``config.json``, ``metadata.json``, ``model.weights.h5`` and assets such as a
TextVectorization vocabulary). The clean room loads it with Keras' safe mode, but
safe mode alone is not an allowlist, so the archive is read here first, as data:

* zip safety: only the members Keras writes, no absolute paths, ``..`` or links,
  a cap on what they unpack to;
* the Keras version it was saved with is the grader's;
* every object its config names (layers, initializers, regularizers, activations,
  dtype policies) is one of Keras' own from an allowlist, or a class that the
  exercise asks students to define and the room defines from their answer cell.
  A Lambda layer, a TFSMLayer, a legacy ``.h5`` model, a custom layer, a function
  serialized by name from anywhere else: refused, with a message naming it.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from dataclasses import dataclass
from importlib.metadata import version

from autograder.sandbox.protocol import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_UNPACKED

# Keras' own layers that rebuild from their config alone (no code, no graph).
LAYERS = frozenset({
    "InputLayer", "Sequential", "Functional",
    "Dense", "EinsumDense", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "Identity", "Flatten", "Reshape", "Permute", "RepeatVector", "Cropping1D", "Cropping2D",
    "ZeroPadding1D", "ZeroPadding2D", "UpSampling1D", "UpSampling2D",
    "Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
    "DepthwiseConv2D", "Conv1DTranspose", "Conv2DTranspose",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout", "GaussianNoise",
    "AlphaDropout", "ActivityRegularization",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "Normalization", "Rescaling", "Resizing", "CenterCrop",
    "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast",
    "RandomCrop", "RandomBrightness",
    "Embedding", "TextVectorization", "StringLookup", "IntegerLookup", "CategoryEncoding",
    "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "Bidirectional",
    "TimeDistributed", "Masking", "Attention", "MultiHeadAttention",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
})
# Non-layer objects of Keras a layer's config may hold.
MODULES = {
    "keras": None,  # DTypePolicy, Sequential/Functional (class names checked below)
    "keras.layers": LAYERS,
    "keras.models": frozenset({"Sequential", "Functional", "Model"}),
    "keras.src.models.functional": frozenset({"Functional"}),
    "keras.src.models.sequential": frozenset({"Sequential"}),
    "keras.initializers": None,
    "keras.regularizers": None,
    "keras.constraints": None,
    "keras.activations": None,
}
KERAS_OBJECTS = frozenset({"DTypePolicy", "FloatDTypePolicy", "Sequential", "Functional",
                           "Model"})
# Markers of Keras' own serialization format (a functional model's wiring, constants).
MARKERS = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__tuple__"})
# What may sit in the archive (Keras writes exactly these).
MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
ASSETS = "assets/"
# Function-valued settings are serialized by name; only Keras' own built-ins load.
FUNCTION_MODULES = frozenset({"keras.activations", "keras.initializers"})
# Settings that name a function: a name, None, or Keras' own function object; a Python
# function (a lambda is saved as its bytecode) is refused.
CALLABLE_KEYS = frozenset({"activation", "recurrent_activation", "standardize", "split",
                           "function"})
# Keras' operations in a functional model (x * 2, ops.mean): rebuilt from their names.
OPS_MODULE = "keras.src.ops."


class ArchiveRefused(Exception):
    """The archive will not be loaded; the message is for the student."""


@dataclass(frozen=True)
class CheckedArchive:
    data: bytes
    classes: tuple[str, ...]  # every class it names, for the TA's log


def check_archive(data: bytes, name: str, *, own_classes: frozenset = frozenset(),
                  layers: frozenset = LAYERS) -> CheckedArchive:
    """``data`` if it is a Keras archive the clean room may load, else ArchiveRefused."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveRefused(f"`{name}` saves to {len(data) / 2**20:.0f} MB, over the limit of "
                             f"{MAX_ARCHIVE_BYTES / 2**20:.0f} MB: use a smaller model")
    if data[:8] == b"\x89HDF\r\n\x1a\n":
        raise ArchiveRefused(f"`{name}` came as a legacy HDF5 (.h5) model, which is not "
                             "accepted: keep it as a Keras model in the notebook")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ArchiveRefused(f"`{name}` could not be saved as a Keras archive ({error})") from None
    unpacked = 0
    for member in members:
        filename = member.filename
        mode = member.external_attr >> 16
        if (filename.startswith("/") or ".." in filename.split("/") or "\\" in filename
                or stat.S_ISLNK(mode) or (filename not in MEMBERS
                                          and not filename.startswith(ASSETS))):
            raise ArchiveRefused(f"the archive of `{name}` holds an unexpected member "
                                 f"{filename[:100]!r}")
        unpacked += member.file_size
    if unpacked > MAX_ARCHIVE_UNPACKED:
        raise ArchiveRefused(f"the archive of `{name}` unpacks to {unpacked / 2**20:.0f} MB, "
                             f"over the limit of {MAX_ARCHIVE_UNPACKED / 2**20:.0f} MB")
    names = {member.filename for member in members}
    if not {"config.json", "metadata.json"} <= names:
        raise ArchiveRefused(f"the archive of `{name}` lacks its config or metadata")
    try:
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json"))
    except Exception as error:  # bad JSON, a corrupt or unsupported member
        raise ArchiveRefused(f"the archive of `{name}` is unreadable ({error})") from None
    saved_with = metadata.get("keras_version") if isinstance(metadata, dict) else None
    if saved_with != version("keras"):
        raise ArchiveRefused(f"`{name}` was saved with Keras {str(saved_with)[:20]}; the grader "
                             f"uses Keras {version('keras')} (the course's environment)")
    classes: list[str] = []
    top = config if isinstance(config, dict) else {}
    top = {key: value for key, value in top.items() if key != "compile_config"}
    _check_objects(top, name, own_classes, layers, classes, top_level=True)
    return CheckedArchive(data, tuple(sorted(set(classes))))


def _check_objects(node, name: str, own: frozenset, layers: frozenset, seen: list, *,
                   top_level: bool = False, depth: int = 0) -> None:
    if depth > 64:
        raise ArchiveRefused(f"the config of `{name}` is nested too deeply")
    if isinstance(node, list):
        for item in node:
            _check_objects(item, name, own, layers, seen, depth=depth + 1)
        return
    if not isinstance(node, dict):
        return
    if "class_name" in node:
        _check_object(node, name, own, layers, top_level)
        seen.append(str(node.get("class_name")))
    for key, value in node.items():
        if key in ("compile_config",):  # loaded with compile=False: never deserialized
            continue
        if key in CALLABLE_KEYS and not (value is None or isinstance(value, str) or (
                isinstance(value, dict) and "class_name" in value)):
            raise ArchiveRefused(
                f"`{name}` uses a Python function (such as a lambda) as its {key}: only Keras' "
                f"built-in ones can be rebuilt; pass it by name, e.g. {key}=\"relu\"")
        _check_objects(value, name, own, layers, seen, depth=depth + 1)


def _check_object(node: dict, name: str, own: frozenset, layers: frozenset,
                  top_level: bool) -> None:
    class_name = node.get("class_name")
    module = node.get("module")
    registered = node.get("registered_name")
    if not isinstance(class_name, str):
        raise ArchiveRefused(f"the config of `{name}` is malformed")
    if top_level and module is None and class_name in own and registered in (None, class_name):
        return  # the exercise's own class, defined in the room from the answer cell
    if module is None and class_name in MARKERS:
        return
    if class_name in ("Lambda", "TFSMLayer"):
        raise ArchiveRefused(
            f"`{name}` uses a {class_name} layer, which runs code the grader cannot check: use "
            "Keras' built-in layers instead (e.g. Rescaling, Reshape, Activation)")
    if class_name == "function":
        if module in FUNCTION_MODULES and isinstance(node.get("config"), str):
            return
        raise ArchiveRefused(
            f"`{name}` uses the function `{str(node.get('config'))[:60]}` "
            f"(from {module}) as a setting: only Keras' built-in activations and "
            "initializers can be rebuilt; pass them by name, e.g. activation=\"relu\"")
    if isinstance(module, str) and module.startswith(OPS_MODULE) and registered == class_name:
        return
    if module in MODULES and registered in (None, class_name):
        allowed = layers if module == "keras.layers" else MODULES[module]
        if allowed is None and module == "keras":
            allowed = KERAS_OBJECTS
        if allowed is None or class_name in allowed:
            return
    where = "a class defined in the notebook" if not module or str(module).startswith(
        "__main__") else f"{module}"
    raise ArchiveRefused(
        f"`{name}` uses the layer or object {class_name} ({where}), which the grader cannot "
        "rebuild safely: use Keras' built-in layers (Dense, Conv2D, LSTM, Dropout, ...) and "
        "pass activations and initializers by name")
