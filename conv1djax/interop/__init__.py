"""Weights in and out of Keras and PyTorch, layer by layer and for whole
models.

- :func:`from_keras` / :func:`to_keras`: a layer's params from and to the
  list ``keras_layer.get_weights()`` gives (Keras's kernel layouts are ours,
  so only the order matters).
- :func:`from_torch` / :func:`to_torch`: a convolution's params from and to
  a ``torch.nn.Conv{1,2,3}d`` / ``ConvTranspose{1,2,3}d`` state dict
  (``{"weight", "bias"}``); a depthwise layer is PyTorch's convolution with
  ``groups=in_channels``.
- :func:`from_keras_config` / :func:`to_keras_config`: a Keras
  ``Sequential``'s ``get_config()`` and ``get_weights()`` into a
  :class:`~conv1djax.Sequential` and its params, and back;
  :func:`load_keras_file` reads a ``.keras`` file Keras 3 saved (needs
  ``h5py``).
- :func:`from_torch_module` / :func:`from_torch_sequential`: a PyTorch
  module (a convolution, a pooling, a padding, an upsampling, an
  activation), or a ``torch.nn.Sequential`` of them, as the equivalent
  channels-first spec (or :class:`~conv1djax.Sequential`) and its params.

One module per peer, every name above importable from ``cj.interop``:
``keras_weights`` (a Keras layer's weights, in the order each spec's
``weight_names()`` gives, and a Keras ``Sequential``'s config),
``keras_file`` (``.keras`` files), ``torch_weights`` (a PyTorch
convolution's ``state_dict``), ``torch_modules`` (single PyTorch modules
and Sequentials) and ``torch_fx`` (any traceable module, as a
:class:`~conv1djax.Graph`; ``from_torch_module``, which chooses among them).

conv1djax never imports torch or keras: tensors are read through their
``.detach().cpu().numpy()`` (or ``numpy.asarray``), and nothing is
unpickled.

>>> import jax, jax.numpy as jnp, conv1djax as cj
>>> layer = cj.Conv1D(4, 3)
>>> params = layer.init(jax.random.key(0), (None, 16, 2))
>>> state_dict = cj.interop.to_torch(layer, params)  # torch.nn.Conv1d(2, 4, 3)'s
>>> {name: w.shape for name, w in state_dict.items()}
{'weight': (4, 2, 3), 'bias': (4,)}
>>> back = cj.interop.from_torch(layer, state_dict)
>>> bool(jnp.array_equal(back["kernel"], params["kernel"]))
True
"""

from conv1djax.interop.keras_file import load_keras_file as load_keras_file
from conv1djax.interop.keras_weights import from_keras as from_keras
from conv1djax.interop.keras_weights import from_keras_config as from_keras_config
from conv1djax.interop.keras_weights import to_keras as to_keras
from conv1djax.interop.keras_weights import to_keras_config as to_keras_config
from conv1djax.interop.keras_weights import weight_names as weight_names
from conv1djax.interop.torch_fx import from_torch_module as from_torch_module
from conv1djax.interop.torch_fx import graph_from_torch as graph_from_torch
from conv1djax.interop.torch_fx import graph_to_torch as graph_to_torch
from conv1djax.interop.torch_modules import (
    from_torch_sequential as from_torch_sequential,
)
from conv1djax.interop.torch_weights import from_torch as from_torch
from conv1djax.interop.torch_weights import to_torch as to_torch

__all__ = [
    "from_keras",
    "from_keras_config",
    "from_torch",
    "from_torch_module",
    "from_torch_sequential",
    "graph_from_torch",
    "graph_to_torch",
    "load_keras_file",
    "to_keras",
    "to_keras_config",
    "to_torch",
    "weight_names",
]
