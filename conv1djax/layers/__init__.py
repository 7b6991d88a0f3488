"""The layer specs, one module per family.

- :mod:`~conv1djax.layers.base`: what every spec shares (input shapes,
  params, configs, the N-d convolution base).
- :mod:`~conv1djax.layers.core`: ``Dense``.
- :mod:`~conv1djax.layers.lora`: ``enable_lora``, ``merge_lora``.
- :mod:`~conv1djax.layers.conv`: ``Conv1D``, ``Conv2D``, ``Conv3D``.
- :mod:`~conv1djax.layers.conv_transpose`: ``Conv1DTranspose``,
  ``Conv2DTranspose``, ``Conv3DTranspose``.
- :mod:`~conv1djax.layers.depthwise`: ``DepthwiseConv1D``, ``DepthwiseConv2D``.
- :mod:`~conv1djax.layers.separable`: ``SeparableConv1D``, ``SeparableConv2D``.
- :mod:`~conv1djax.layers.reshaping`: ``ZeroPadding1D/2D/3D``,
  ``Cropping1D/2D/3D``, ``UpSampling1D/2D/3D``, ``Flatten``, ``Reshape``.
- :mod:`~conv1djax.layers.pooling`: ``MaxPooling1D/2D/3D``,
  ``AveragePooling1D/2D/3D``, ``GlobalMaxPooling1D/2D/3D``,
  ``GlobalAveragePooling1D/2D/3D``.
- :mod:`~conv1djax.layers.activation`: ``Activation``, ``Lambda``.
- :mod:`~conv1djax.layers.dropout`: ``Dropout``, ``SpatialDropout1D/2D/3D``,
  ``GaussianNoise``, ``GaussianDropout``.
- :mod:`~conv1djax.layers.wrappers`: ``SpectralNormalization``,
  ``WeightNormalization``, ``TorchSpectralNormalization``.
- :mod:`~conv1djax.layers.normalization`: ``BatchNormalization``,
  ``LayerNormalization``, ``GroupNormalization``.
"""

from conv1djax.layers.activation import Activation as Activation
from conv1djax.layers.activation import Lambda as Lambda
from conv1djax.layers.conv import Conv1D as Conv1D
from conv1djax.layers.conv import Conv2D as Conv2D
from conv1djax.layers.conv import Conv3D as Conv3D
from conv1djax.layers.conv_transpose import Conv1DTranspose as Conv1DTranspose
from conv1djax.layers.conv_transpose import Conv2DTranspose as Conv2DTranspose
from conv1djax.layers.conv_transpose import Conv3DTranspose as Conv3DTranspose
from conv1djax.layers.core import Dense as Dense
from conv1djax.layers.depthwise import DepthwiseConv1D as DepthwiseConv1D
from conv1djax.layers.depthwise import DepthwiseConv2D as DepthwiseConv2D
from conv1djax.layers.dropout import Dropout as Dropout
from conv1djax.layers.dropout import GaussianDropout as GaussianDropout
from conv1djax.layers.dropout import GaussianNoise as GaussianNoise
from conv1djax.layers.dropout import SpatialDropout1D as SpatialDropout1D
from conv1djax.layers.dropout import SpatialDropout2D as SpatialDropout2D
from conv1djax.layers.dropout import SpatialDropout3D as SpatialDropout3D
from conv1djax.layers.normalization import BatchNormalization as BatchNormalization
from conv1djax.layers.normalization import GroupNormalization as GroupNormalization
from conv1djax.layers.normalization import LayerNormalization as LayerNormalization
from conv1djax.layers.pooling import AveragePooling1D as AveragePooling1D
from conv1djax.layers.pooling import AveragePooling2D as AveragePooling2D
from conv1djax.layers.pooling import AveragePooling3D as AveragePooling3D
from conv1djax.layers.pooling import GlobalAveragePooling1D as GlobalAveragePooling1D
from conv1djax.layers.pooling import GlobalAveragePooling2D as GlobalAveragePooling2D
from conv1djax.layers.pooling import GlobalAveragePooling3D as GlobalAveragePooling3D
from conv1djax.layers.pooling import GlobalMaxPooling1D as GlobalMaxPooling1D
from conv1djax.layers.pooling import GlobalMaxPooling2D as GlobalMaxPooling2D
from conv1djax.layers.pooling import GlobalMaxPooling3D as GlobalMaxPooling3D
from conv1djax.layers.pooling import MaxPooling1D as MaxPooling1D
from conv1djax.layers.pooling import MaxPooling2D as MaxPooling2D
from conv1djax.layers.pooling import MaxPooling3D as MaxPooling3D
from conv1djax.layers.reshaping import Cropping1D as Cropping1D
from conv1djax.layers.reshaping import Cropping2D as Cropping2D
from conv1djax.layers.reshaping import Cropping3D as Cropping3D
from conv1djax.layers.reshaping import Flatten as Flatten
from conv1djax.layers.reshaping import Reshape as Reshape
from conv1djax.layers.reshaping import UpSampling1D as UpSampling1D
from conv1djax.layers.reshaping import UpSampling2D as UpSampling2D
from conv1djax.layers.reshaping import UpSampling3D as UpSampling3D
from conv1djax.layers.reshaping import ZeroPadding1D as ZeroPadding1D
from conv1djax.layers.reshaping import ZeroPadding2D as ZeroPadding2D
from conv1djax.layers.reshaping import ZeroPadding3D as ZeroPadding3D
from conv1djax.layers.separable import SeparableConv1D as SeparableConv1D
from conv1djax.layers.separable import SeparableConv2D as SeparableConv2D
from conv1djax.layers.wrappers import SpectralNormalization as SpectralNormalization
from conv1djax.layers.wrappers import (
    TorchSpectralNormalization as TorchSpectralNormalization,
)
from conv1djax.layers.wrappers import WeightNormalization as WeightNormalization
