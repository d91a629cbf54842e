"""What the grader and a kernel's probe say to each other: written once, used by both.

The trusted side imports this module; the probe (``probe.py``), which runs inside
a sandboxed kernel that cannot import the autograder, gets this file's source
executed into a private namespace before its own. So request kinds, the names
of the arrays in a reply, and every size limit are defined here and nowhere else.

A request is a Jupyter comm message ``{"id", "kind", "args"}`` to the target
``PROBE_TARGET``; the reply on the same comm is ``{"id", "ok", "data", "arrays"}``
(``data`` JSON, ``arrays`` name -> base64 of ``.npy`` bytes) or
``{"id", "ok": False, "error"}``.

This file must stay plain Python with imports from the standard library and
NumPy only: it runs on both sides of the trust boundary.
"""

import numpy as _np

PROBE_TARGET = "autograder.probe"

# Request kinds. The student's kernel is asked only the EXPORT_KINDS (once each,
# right after its notebook ran); models and functions are then answered by a clean
# room that never ran the submission (autograder/grading/cleanroom.py).
DESCRIBE = "describe"
WEIGHTS = "weights"
PREDICT = "predict"
PREDICT_TEXTS = "predict_texts"
CALL = "call"
VALUE = "value"
FIGURES = "figures"
RENDERED_FIGURES = "rendered_figures"
SAVE_MODEL = "save_model"
KINDS = (DESCRIBE, WEIGHTS, PREDICT, PREDICT_TEXTS, CALL, VALUE, FIGURES, RENDERED_FIGURES,
         SAVE_MODEL)
EXPORT_KINDS = (SAVE_MODEL, VALUE, FIGURES, RENDERED_FIGURES)

# Limits, checked by the trusted side on every reply before anything is allocated.
MAX_ARRAY_BYTES = 256 * 2**20       # one array in a reply
MAX_REPLY_ARRAYS = 4096             # arrays in one reply
MAX_ARCHIVE_BYTES = 128 * 2**20     # one exported Keras archive (.keras zip)
MAX_ARCHIVE_UNPACKED = 512 * 2**20  # what its members unpack to, together
MAX_FIGURES = 20                    # rendered figures kept for the feedback page
MAX_PNG_BYTES = 2 * 2**20           # one rendered figure
MAX_TEXT = 2000                     # an error message or label

# The sandbox directory a kernel saves model archives into (see kernel.Sandbox).
ARCHIVE_SUFFIX = ".keras"


# -- names of the arrays in a reply --------------------------------------------------
def weight_key(i: int) -> str:
    return f"w{i}"


def result_key(i: int) -> str:
    return f"r{i}"


def argument_key(i: int) -> str:
    return f"a{i}"


def png_key(i: int) -> str:
    return f"png{i}"


def line_key(figure: int, axes: int, line: int) -> str:
    """Prefix of a plotted line's arrays: + "x" and + "y"."""
    return f"f{figure}a{axes}l{line}"


def numbered(prefix_of, count: int) -> set:
    return {prefix_of(i) for i in range(count)}


# -- reading .npy bytes without trusting their header ----------------------------------
class ArrayRefused(ValueError):
    """Bytes that do not hold a plain numeric array of the size they claim."""


def read_npy(raw: bytes, max_bytes: int = MAX_ARRAY_BYTES):
    """The array in ``.npy`` bytes; the header is checked against the bytes that follow
    *before* anything is allocated, so a forged header cannot make the reader allocate
    more than it was sent. Only numeric and boolean dtypes, never pickles."""
    import io

    from numpy.lib import format as npy_format

    buffer = io.BytesIO(raw)
    try:
        version = npy_format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(buffer, max_header_size=4096)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npy_format.read_array_header_2_0(buffer, max_header_size=4096)
        else:
            raise ArrayRefused(f"unknown .npy version {version}")
    except ArrayRefused:
        raise
    except Exception as error:  # a malformed header
        raise ArrayRefused(f"not an .npy array ({type(error).__name__})") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise ArrayRefused(f"an array of dtype {dtype} is not plain numbers")
    if any(not isinstance(n, int) or n < 0 for n in shape) or len(shape) > 32:
        raise ArrayRefused(f"an array of shape {shape} is malformed")
    count = 1
    for n in shape:
        count *= n
    size = count * dtype.itemsize
    body = raw[buffer.tell():]
    if size > max_bytes:
        raise ArrayRefused(f"an array of {size:,} bytes is over the limit of {max_bytes:,}")
    if len(body) != size:
        raise ArrayRefused(f"an array claims {size:,} bytes but carries {len(body):,}")
    array = _np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()
