"""The trusted side's only view of a student's notebook: validated plain data.

Hidden tests ask the ``oracle`` fixture for things (a model's layers, its
weights, its predictions on inputs the test chooses, a variable's value, the
data of plotted curves). Where the answer comes from is the point:

* models and the functions an exercise asks for are answered by a **clean room**
  (``cleanroom.py``), a fresh kernel that rebuilt them from the archives the
  student's kernel saved and from the answer cells' definitions. The student's
  kernel is never asked what a model computes, so its lies earn nothing;
* values and figure data were handed over by the student's kernel after its
  notebook ran (``export.py``): they are claims, and checks treat them so (the
  lines of a figure are compared with what the rebuilt models compute);
* what a model merely records about its training (the optimizer's step count,
  its loss's name) is a claim too, merged into ``describe``.

Every answer of a kernel comes back as JSON or as ``.npy`` bytes whose header is
checked before anything is allocated (``protocol.read_npy``), then for type,
shape and finiteness (``ProbeClient``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import time
from dataclasses import dataclass

import numpy as np

from autograder.sandbox import protocol
from autograder.sandbox.protocol import MAX_ARRAY_BYTES
from autograder.sandbox.session import KernelSession, KernelUnavailable


class OracleError(AssertionError):
    """The notebook could not give a usable answer; the message is for the student.

    An AssertionError so that a test that cannot get its data simply fails with
    this message, like any other failed check.
    """


@dataclass(frozen=True)
class Line:
    label: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Axes:
    title: str
    xlabel: str
    ylabel: str
    lines: tuple[Line, ...]


class ProbeClient:
    """Requests to the probe in one kernel (a student's or a clean room's), with every
    reply validated."""

    def __init__(self, session: KernelSession, timeout: float = 300.0):
        self.session = session
        self.timeout = timeout
        self.seconds = 0.0  # spent waiting for replies (for the benchmarks)
        self._cache: dict[tuple, object] = {}

    # -- what hidden tests call ----------------------------------------------
    def describe(self, name: str) -> dict:
        """Type, class hierarchy, layers and training state of the object ``name``."""
        data, _ = self._cached(protocol.DESCRIBE, {"name": name}, f"the object `{name}`")
        _expect(isinstance(data.get("type"), str) and isinstance(data.get("mro"), list),
                f"`{name}` could not be described")
        if "layers" in data:
            _expect(isinstance(data["layers"], list)
                    and all(isinstance(layer, dict) for layer in data["layers"]),
                    f"the layers of `{name}` could not be read")
        return data

    def weights(self, name: str) -> list[np.ndarray]:
        data, arrays = self._cached(protocol.WEIGHTS, {"name": name}, f"the weights of `{name}`")
        count = data.get("count")
        _expect(isinstance(count, int) and set(arrays) == protocol.numbered(protocol.weight_key,
                                                                            count),
                f"the weights of `{name}` came back incomplete")
        return [_numeric(arrays[protocol.weight_key(i)], f"weight {i} of `{name}`")
                for i in range(count)]

    def save_model(self, name: str, directory: str) -> tuple[str, dict]:
        """Ask the kernel to save ``name`` as a Keras archive; its file name and claims."""
        data, _ = self._ask(protocol.SAVE_MODEL, {"name": name, "directory": directory},
                            f"the model `{name}`")
        file, claims = data.get("file"), data.get("claims")
        _expect(file == name + protocol.ARCHIVE_SUFFIX and isinstance(claims, dict),
                f"the model `{name}` was not saved")
        return file, training_claims(claims)

    def predict(self, name: str, inputs: np.ndarray, *, outputs: int | None = None,
                batch_size: int = 256) -> np.ndarray:
        """``name.predict(inputs)`` in the kernel, as a finite float array (n, outputs)."""
        path = self._send(inputs)
        _, arrays = self._cached(protocol.PREDICT, {"name": name, "inputs": path,
                                             "batch_size": batch_size},
                                 f"predictions of `{name}`")
        return self._shaped(arrays.get("outputs"), name, len(inputs), outputs)

    @staticmethod
    def _shaped(array, name: str, count: int, outputs: int | None) -> np.ndarray:
        """Predictions as a finite float array of shape (count, outputs)."""
        result = _numeric(array, f"predictions of `{name}`")
        want = (count,) if outputs is None else (count, outputs)
        if outputs == 1 and result.shape == (count,):
            result = result[:, None]
        _expect(result.shape[:len(want)] == want,
                f"`{name}` predicted an array of shape {result.shape} for {count} "
                f"inputs; expected {want}")
        return result

    def predict_texts(self, name: str, texts: list[str], *, outputs: int | None = None,
                      batch_size: int = 256) -> np.ndarray:
        """``name.predict`` on a batch of raw strings (e.g. reviews), validated like ``predict``."""
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError("predict_texts takes a list of strings")
        path = self._put(json.dumps(list(texts), ensure_ascii=False).encode("utf-8"), ".json")
        _, arrays = self._cached(protocol.PREDICT_TEXTS, {"name": name, "inputs": path,
                                                   "batch_size": batch_size},
                                 f"predictions of `{name}`")
        return self._shaped(arrays.get("outputs"), name, len(texts), outputs)

    def call(self, name: str, *arrays: np.ndarray, **kwargs) -> list[np.ndarray]:
        """Call the notebook's function ``name`` on arrays; its results as arrays."""
        args = {"name": name, "kwargs": kwargs}
        if arrays:
            args["inputs"] = self._send_many(arrays)
        data, replies = self._cached(protocol.CALL, args, f"the result of `{name}(...)`")
        count = data.get("count")
        _expect(isinstance(count, int) and set(replies) == protocol.numbered(protocol.result_key,
                                                                             count),
                f"`{name}(...)` returned an incomplete result")
        return [_numeric(replies[protocol.result_key(i)], f"result {i} of `{name}`")
                for i in range(count)]

    def value(self, name: str):
        """A variable's value as plain data (number, string, list, dict) or array."""
        data, arrays = self._cached(protocol.VALUE, {"name": name}, f"the value of `{name}`")
        if "array" in arrays:
            return _numeric(arrays["array"], f"`{name}`")
        return data.get("value")

    def figures(self) -> list[list[Axes]]:
        """Every open matplotlib figure: its axes and the data of their lines."""
        data, arrays = self._ask(protocol.FIGURES, {}, "the plotted figures")
        figures = []
        for figure in _list(data.get("figures")):
            axes_list = []
            for axes in _list(_dict(figure).get("axes")):
                axes = _dict(axes)
                lines = []
                for line in _list(axes.get("lines")):
                    line = _dict(line)
                    key = str(line.get("key"))
                    x = _numeric(arrays.get(key + "x"), "plotted x data").ravel()
                    y = _numeric(arrays.get(key + "y"), "plotted y data").ravel()
                    lines.append(Line(str(line.get("label", ""))[:200], x, y))
                axes_list.append(Axes(str(axes.get("title", ""))[:200],
                                      str(axes.get("xlabel", ""))[:200],
                                      str(axes.get("ylabel", ""))[:200], tuple(lines)))
            figures.append(axes_list)
        return figures

    def rendered_figures(self) -> list[bytes]:
        """The open figures as PNG images (at most MAX_FIGURES, each at most MAX_PNG_BYTES)."""
        data, arrays = self._ask(protocol.RENDERED_FIGURES, {}, "pictures of the figures")
        count = data.get("count")
        _expect(isinstance(count, int) and set(arrays) == protocol.numbered(protocol.png_key,
                                                                            count),
                "the figures came back incomplete")
        images = []
        for i in range(min(count, protocol.MAX_FIGURES)):
            raw = arrays[protocol.png_key(i)]
            _expect(raw.dtype == np.uint8 and raw.ndim == 1 and raw.size <= protocol.MAX_PNG_BYTES
                    and raw[:8].tobytes() == b"\x89PNG\r\n\x1a\n", "a figure was not a PNG image")
            images.append(raw.tobytes())
        return images

    # -- transport ------------------------------------------------------------
    def _cached(self, kind: str, args: dict, what: str):
        key = (kind, repr(sorted(args.items())))
        if key not in self._cache:
            self._cache[key] = self._ask(kind, args, what)
        return self._cache[key]

    def _ask(self, kind: str, args: dict, what: str):
        started = time.monotonic()
        try:
            reply = self.session.ask(kind, args, self.timeout)
        except KernelUnavailable as error:
            raise OracleError(f"could not get {what}: {error}") from None
        finally:
            self.seconds += time.monotonic() - started
        if not isinstance(reply, dict):
            raise OracleError(f"could not get {what}: the notebook's answer was malformed")
        if reply.get("ok") is not True:
            raise OracleError(f"could not get {what}: {str(reply.get('error'))[:500]}")
        data = reply.get("data")
        encoded = reply.get("arrays")
        if not isinstance(data, dict) or not isinstance(encoded, dict) \
                or len(encoded) > protocol.MAX_REPLY_ARRAYS:
            raise OracleError(f"could not get {what}: the notebook's answer was malformed")
        return data, {str(k): _decode(v, what) for k, v in encoded.items()}

    def _send(self, array: np.ndarray) -> str:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return self._put(buffer.getvalue(), ".npy")

    def _send_many(self, arrays) -> str:
        buffer = io.BytesIO()
        np.savez(buffer, **{protocol.argument_key(i): np.asarray(a) for i, a in enumerate(arrays)})
        return self._put(buffer.getvalue(), ".npz")

    def _put(self, data: bytes, suffix: str) -> str:
        # Named by content, so the same inputs sent twice hit the oracle's cache.
        name = hashlib.sha256(data).hexdigest()[:32] + suffix
        path = self.session.sandbox.inbox / name
        if not path.exists():
            self.session.put_array_file(name, data)
        return str(path)


def training_claims(claims: dict) -> dict:
    """What a model records about its training, as plain bounded values (still claims)."""
    return {"iterations": claims.get("iterations") if isinstance(claims.get("iterations"), int)
            else 0,
            "optimizer": str(claims.get("optimizer"))[:100]
            if claims.get("optimizer") is not None else None,
            "loss": str(claims.get("loss"))[:protocol.MAX_TEXT]}


def _decode(encoded, what: str) -> np.ndarray:
    if not isinstance(encoded, str) or len(encoded) > (MAX_ARRAY_BYTES + 4096) * 4 // 3 + 4:
        raise OracleError(f"could not get {what}: an array was missing or too large")
    try:
        raw = base64.b64decode(encoded, validate=True)
        return protocol.read_npy(raw)
    except (binascii.Error, protocol.ArrayRefused) as error:
        raise OracleError(f"could not get {what}: an array could not be read ({error})") from None


def _numeric(array, what: str) -> np.ndarray:
    _expect(isinstance(array, np.ndarray) and array.dtype.kind in "biuf",
            f"{what} should be numbers")
    result = array.astype(np.float64) if array.dtype.kind == "f" else array
    _expect(bool(np.all(np.isfinite(result))) if result.dtype.kind == "f" else True,
            f"{what} contains NaN or infinite values")
    return result


def _list(value) -> list:
    _expect(isinstance(value, list), "the notebook's answer was malformed")
    return value


def _dict(value) -> dict:
    _expect(isinstance(value, dict), "the notebook's answer was malformed")
    return value


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise OracleError(message)


class Oracle:
    """What checks ask: models and definitions from the clean rooms, values and figures
    from what the student's kernel handed over (see the module's docstring)."""

    def __init__(self, export, rooms):
        self.export = export  # export.Export
        self.rooms = rooms    # cleanroom.CleanRooms

    # -- models and functions: the clean rooms ------------------------------------
    def describe(self, name: str) -> dict:
        """The rebuilt model's type, layers and parameters, plus what the student's model
        recorded about its training (``iterations``, ``optimizer``, ``loss``: claims)."""
        description = dict(self._room_for(name).describe(name))
        description.update(self.export.claims.get(name, {}))
        return description

    def weights(self, name: str) -> list[np.ndarray]:
        return self._room_for(name).weights(name)

    def predict(self, name: str, inputs: np.ndarray, **options) -> np.ndarray:
        return self._room_for(name).predict(name, inputs, **options)

    def predict_texts(self, name: str, texts: list[str], **options) -> np.ndarray:
        # Refused before a room is set up for it (the client checks again what it sends).
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError("predict_texts takes a list of strings")
        return self._room_for(name).predict_texts(name, texts, **options)

    def call(self, name: str, *arrays: np.ndarray, **kwargs) -> list[np.ndarray]:
        """The exercise's function ``name``, as the answer cell defines it, run in its room.
        A failure names what the room left out of the answer (an import of a module the
        week does not allow surfaces as a NameError, say)."""
        client = self._room_for(name)
        try:
            return client.call(name, *arrays, **kwargs)
        except OracleError as error:
            notes = self.rooms.room(self.rooms.key_of(name)).notes
            raise OracleError(str(error) + _notes(notes)) from None

    # -- values and figures: handed over by the student's kernel (claims) ------------
    def value(self, name: str):
        if name in self.export.problems:
            raise OracleError(self.export.problems[name])
        if name not in self.export.values:
            raise KeyError(f"`{name}` is not among the week's exported values (week.toml)")
        return self.export.values[name]

    def number(self, name: str) -> float:
        found = self.value(name)
        if isinstance(found, np.ndarray) and found.size == 1:
            found = found.reshape(()).item()
        _expect(isinstance(found, (int, float)) and not isinstance(found, bool)
                and np.isfinite(found), f"`{name}` should be a finite number, got {found!r:.60}")
        return float(found)

    def figures(self) -> list[list[Axes]]:
        if "figures" in self.export.problems:
            raise OracleError(self.export.problems["figures"])
        if self.export.figures is None:
            raise KeyError("the week does not export figures (week.toml: [exports] figures)")
        return self.export.figures

    def rendered_figures(self) -> list[bytes]:
        return list(self.export.images)

    # -- routing ------------------------------------------------------------------------
    def _room_for(self, name: str) -> ProbeClient:
        if name in self.export.problems:
            raise OracleError(self.export.problems[name])
        room = self.rooms.room(self.rooms.key_of(name))
        if room.problem:
            raise OracleError(room.problem + _notes(room.notes))
        if isinstance(room.load_errors, dict) and name in room.load_errors:
            raise OracleError(f"could not rebuild `{name}` from the saved model: "
                              f"{str(room.load_errors[name])[:300]}" + _notes(room.notes))
        return room.client


def _notes(notes: list[str]) -> str:
    return ("; from your answer, " + "; ".join(notes[:3])) if notes else ""
