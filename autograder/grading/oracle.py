"""The trusted side's only view of a student's notebook: validated plain data.

Hidden tests ask the ``oracle`` fixture for things (a model's layers, its
weights, its predictions on inputs the test chooses, a variable's value, the
data of plotted curves). Every answer comes back as JSON or as ``.npy`` bytes
loaded with ``allow_pickle=False``, is checked for type, shape and finiteness,
and is otherwise treated as a claim: scores are computed here, from labels and
reference values the kernel never sees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from dataclasses import dataclass

import numpy as np

from autograder.sandbox.session import KernelSession, KernelUnavailable

MAX_ARRAY_BYTES = 256 * 2**20


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


class Oracle:
    def __init__(self, session: KernelSession, timeout: float = 300.0):
        self.session = session
        self.timeout = timeout
        self._cache: dict[tuple, object] = {}

    # -- what hidden tests call ----------------------------------------------
    def describe(self, name: str) -> dict:
        """Type, class hierarchy, layers and training state of the object ``name``."""
        data, _ = self._cached("describe", {"name": name}, f"the object `{name}`")
        _expect(isinstance(data.get("type"), str) and isinstance(data.get("mro"), list),
                f"`{name}` could not be described")
        if "layers" in data:
            _expect(isinstance(data["layers"], list)
                    and all(isinstance(layer, dict) for layer in data["layers"]),
                    f"the layers of `{name}` could not be read")
        return data

    def weights(self, name: str) -> list[np.ndarray]:
        data, arrays = self._cached("weights", {"name": name}, f"the weights of `{name}`")
        count = data.get("count")
        _expect(isinstance(count, int) and set(arrays) == {f"w{i}" for i in range(count)},
                f"the weights of `{name}` came back incomplete")
        return [_numeric(arrays[f"w{i}"], f"weight {i} of `{name}`") for i in range(count)]

    def predict(self, name: str, inputs: np.ndarray, *, outputs: int | None = None,
                batch_size: int = 256) -> np.ndarray:
        """``name.predict(inputs)`` in the kernel, as a finite float array (n, outputs)."""
        path = self._send(inputs)
        _, arrays = self._cached("predict", {"name": name, "inputs": path,
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
        _, arrays = self._cached("predict_texts", {"name": name, "inputs": path,
                                                   "batch_size": batch_size},
                                 f"predictions of `{name}`")
        return self._shaped(arrays.get("outputs"), name, len(texts), outputs)

    def call(self, name: str, *arrays: np.ndarray, **kwargs) -> list[np.ndarray]:
        """Call the notebook's function ``name`` on arrays; its results as arrays."""
        args = {"name": name, "kwargs": kwargs}
        if arrays:
            args["inputs"] = self._send_many(arrays)
        data, replies = self._cached("call", args, f"the result of `{name}(...)`")
        count = data.get("count")
        _expect(isinstance(count, int) and set(replies) == {f"r{i}" for i in range(count)},
                f"`{name}(...)` returned an incomplete result")
        return [_numeric(replies[f"r{i}"], f"result {i} of `{name}`") for i in range(count)]

    def value(self, name: str):
        """A variable's value as plain data (number, string, list, dict) or array."""
        data, arrays = self._cached("value", {"name": name}, f"the value of `{name}`")
        if "array" in arrays:
            return _numeric(arrays["array"], f"`{name}`")
        return data.get("value")

    def number(self, name: str) -> float:
        found = self.value(name)
        if isinstance(found, np.ndarray) and found.size == 1:
            found = found.reshape(()).item()
        _expect(isinstance(found, (int, float)) and not isinstance(found, bool)
                and np.isfinite(found), f"`{name}` should be a finite number, got {found!r:.60}")
        return float(found)

    def figures(self) -> list[list[Axes]]:
        """Every open matplotlib figure: its axes and the data of their lines."""
        data, arrays = self._ask("figures", {}, "the plotted figures")
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
        """The open figures as PNG images (at most 20, each at most 2 MB)."""
        data, arrays = self._ask("rendered_figures", {}, "pictures of the figures")
        count = data.get("count")
        _expect(isinstance(count, int) and set(arrays) == {f"png{i}" for i in range(count)},
                "the figures came back incomplete")
        images = []
        for i in range(min(count, 20)):
            raw = arrays[f"png{i}"]
            _expect(raw.dtype == np.uint8 and raw.ndim == 1 and raw.size <= 2 * 2**20
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
        try:
            reply = self.session.ask(kind, args, self.timeout)
        except KernelUnavailable as error:
            raise OracleError(f"could not get {what}: {error}") from None
        if not isinstance(reply, dict):
            raise OracleError(f"could not get {what}: the notebook's answer was malformed")
        if reply.get("ok") is not True:
            raise OracleError(f"could not get {what}: {str(reply.get('error'))[:500]}")
        data = reply.get("data")
        encoded = reply.get("arrays")
        if not isinstance(data, dict) or not isinstance(encoded, dict):
            raise OracleError(f"could not get {what}: the notebook's answer was malformed")
        return data, {str(k): _decode(v, what) for k, v in encoded.items()}

    def _send(self, array: np.ndarray) -> str:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return self._put(buffer.getvalue(), ".npy")

    def _send_many(self, arrays) -> str:
        buffer = io.BytesIO()
        np.savez(buffer, **{f"a{i}": np.asarray(a) for i, a in enumerate(arrays)})
        return self._put(buffer.getvalue(), ".npz")

    def _put(self, data: bytes, suffix: str) -> str:
        # Named by content, so the same inputs sent twice hit the oracle's cache.
        name = hashlib.sha256(data).hexdigest()[:32] + suffix
        path = self.session.sandbox.inbox / name
        if not path.exists():
            self.session.put_array_file(name, data)
        return str(path)


def _decode(encoded, what: str) -> np.ndarray:
    if not isinstance(encoded, str) or len(encoded) > MAX_ARRAY_BYTES * 4 // 3 + 4:
        raise OracleError(f"could not get {what}: an array was missing or too large")
    try:
        raw = base64.b64decode(encoded, validate=True)
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (binascii.Error, ValueError, OSError, EOFError) as error:
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
