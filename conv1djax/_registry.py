"""Resolution of Keras-style identifiers for callables.

Activations, initializers, regularizers and constraints are each accepted as
``None``, a Keras name (``"glorot_uniform"``, ``"l2"``), a Keras config dict
(``{"class_name": "L2", "config": {"l2": 0.1}}``), one of our objects, or any
user callable. A :class:`Registry` turns each of those into one canonical,
hashable object, so that two specs built from ``"l2"`` and ``L2()`` are equal,
and turns it back into a JSON-friendly form for ``get_config``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self


class Serializable:
    """Mixin for frozen dataclasses whose fields are their whole config."""

    if TYPE_CHECKING:  # what the dataclass decorator of every subclass adds
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a JSON-friendly dict."""
        return {
            f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Builds the object back from :meth:`get_config`'s dict."""
        return cls(**{k: _from_json(v) for k, v in config.items()})


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


class Registry:
    """Names and classes of one kind of object (say, initializers).

    Args:
      kind: what the objects are, for error messages ("initializer").
      entries: name -> function or class. A class is instantiated with its
        defaults when looked up by name; the first name given for a function is
        its canonical name in configs.
    """

    def __init__(self, kind: str, entries: Mapping[str, Any]) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self._names: dict[Any, str] = {}
        for name, obj in entries.items():
            self._names.setdefault(obj, name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def get(self, identifier: Any, argname: str) -> Any:
        """Returns the canonical object for ``identifier``.

        Raises:
          ValueError: for an unknown name or a malformed config dict.
          TypeError: for anything that is neither a name, a dict nor a callable.
        """
        if identifier is None:
            return None
        if isinstance(identifier, str):
            if identifier not in self._entries:
                raise ValueError(
                    f"Unknown {self.kind} name for `{argname}`: {identifier!r}. "
                    f"Allowed names: {', '.join(self.names)}; or pass a callable."
                )
            return self._instantiate(self._entries[identifier], argname)
        if isinstance(identifier, Mapping):
            return self._from_dict(identifier, argname)
        if inspect.isclass(identifier) and identifier in self._names:
            return self._instantiate(identifier, argname)
        if callable(identifier):
            return identifier
        raise TypeError(
            f"`{argname}` must be None, a {self.kind} name, a config dict or a "
            f"callable; received {identifier!r} of type "
            f"{type(identifier).__name__}."
        )

    def serialize(self, obj: Any) -> Any:
        """Returns a JSON-friendly form of ``obj``, or ``obj`` itself for a
        user callable that the registry does not know."""
        if obj is None:
            return None
        try:
            if not inspect.isclass(obj) and obj in self._names:
                return self._names[obj]
        except TypeError:  # an unhashable user object
            pass
        cls = type(obj)
        if cls in self._names and hasattr(obj, "get_config"):
            return {"class_name": cls.__name__, "config": obj.get_config()}
        return obj

    def _instantiate(self, entry: Any, argname: str) -> Any:
        if inspect.isclass(entry):
            try:
                return entry()
            except TypeError as e:
                raise ValueError(
                    f"The {self.kind} {entry.__name__} given to `{argname}` has "
                    f"required arguments, so it cannot be named alone: {e}"
                ) from None
        return entry

    def _from_dict(self, config: Mapping[str, Any], argname: str) -> Any:

        class_name = config.get("class_name")
        classes: dict[str, Any] = {
            c.__name__: c for c in self._names if inspect.isclass(c)
        }

        if class_name not in classes or not isinstance(
            config.get("config", {}), Mapping
        ):
            raise ValueError(
                f"Unknown {self.kind} config for `{argname}`: {dict(config)!r}. "
                "Expected {'class_name': NAME, 'config': {...}} with NAME one of "
                f"{', '.join(sorted(classes))}."
            )
        return classes[class_name].from_config(config.get("config", {}))
