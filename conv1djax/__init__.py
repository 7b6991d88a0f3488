"""conv1djax: Keras-exact convolutions for JAX, as pure functions.

>>> import conv1djax as cj
>>> cj.Conv1D(32, 3, padding="SAME").padding
'same'
>>> cj.Conv2D(8, 3).kernel_size
(3, 3)
"""

from conv1djax import activations as activations
from conv1djax import constraints as constraints
from conv1djax import initializers as initializers
from conv1djax import interop as interop
from conv1djax import parallel as parallel
from conv1djax import protocol as protocol
from conv1djax import regularizers as regularizers
from conv1djax import saving as saving
from conv1djax import stream_contract as stream_contract
from conv1djax import streaming as streaming
from conv1djax.graph import Graph as Graph
from conv1djax.graph import Node as Node
from conv1djax.graph import Ref as Ref
from conv1djax.layers.activation import Activation as Activation
from conv1djax.layers.activation import Lambda as Lambda
from conv1djax.layers.conv import Conv1D as Conv1D
from conv1djax.layers.conv import Conv2D as Conv2D
from conv1djax.layers.conv import Conv3D as Conv3D
from conv1djax.layers.conv import conv1d_apply as conv1d_apply
from conv1djax.layers.conv import conv1d_init as conv1d_init
from conv1djax.layers.conv import conv2d_apply as conv2d_apply
from conv1djax.layers.conv import conv2d_init as conv2d_init
from conv1djax.layers.conv import conv3d_apply as conv3d_apply
from conv1djax.layers.conv import conv3d_init as conv3d_init
from conv1djax.layers.conv_transpose import Conv1DTranspose as Conv1DTranspose
from conv1djax.layers.conv_transpose import Conv2DTranspose as Conv2DTranspose
from conv1djax.layers.conv_transpose import Conv3DTranspose as Conv3DTranspose
from conv1djax.layers.conv_transpose import (
    conv1d_transpose_apply as conv1d_transpose_apply,
)
from conv1djax.layers.conv_transpose import (
    conv1d_transpose_init as conv1d_transpose_init,
)
from conv1djax.layers.conv_transpose import (
    conv2d_transpose_apply as conv2d_transpose_apply,
)
from conv1djax.layers.conv_transpose import (
    conv2d_transpose_init as conv2d_transpose_init,
)
from conv1djax.layers.conv_transpose import (
    conv3d_transpose_apply as conv3d_transpose_apply,
)
from conv1djax.layers.conv_transpose import (
    conv3d_transpose_init as conv3d_transpose_init,
)
from conv1djax.layers.core import Dense as Dense
from conv1djax.layers.depthwise import DepthwiseConv1D as DepthwiseConv1D
from conv1djax.layers.depthwise import DepthwiseConv2D as DepthwiseConv2D
from conv1djax.layers.dropout import Dropout as Dropout
from conv1djax.layers.dropout import GaussianDropout as GaussianDropout
from conv1djax.layers.dropout import GaussianNoise as GaussianNoise
from conv1djax.layers.dropout import SpatialDropout1D as SpatialDropout1D
from conv1djax.layers.dropout import SpatialDropout2D as SpatialDropout2D
from conv1djax.layers.dropout import SpatialDropout3D as SpatialDropout3D
from conv1djax.layers.lora import enable_lora as enable_lora
from conv1djax.layers.lora import merge_lora as merge_lora
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
from conv1djax.models import Parallel as Parallel
from conv1djax.models import Residual as Residual
from conv1djax.models import Sequential as Sequential
from conv1djax.protocol import Layer as Layer
from conv1djax.protocol import call_layer as call_layer
from conv1djax.protocol import summary as summary
from conv1djax.protocol import trainable_params as trainable_params
from conv1djax.saving import load as load
from conv1djax.saving import save as save
from conv1djax.shapes import conv_output_length as conv_output_length
from conv1djax.shapes import (
    conv_transpose_output_length as conv_transpose_output_length,
)
from conv1djax.streaming import receptive_field as receptive_field
from conv1djax.streaming import stream_apply as stream_apply
from conv1djax.streaming import stream_flush as stream_flush
from conv1djax.streaming import stream_init as stream_init
from conv1djax.streaming import stream_latency as stream_latency
from conv1djax.streaming import stream_reset as stream_reset
from conv1djax.streaming import stream_scan as stream_scan
from conv1djax.training import GradCheckReport as GradCheckReport
from conv1djax.training import apply_constraints as apply_constraints
from conv1djax.training import apply_training as apply_training
from conv1djax.training import apply_with_activity as apply_with_activity
from conv1djax.training import check_gradients as check_gradients
from conv1djax.training import make_eval_step as make_eval_step
from conv1djax.training import make_train_step as make_train_step
from conv1djax.training import regularization_loss as regularization_loss

__version__ = "0.2.0"

__all__ = [
    "Activation",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Dense",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GradCheckReport",
    "GroupNormalization",
    "Lambda",
    "Layer",
    "LayerNormalization",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Graph",
    "Node",
    "Parallel",
    "Ref",
    "Reshape",
    "Residual",
    "SeparableConv1D",
    "SeparableConv2D",
    "Sequential",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "SpectralNormalization",
    "TorchSpectralNormalization",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "WeightNormalization",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "activations",
    "apply_constraints",
    "apply_training",
    "apply_with_activity",
    "call_layer",
    "check_gradients",
    "constraints",
    "conv1d_apply",
    "conv1d_init",
    "conv1d_transpose_apply",
    "conv1d_transpose_init",
    "conv2d_apply",
    "conv2d_init",
    "conv2d_transpose_apply",
    "conv2d_transpose_init",
    "conv3d_apply",
    "conv3d_init",
    "conv3d_transpose_apply",
    "conv3d_transpose_init",
    "conv_output_length",
    "conv_transpose_output_length",
    "enable_lora",
    "initializers",
    "interop",
    "load",
    "make_eval_step",
    "make_train_step",
    "merge_lora",
    "parallel",
    "protocol",
    "receptive_field",
    "regularization_loss",
    "regularizers",
    "save",
    "saving",
    "stream_apply",
    "stream_contract",
    "stream_flush",
    "stream_init",
    "stream_latency",
    "stream_reset",
    "stream_scan",
    "streaming",
    "summary",
    "trainable_params",
]
