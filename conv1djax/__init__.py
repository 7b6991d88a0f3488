"""conv1djax: Keras-exact 1-D convolutions for JAX, as pure functions.

>>> import conv1djax as cj
>>> cj.Conv1D(32, 3, padding="SAME").padding
'same'
"""

from conv1djax import activations as activations
from conv1djax import constraints as constraints
from conv1djax import initializers as initializers
from conv1djax import parallel as parallel
from conv1djax import regularizers as regularizers
from conv1djax._conv import conv1d_apply as conv1d_apply
from conv1djax._conv import conv1d_init as conv1d_init
from conv1djax._conv import conv1d_transpose_apply as conv1d_transpose_apply
from conv1djax._conv import conv1d_transpose_init as conv1d_transpose_init
from conv1djax._models import Activation as Activation
from conv1djax._models import Sequential as Sequential
from conv1djax._shapes import conv_output_length as conv_output_length
from conv1djax._shapes import (
    conv_transpose_output_length as conv_transpose_output_length,
)
from conv1djax._specs import Conv1D as Conv1D
from conv1djax._specs import Conv1DTranspose as Conv1DTranspose
from conv1djax._training import GradCheckReport as GradCheckReport
from conv1djax._training import apply_constraints as apply_constraints
from conv1djax._training import apply_with_activity as apply_with_activity
from conv1djax._training import check_gradients as check_gradients
from conv1djax._training import make_eval_step as make_eval_step
from conv1djax._training import make_train_step as make_train_step
from conv1djax._training import regularization_loss as regularization_loss

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Conv1D",
    "Conv1DTranspose",
    "GradCheckReport",
    "Sequential",
    "apply_constraints",
    "apply_with_activity",
    "check_gradients",
    "make_eval_step",
    "make_train_step",
    "parallel",
    "regularization_loss",
    "activations",
    "constraints",
    "conv1d_apply",
    "conv1d_init",
    "conv1d_transpose_apply",
    "conv1d_transpose_init",
    "conv_output_length",
    "conv_transpose_output_length",
    "initializers",
    "regularizers",
]
