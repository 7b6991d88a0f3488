"""The layer specs, one module per family.

- :mod:`~conv1djax.layers.base`: what every spec shares (input shapes,
  params, configs, the N-d convolution base).
- :mod:`~conv1djax.layers.conv`: ``Conv1D``, ``Conv2D``, ``Conv3D``.
- :mod:`~conv1djax.layers.conv_transpose`: ``Conv1DTranspose``,
  ``Conv2DTranspose``, ``Conv3DTranspose``.
- :mod:`~conv1djax.layers.activation`: ``Activation``.
"""

from conv1djax.layers.activation import Activation as Activation
from conv1djax.layers.conv import Conv1D as Conv1D
from conv1djax.layers.conv import Conv2D as Conv2D
from conv1djax.layers.conv import Conv3D as Conv3D
from conv1djax.layers.conv_transpose import Conv1DTranspose as Conv1DTranspose
from conv1djax.layers.conv_transpose import Conv2DTranspose as Conv2DTranspose
from conv1djax.layers.conv_transpose import Conv3DTranspose as Conv3DTranspose
