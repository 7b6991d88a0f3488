"""Save and load a model with its params: ``cj.save(path, model, params)``,
``cj.load(path) -> (model, params)``.

One file holds both. The model's config is JSON: every layer as
``{"class_name": ..., "config": ...}`` (a built-in leaf layer's config is its
``get_config()``, the one Keras reads; a composite's, or a user's dataclass
layer's, is its fields, sub-layers nested). The params are tensors named by
their path (``"0/inner/1/kernel"``), with the params' structure and a SHA-256
of every tensor in the header. Two formats, chosen by the file name:

- ``.safetensors`` (the default choice: a small, well-kept format made for
  tensors, no code in it); the JSON goes in its ``__metadata__``;
- ``.npz``, read with ``allow_pickle=False``; the JSON is one entry.

Nothing is unpickled, nothing executed. A custom callable in a config (an
activation function, a ``Lambda``'s function, a user's layer class) must be
registered by name with :func:`register` in the saving and the loading
process, or be passed to ``load`` in ``custom_objects``; an unregistered one
fails at save time, naming where it is. A file that is not conv1djax's, is
truncated, or whose bytes changed fails at load with a ``ValueError`` that
says which; the save itself is atomic (a temporary file, then a rename), so
an interrupted save never leaves a half-written file under ``path``.

>>> import json, conv1djax as cj
>>> model = cj.Sequential([cj.Conv1D(4, 3, activation="relu"), cj.MaxPooling1D(2)])
>>> config = cj.saving.serialize(model)
>>> config["class_name"]
'Sequential'
>>> cj.saving.deserialize(json.loads(json.dumps(config))) == model
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import jax
import jax.numpy as jnp
import numpy as np

from conv1djax import graph, models, protocol
from conv1djax import layers as _layers
from conv1djax._typing import LayerLike, Params

FORMAT = "conv1djax"
VERSION = 1
_EXTENSIONS = (".safetensors", ".npz")
_NPZ_HEADER = "__conv1djax__"
_LAYER = "__layer__"
_NUMPY_DTYPES = frozenset(
    np.dtype(t).name
    for t in (np.float16, np.float32, np.float64, np.bool_, np.int8, np.int16,
              np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
)  # fmt: skip
_REGISTERED = "__registered__"

_BUILTIN_CLASSES: dict[str, type] = {
    name: getattr(_layers, name)
    for name in dir(_layers)
    if isinstance(getattr(_layers, name), type)
} | {
    cls.__name__: cls
    for cls in (models.Sequential, models.Residual, models.Parallel, graph.Graph)
}

_registered: dict[str, Any] = {}


def builtin_class(name: str) -> type | None:
    """The built-in layer class of a config's ``class_name`` (Keras's class
    names: ``"Conv1D"``; and ``"Sequential"``, ``"Residual"``,
    ``"Parallel"``), or None.

    >>> import conv1djax as cj
    >>> cj.saving.builtin_class("Conv1D") is cj.Conv1D
    True
    """
    return _BUILTIN_CLASSES.get(name)


def register(obj: Any = None, *, name: str | None = None) -> Any:
    """Registers a custom callable or layer class by name, so that configs
    holding it can be saved and loaded; usable as a decorator.

    Args:
      obj: a function, a callable object or a layer class.
      name: the name it is saved under (default: its ``__qualname__``).

    Returns:
      ``obj`` (or a decorator, when called with ``name`` only).

    Raises:
      ValueError: when the name is taken by another object (not the same
        definition run again) or is a built-in layer's.

    >>> import jax.numpy as jnp, conv1djax as cj
    >>> @cj.saving.register(name="doc_swish")
    ... def swish(x):
    ...     return x * jax.nn.sigmoid(x)
    >>> cj.Conv1D(4, 3, activation=swish).get_config()["activation"] is swish
    True
    """
    if obj is None:
        return lambda o: register(o, name=name)
    key = name or getattr(obj, "__qualname__", None)
    if not isinstance(key, str) or not key:
        raise ValueError(f"Give `name` to register {obj!r}; it has no __qualname__.")
    if key in _BUILTIN_CLASSES:
        raise ValueError(f"{key!r} is a built-in layer's name; register under another.")
    if key in _registered and not _same_definition(_registered[key], obj):
        raise ValueError(
            f"The name {key!r} is already registered for {_registered[key]!r}."
        )
    _registered[key] = obj
    return obj


def _same_definition(a: object, b: object) -> bool:
    """The same object, or the same definition executed again (a module
    imported twice, a notebook cell rerun)."""
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", object())
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", object())
    )


def _registered_name(obj: object) -> str | None:
    for name, known in _registered.items():
        if known is obj:
            return name
    return None


# ---- configs --------------------------------------------------------------------


def _encode(value: Any, where: str) -> Any:
    """``value`` as JSON data: layers nested, registered objects by name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if protocol.is_layer(value):
        return {_LAYER: serialize(value, where)}
    if isinstance(value, list | tuple):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{where} has non-str keys {bad}, which JSON cannot hold.")
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, np.integer | np.floating | np.bool_):
        return value.item()
    name = _registered_name(value)
    if name is not None:
        return {_REGISTERED: name}
    raise TypeError(
        f"{where} is {value!r}, which cannot be saved in a config: register it "
        f"by name with cj.saving.register(obj, name=...) (in the loading process "
        f"too, or pass it to cj.load in custom_objects)."
    )


def _class_name(cls: type) -> str:
    if _BUILTIN_CLASSES.get(cls.__name__) is cls:
        return cls.__name__
    name = _registered_name(cls)
    if name is None:
        raise TypeError(
            f"The layer class {cls.__qualname__} is not registered, so a model "
            f"holding it cannot be saved: decorate it with @cj.saving.register."
        )
    return name


def serialize(layer: LayerLike, where: str = "model") -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}``, JSON data for ``layer`` and
    every layer in it.

    Raises:
      TypeError: for an unregistered custom callable or layer class, naming
        where it is.
    """
    protocol.check_layer(layer, where)
    cls = type(layer)
    name = _class_name(cls)
    if callable(getattr(layer, "get_config", None)):
        config = layer.get_config()
    elif dataclasses.is_dataclass(layer):
        config = {
            f.name: getattr(layer, f.name) for f in dataclasses.fields(layer) if f.init
        }
    else:
        raise TypeError(
            f"{where} ({cls.__qualname__}) has no get_config and is not a "
            "dataclass, so its config cannot be saved."
        )
    return {"class_name": name, "config": _encode(config, f"{where}.{name}")}


def _decode(value: Any, custom: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, list):
        return [_decode(v, custom, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if set(value) == {_LAYER}:
            return deserialize(value[_LAYER], custom, where)
        if set(value) == {_REGISTERED}:
            return _lookup(value[_REGISTERED], custom, where)
        return {k: _decode(v, custom, f"{where}[{k!r}]") for k, v in value.items()}
    return value


def _lookup(name: object, custom: Mapping[str, Any], where: str) -> Any:
    if isinstance(name, str) and name in custom:
        return custom[name]
    if isinstance(name, str) and name in _registered:
        return _registered[name]
    raise ValueError(
        f"{where} names {name!r}, which is not registered in this process: "
        "register it with cj.saving.register(obj, name=...) before loading, or "
        "pass custom_objects={name: obj} to cj.load."
    )


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def deserialize(data: Any, custom_objects: Mapping[str, Any] | None = None,
                where: str = "model") -> LayerLike:  # fmt: skip
    """The layer :func:`serialize` made ``data`` from.

    Raises:
      ValueError: for malformed data, an unknown class or an unregistered
        name.
    """
    custom = dict(custom_objects or {})
    if not (
        isinstance(data, dict)
        and isinstance(data.get("class_name"), str)
        and isinstance(data.get("config"), dict)
    ):
        raise ValueError(
            f"{where} must be {{'class_name': str, 'config': dict}}; received "
            f"{str(data)[:80]}."
        )
    name = data["class_name"]
    cls: Any = _BUILTIN_CLASSES.get(name)
    if cls is None:
        cls = _lookup(name, custom, f"{where} (class_name)")
    config = _decode(data["config"], custom, f"{where}.{name}")
    if callable(getattr(cls, "from_config", None)):
        return cls.from_config(config)
    return cls(**_tuples(config))


# ---- params ------------------------------------------------------------------------


def _flatten_params(
    model: LayerLike, params: Params
) -> tuple[Any, dict[str, np.ndarray]]:
    """``(structure, {tensor name: array})``: the structure is the params'
    nesting as JSON, each leaf the name of its tensor.

    Raises:
      TypeError: for a leaf that is not an array, or a key that cannot be
        a tensor's name.
      ValueError: for params that do not fit the model
        (:func:`conv1djax.protocol.check_params`).
    """
    tensors: dict[str, np.ndarray] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, Mapping):
            for k in node:
                if not isinstance(k, str) or "/" in k:
                    raise TypeError(
                        f"params{path} has the key {k!r}: saved params need str "
                        "keys without '/'."
                    )
            return {k: walk(v, f"{path}/{k}") for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(node)]
        if not hasattr(node, "shape") or not hasattr(node, "dtype"):
            raise TypeError(
                f"params{path or ''} is {type(node).__name__}; saved params must be "
                "arrays in dicts and lists."
            )
        # np.asarray, not np.ascontiguousarray: that one makes a 0-d array 1-d.
        tensors[path.lstrip("/")] = np.asarray(jax.device_get(node), order="C")
        return path.lstrip("/")

    structure = walk(params, "")
    protocol.check_params(model, params)
    return structure, tensors


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


def _unflatten_params(
    structure: Any, tensors: Mapping[str, np.ndarray], where: str
) -> Params:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node in tensors:
            return jnp.asarray(tensors[node])
        raise ValueError(
            f"{where}: the params structure names {node!r}, which it lacks."
        )

    return walk(structure)


# ---- the two formats ------------------------------------------------------------


def _header(model: LayerLike, structure: Any, tensors: Mapping[str, np.ndarray]) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "model": serialize(model),
            "params": structure,
            "tensors": {
                name: {
                    "dtype": a.dtype.name,
                    "shape": list(a.shape),
                    "sha256": _digest(a),
                }
                for name, a in tensors.items()
            },
        }
    )


def _write_safetensors(
    f: IO[bytes], header: str, tensors: dict[str, np.ndarray]
) -> None:
    import safetensors.numpy

    f.write(safetensors.numpy.save(tensors, metadata={FORMAT: header}))


def _write_npz(f: IO[bytes], header: str, tensors: Mapping[str, np.ndarray]) -> None:
    # npz holds NumPy's own dtypes; bfloat16 and the like go as raw bits,
    # their dtype in the header.
    # (Any values: NumPy's stub reads **arrays as if it could hold allow_pickle)
    arrays: dict[str, Any] = {
        name: a if a.dtype.name in _NUMPY_DTYPES else a.view(f"u{a.dtype.itemsize}")
        for name, a in tensors.items()
    }
    arrays[_NPZ_HEADER] = np.frombuffer(header.encode(), np.uint8)
    np.savez(f, **arrays)


def _read_safetensors(raw: bytes, path: str) -> tuple[str, dict[str, np.ndarray]]:
    import safetensors

    try:
        entries = safetensors.deserialize(raw)
        (size,) = struct.unpack("<Q", raw[:8])
        metadata = json.loads(raw[8 : 8 + size]).get("__metadata__") or {}
    except Exception as err:  # the Rust reader's SafetensorError, or JSON's
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or "
            f"corrupted?): {err}"
        ) from None
    if FORMAT not in metadata:
        raise ValueError(f"{path} is a safetensors file, but not one conv1djax saved.")
    tensors = {}
    for name, entry in entries:
        dtype = _safetensors_dtype(entry["dtype"], path)
        tensors[name] = np.frombuffer(entry["data"], dtype).reshape(entry["shape"])
    return metadata[FORMAT], tensors


def _safetensors_dtype(code: str, path: str) -> np.dtype:
    import ml_dtypes

    table = {
        "F64": np.float64, "F32": np.float32, "F16": np.float16,
        "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32,
        "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32,
        "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
    }  # fmt: skip
    if code not in table:
        raise ValueError(
            f"{path} holds a tensor of dtype {code}, which is not supported."
        )
    return np.dtype(table[code])


def _read_npz(raw: bytes, path: str) -> tuple[str, dict[str, np.ndarray]]:
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(
            f"{path} is not a readable .npz file (truncated or corrupted?): {err}"
        ) from None
    if _NPZ_HEADER not in arrays:
        raise ValueError(f"{path} is an .npz file, but not one conv1djax saved.")
    header = arrays.pop(_NPZ_HEADER).tobytes().decode("utf-8", errors="replace")
    return header, arrays


def _check_path(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    if not path.endswith(_EXTENSIONS):
        raise ValueError(
            f"`path` must end with .safetensors or .npz (the format); received "
            f"{path!r}."
        )
    return path


# ---- the API ------------------------------------------------------------------------


def save(path: str | os.PathLike[str], model: LayerLike, params: Params) -> None:
    """Saves ``model`` and ``params`` to one file (atomically).

    Args:
      path: a file name ending in ``.safetensors`` or ``.npz``.
      model: any layer or composite.
      params: its params.

    Raises:
      ValueError: for a bad ``path``, params that do not fit the model (a
        missing or extra key, or a shape other than the layer's, by
        :func:`conv1djax.protocol.check_params`: the message names the
        params' path, the shape received and the one expected), or a config
        that does not load back into an equal model; nothing is written
        then.
      TypeError: for a custom callable or layer class that is not
        registered (:func:`register`), naming where it is.

    >>> import tempfile, os, jax, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(4, 3), cj.MaxPooling1D(2)])
    >>> params = model.init(jax.random.key(0), (None, 16, 2))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.safetensors")
    ...     cj.save(path, model, params)
    ...     loaded, loaded_params = cj.load(path)
    >>> loaded == model, bool((loaded_params[0]["kernel"] == params[0]["kernel"]).all())
    (True, True)
    """
    path = _check_path(path)
    structure, tensors = _flatten_params(model, params)
    header = _header(model, structure, tensors)
    rebuilt = deserialize(json.loads(header)["model"])
    if rebuilt != model:
        raise ValueError(
            f"The model's config does not load back into an equal model "
            f"({rebuilt!r} != {model!r}), so it cannot be saved faithfully."
        )
    write = _write_safetensors if path.endswith(".safetensors") else _write_npz
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".conv1djax-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f, header, tensors)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(
    path: str | os.PathLike[str],
    custom_objects: Mapping[str, Callable[..., Any]] | None = None,
) -> tuple[LayerLike, Params]:
    """Loads what :func:`save` wrote: ``(model, params)``.

    Args:
      path: the file.
      custom_objects: ``{name: object}`` for registered names not
        registered in this process.

    Raises:
      ValueError: for a file that is not conv1djax's, truncated, corrupted
        (a tensor whose SHA-256 or shape differs from the header's) or of a
        newer format version, an unregistered name, or params that do not
        fit the model (checked as :func:`save` checks them).

    >>> import os, tempfile, jax, jax.numpy as jnp, conv1djax as cj
    >>> model = cj.Sequential([cj.Conv1D(4, 3, activation="relu"), cj.MaxPooling1D(2)])
    >>> params = model.init(jax.random.key(0), (None, 16, 2))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.npz")
    ...     cj.save(path, model, params)
    ...     loaded, loaded_params = cj.load(path)
    >>> loaded == model
    True
    >>> x = jnp.ones((1, 16, 2))
    >>> bool(jnp.array_equal(loaded.apply(loaded_params, x), model.apply(params, x)))
    True
    """
    path = _check_path(path)
    with open(path, "rb") as f:
        raw = f.read()
    read = _read_safetensors if path.endswith(".safetensors") else _read_npz
    header_text, tensors = read(raw, path)
    try:
        header = json.loads(header_text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: the conv1djax header is not JSON ({err}).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} was not saved by conv1djax.")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise ValueError(
            f"{path} has format version {header.get('version')!r}; this conv1djax "
            f"reads up to {VERSION}: upgrade conv1djax."
        )
    expected = header.get("tensors")
    if not isinstance(expected, dict) or set(expected) != set(tensors):
        raise ValueError(f"{path}: the tensors do not match the header's list.")
    for name, meta in expected.items():
        array = tensors[name]
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: the header's entry for {name!r} is malformed.")
        if array.dtype.name != meta.get("dtype"):
            try:  # an npz's raw bits of bfloat16 and the like
                array = array.view(np.dtype(jnp.dtype(meta.get("dtype"))))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path}: the tensor {name!r} is {array.dtype.name}, not the "
                    f"header's {meta.get('dtype')!r}."
                ) from None
            tensors[name] = array
        if list(array.shape) != meta.get("shape") or _digest(array) != meta.get(
            "sha256"
        ):
            raise ValueError(
                f"{path}: the tensor {name!r} is corrupted (its shape or "
                "SHA-256 differs from the header's)."
            )
    model = deserialize(header.get("model"), custom_objects, "the saved model")
    params = _unflatten_params(header.get("params"), tensors, str(path))
    try:  # save checked them; a file written otherwise may not fit
        protocol.check_params(model, params)
    except ValueError as err:
        raise ValueError(
            f"{path}: the saved params do not fit the saved model: {err}"
        ) from None
    return model, params
