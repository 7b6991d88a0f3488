"""How a convolution becomes XLA operations.

``conv`` and ``conv_transpose`` (:mod:`~conv1djax.lowering.dispatch`) are
what the layers call; :func:`choose_impl` is the rule ``impl="auto"``
follows. The modules, in the order data flows through them:

- :mod:`~conv1djax.lowering.choose`: the decision rule and its thresholds.
- :mod:`~conv1djax.lowering.layout`: dimension numbers, padding, layouts.
- :mod:`~conv1djax.lowering.reference`: one ``lax.conv_general_dilated``.
- :mod:`~conv1djax.lowering.xla_conv`: XLA's convolution as the cores call
  it (an unpadded dense 2-D one padded by a row: XLA:CPU's fast path).
- :mod:`~conv1djax.lowering.rewrites`: space-to-depth, polyphase, and
  depth as batch or as channels.
- the cores :mod:`~conv1djax.lowering.im2col`,
  :mod:`~conv1djax.lowering.eigen`,
  :mod:`~conv1djax.lowering.blockdiag`,
  :mod:`~conv1djax.lowering.split`,
  :mod:`~conv1djax.lowering.shift`, :mod:`~conv1djax.lowering.fft`,
  :mod:`~conv1djax.lowering.ncw`, and :mod:`~conv1djax.lowering.adjoint`,
  the custom-derivative helper of im2col, eigen, shift and ncw.
"""

from conv1djax.lowering.choose import CORES as CORES
from conv1djax.lowering.choose import IMPLS as IMPLS
from conv1djax.lowering.choose import ONE_D_CORES as ONE_D_CORES
from conv1djax.lowering.choose import choose_impl as choose_impl
from conv1djax.lowering.dispatch import conv as conv
from conv1djax.lowering.dispatch import conv_transpose as conv_transpose
