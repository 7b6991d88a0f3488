"""Torch-style padding: an explicit ``padding`` (an int, or per axis an int or
a ``(left, right)`` pair) and ``padding_mode`` ("zeros", "reflect",
"replicate", "circular"), against PyTorch 2.13.0's ``torch.nn.functional``.

- A seeded sweep of ``Conv1D/2D/3D`` over explicit paddings (an int, per
  axis, asymmetric pairs) x every padding_mode x strides, dilation, groups,
  both data formats and several lowerings: values and the VJP w.r.t. the
  input, kernel and bias against ``F.pad(mode=...)`` then ``F.conv{1,2,3}d``.
- A sweep of ``Conv1D/2D/3DTranspose`` with explicit paddings (+
  output_padding, groups, dilation) against ``F.conv_transpose{1,2,3}d``
  (its ``padding`` and ``output_padding`` where symmetric; asymmetric pairs
  crop its full output).
- "same" and "causal" with the non-zero modes: against ``torch.nn.Conv*d``
  with ``padding="same"`` and that ``padding_mode`` (stride 1, PyTorch's
  only), and against ``F.pad`` of the amounts for strided ones; the
  depthwise and separable layers too.
- Shapes (``compute_output_shape``, the length helpers) against ``apply``;
  configs through JSON; the canonical form; errors with their messages.

Our side of each sweep is one jitted program (see conftest.py); PyTorch
computes in float64.
"""

import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv1djax as cj
from conftest import FAST_COMPILE, assert_close, normal

torch = pytest.importorskip("torch")
F = torch.nn.functional

MODES = ("zeros", "reflect", "replicate", "circular")
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}  # fmt: skip
FORWARD = {1: cj.Conv1D, 2: cj.Conv2D, 3: cj.Conv3D}
TRANSPOSED = {1: cj.Conv1DTranspose, 2: cj.Conv2DTranspose, 3: cj.Conv3DTranspose}
TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX_LENGTH = {1: 9, 2: 6, 3: 4}


def _raises(exc, message):
    """``pytest.raises`` for exactly ``message``."""
    # (under jit, JAX appends a note on its filtered traceback)
    return pytest.raises(exc, match=f"^{re.escape(message)}(\\n|$)")


# ---- converting to and from PyTorch ----------------------------------------------


def _to_torch(a, batch, channels_last, grad=True):
    """Our ``batch + (*spatial, C)`` (or channels-first) array as a float64
    ``(N, C, *spatial)`` tensor."""
    a = np.asarray(a, np.float64).reshape((-1, *np.shape(a)[len(batch) :]))
    if channels_last:
        a = np.moveaxis(a, -1, 1)
    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


def _from_torch(t, batch, channels_last):
    a = t.detach().numpy()
    if channels_last:
        a = np.moveaxis(a, 1, -1)
    return a.reshape((*batch, *a.shape[1:]))


def _torch_kernel(kernel):
    """Keras's ``(*k, I, O)`` kernel as PyTorch's ``(O, I, *k)`` weight (and a
    transposed ``(*k, F // g, C)`` as ``(C, F // g, *k)``)."""
    kernel = np.asarray(kernel, np.float64)
    rank = kernel.ndim - 2
    weight = np.transpose(kernel, (rank + 1, rank, *range(rank)))
    return torch.tensor(np.ascontiguousarray(weight), requires_grad=True)


def _from_torch_kernel(grad):
    rank = grad.ndim - 2
    return np.transpose(grad.numpy(), (*range(2, rank + 2), 1, 0))


def _torch_pad(pads):
    """Per-axis ``(left, right)`` as ``F.pad``'s list, last axis first."""
    return [side for pair in reversed(pads) for side in pair]


# ---- the sweeps' cases ----------------------------------------------------------------


def _per_axis(r, rank, low, high):
    return tuple(int(v) for v in r.integers(low, high + 1, rank))


def _strides_and_dilation(r, rank):
    """Keras's convolutions refuse strides > 1 together with dilation > 1."""
    ones = (1,) * rank
    mode = r.random()
    if mode < 0.4:
        return _per_axis(r, rank, 1, 3), ones
    if mode < 0.8:
        return ones, _per_axis(r, rank, 1, 2)
    return ones, ones


def _k_eff(kernel, dilation):
    return tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))


def _impl(seed, rank):
    """Cycles through the lowerings ("auto" half of the time); the seed's
    rank is ``1 + seed % 3``."""
    impls = ["auto"] * 4 + ["reference", "direct", "blockdiag", "shift"]
    if rank == 1:
        impls += ["fft", "ncw"]
    return impls[seed // 3 % len(impls)]


def _explicit(r, rank, form, limits):
    """A random explicit padding of ``form`` (0: an int, 1: an int per axis,
    2: per axis an int or a pair, with an asymmetric pair) with every side
    at most ``limits`` on its axis, and its ``(left, right)`` pairs."""
    if form == 0:
        p = int(r.integers(0, min(limits) + 1))
        return p, ((p, p),) * rank
    if form == 1:
        ps = tuple(int(r.integers(0, lim + 1)) for lim in limits)
        return ps, tuple((p, p) for p in ps)
    while True:
        entries = []
        for lim in limits:
            if r.random() < 0.6:
                entries.append(tuple(int(v) for v in r.integers(0, lim + 1, 2)))
            else:
                entries.append(int(r.integers(0, lim + 1)))
        pairs = tuple(e if isinstance(e, tuple) else (e, e) for e in entries)
        if any(left != right for left, right in pairs):
            return tuple(entries), pairs


def _layout(r, spatial, channels):
    data_format = str(r.choice(["channels_last", "channels_first"]))
    batch = [(2,), (2,), (1, 2)][int(r.integers(3))]
    shape = (
        (*batch, *spatial, channels)
        if data_format == "channels_last"
        else (*batch, channels, *spatial)
    )
    return data_format, batch, shape


N_FORWARD = 36


def _forward_case(seed):
    """A random ``Conv{1,2,3}D`` with an explicit padding: rank, padding_mode
    and padding form cycle with the seed (every pair of each)."""
    r = np.random.default_rng(7_000 + seed)
    rank, mode, form = 1 + seed % 3, MODES[seed % 4], seed // 12
    kernel = _per_axis(r, rank, 1, 3)
    strides, dilation = _strides_and_dilation(r, rank)
    groups = int(r.choice([1, 1, 2, 3]))
    k_eff = _k_eff(kernel, dilation)
    spatial = tuple(
        int(r.integers(max(2, k - 2), max(k, MAX_LENGTH[rank]) + 1)) for k in k_eff
    )
    # PyTorch's limits: reflect below the length, circular at most it
    cap = {"zeros": 3, "replicate": 3}.get(mode)
    limits = tuple(
        cap if cap is not None else min(3, n - 1 if mode == "reflect" else n)
        for n in spatial
    )
    padding, pairs = _explicit(r, rank, form, limits)
    # long enough for a non-empty output
    spatial = tuple(
        max(n, k - left - right)
        for n, k, (left, right) in zip(spatial, k_eff, pairs, strict=True)
    )
    channels = groups * int(r.integers(1, 3))
    data_format, batch, shape = _layout(r, spatial, channels)
    config = dict(
        filters=groups * int(r.integers(1, 3)),
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilation_rate=dilation,
        groups=groups,
        use_bias=bool(r.random() < 0.75),
        impl=_impl(seed, rank),
        padding_mode=mode.upper() if seed % 5 == 0 else mode,
    )
    return FORWARD[rank](**config), config, batch, shape, pairs


N_TRANSPOSED = 24


def _transposed_case(seed):
    """A random ``Conv{1,2,3}DTranspose`` with an explicit padding (PyTorch's
    meaning), output_padding below max(strides, dilation)."""
    r = np.random.default_rng(8_000 + seed)
    rank, form = 1 + seed % 3, seed // 3 % 3
    kernel = _per_axis(r, rank, 1, 3)
    strides, dilation = _strides_and_dilation(r, rank)
    groups = int(r.choice([1, 1, 2, 3]))
    k_eff = _k_eff(kernel, dilation)
    # up to k_eff (one more than the full output's kernel overhang)
    padding, pairs = _explicit(r, rank, form, k_eff)
    output_padding = None
    if r.random() < 0.5 or max(dilation) > 1:
        # PyTorch's bound half of the time, else below it
        top = r.random() < 0.5
        output_padding = tuple(
            max(s, d) - 1 if top else int(r.integers(0, max(s, d)))
            for s, d in zip(strides, dilation, strict=True)
        )
    ops = output_padding or (0,) * rank
    spatial = []
    for k, s, (left, right), op in zip(k_eff, strides, pairs, ops, strict=True):
        n = int(r.integers(1, MAX_LENGTH[rank] - 1))
        while (n - 1) * s + k - left - right + op < 1:
            n += 1
        spatial.append(n)
    channels = groups * int(r.integers(1, 3))
    data_format, batch, shape = _layout(r, tuple(spatial), channels)
    config = dict(
        filters=groups * int(r.integers(1, 3)),
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        data_format=data_format,
        dilation_rate=dilation,
        groups=groups,
        use_bias=bool(r.random() < 0.75),
        impl=_impl(seed + 12, rank),  # another phase of the cycle
    )
    return TRANSPOSED[rank](**config), config, batch, shape, pairs


def _random_params(spec, shape, seed):
    return {
        name: normal(seed + i, s)
        for i, (name, s) in enumerate(sorted(spec.param_shapes(shape).items()))
    }


def _ours(cases):
    """Each case's output and VJP w.r.t. (x, params), all in one jitted
    program; ``cases`` are ``(spec, shape)`` pairs."""
    specs = [spec for spec, _ in cases]
    args = []
    for i, (spec, shape) in enumerate(cases):
        x = normal(100 + i, shape)
        params = _random_params(spec, shape, 200 + 10 * i)
        ct = normal(300 + i, spec.compute_output_shape(shape))
        args.append((x, params, ct))

    def run(args):
        results = []
        for spec, (x, params, ct) in zip(specs, args, strict=True):
            y, vjp = jax.vjp(lambda x_, p, s=spec: s.apply(p, x_), x, params)
            results.append((y, vjp(ct)))
        return results

    results = jax.jit(run, compiler_options=FAST_COMPILE)(args)
    return list(zip(args, results, strict=True))


# Each sweep's program runs once per test process (per xdist worker).


@functools.cache
def _forward_results():
    return _ours([(c[0], c[3]) for c in map(_forward_case, range(N_FORWARD))])


@functools.cache
def _transposed_results():
    return _ours([(c[0], c[3]) for c in map(_transposed_case, range(N_TRANSPOSED))])


def _compare(spec, batch, args, result, torch_fn):
    """Our value and VJPs against ``torch_fn(x_t, w_t, b_t)``'s (float64)."""
    (x, params, ct), (y, (gx, gparams)) = args, result
    channels_last = spec.data_format == "channels_last"
    x_t = _to_torch(x, batch, channels_last)
    w_t = _torch_kernel(params["kernel"])
    b_t = None
    if "bias" in params:
        b_t = torch.tensor(np.asarray(params["bias"], np.float64), requires_grad=True)
    y_t = torch_fn(x_t, w_t, b_t)
    (y_t * _to_torch(ct, batch, channels_last, grad=False)).sum().backward()
    assert_close(y, _from_torch(y_t, batch, channels_last))
    assert_close(gx, _from_torch(x_t.grad, batch, channels_last), err_msg="VJP x")
    assert_close(gparams["kernel"], _from_torch_kernel(w_t.grad), err_msg="VJP kernel")
    if b_t is not None:
        assert_close(gparams["bias"], b_t.grad.numpy(), err_msg="VJP bias")


# ---- 1. explicit padding x padding_mode, forward --------------------------------------


def _form(padding):
    if isinstance(padding, int):
        return "int"
    return "pairs" if any(isinstance(p, tuple) for p in padding) else "ints"


def _spatial(spec, shape):
    return (
        shape[-spec.rank - 1 : -1]
        if spec.data_format == "channels_last"
        else (shape[-spec.rank :])
    )


def test_forward_cases_cover_the_options():
    cases = [_forward_case(s) for s in range(N_FORWARD)]
    specs = [c[0] for c in cases]
    modes_and_forms = {(s.padding_mode, _form(c["padding"])) for s, c, *_ in cases}
    assert modes_and_forms == {(m, f) for m in MODES for f in ("int", "ints", "pairs")}
    assert {(s.rank, s.padding_mode) for s in specs} == {
        (rank, mode) for rank in (1, 2, 3) for mode in MODES
    }
    assert {c[1]["padding_mode"] for c in cases} > set(MODES)  # upper case too
    assert {s.groups > 1 for s in specs} == {False, True}
    assert {max(s.strides) > 1 for s in specs} == {False, True}
    assert {max(s.dilation_rate) > 1 for s in specs} == {False, True}
    assert {s.data_format for s in specs} == {"channels_last", "channels_first"}
    assert {s.use_bias for s in specs} == {False, True}
    assert {len(c[2]) for c in cases} == {1, 2}
    assert {"auto", "reference", "shift", "blockdiag", "fft", "ncw"} <= {
        s.impl for s in specs
    }
    # PyTorch's limits are reached: reflect pads up to L - 1, circular up to L
    for mode, slack in (("reflect", 1), ("circular", 0)):
        assert any(
            max(pair) == n - slack
            for spec, _, _, shape, _ in cases
            if spec.padding_mode == mode
            for pair, n in zip(spec.padding, _spatial(spec, shape), strict=True)
        ), mode


@pytest.mark.parametrize("seed", range(N_FORWARD))
def test_explicit_padding_matches_torch(seed):
    spec, _, batch, _, pairs = _forward_case(seed)
    args, result = _forward_results()[seed]
    mode = TORCH_MODE[spec.padding_mode]

    def torch_fn(x_t, w_t, b_t):
        x_t = F.pad(x_t, _torch_pad(pairs), mode=mode)
        return TORCH_CONV[spec.rank](
            x_t, w_t, b_t, stride=spec.strides, dilation=spec.dilation_rate,
            groups=spec.groups,
        )  # fmt: skip

    _compare(spec, batch, args, result, torch_fn)


def test_symmetric_padding_is_torch_conv_padding():
    """A symmetric explicit padding with "zeros" is ``F.conv*d(padding=p)``,
    and the module ``torch.nn.Conv2d(padding=p, padding_mode=mode)``'s."""
    x = normal(0, (2, 7, 6, 4))
    for mode in MODES:
        spec = cj.Conv2D(6, (3, 2), padding=(2, 1), groups=2, padding_mode=mode,
                         use_bias=False)  # fmt: skip
        kernel = normal(1, (3, 2, 2, 6))
        module = torch.nn.Conv2d(4, 6, (3, 2), padding=(2, 1), groups=2,
                                 padding_mode=mode, bias=False).double()  # fmt: skip
        with torch.no_grad():
            module.weight.copy_(_torch_kernel(kernel))
        y_t = module(_to_torch(x, (2,), True, grad=False))
        y = spec.apply({"kernel": kernel}, x)
        assert_close(y, _from_torch(y_t, (2,), True), err_msg=mode)
        if mode == "zeros":
            y_f = F.conv2d(_to_torch(x, (2,), True, grad=False),
                           _torch_kernel(kernel), padding=(2, 1), groups=2)  # fmt: skip
            assert_close(y, _from_torch(y_f, (2,), True))


# ---- 2. transposed convolutions with an explicit padding --------------------------------


def test_transposed_cases_cover_the_options():
    specs = [_transposed_case(s)[0] for s in range(N_TRANSPOSED)]
    assert {s.rank for s in specs} == {1, 2, 3}
    assert {any(a != b for a, b in s.padding) for s in specs} == {False, True}
    assert {s.output_padding is None for s in specs} == {False, True}
    assert {s.groups > 1 for s in specs} == {False, True}
    assert {max(s.strides) > 1 for s in specs} == {False, True}
    assert {max(s.dilation_rate) > 1 for s in specs} == {False, True}
    # a padding beyond the kernel's overhang crops into the scattered input
    overhang = [
        max(max(p) - (k - 1) * d for p, k, d in zip(
            s.padding, s.kernel_size, s.dilation_rate, strict=True))
        for s in specs
    ]  # fmt: skip
    assert max(overhang) >= 1
    # output_padding >= strides where the dilation allows it (PyTorch's rule)
    assert any(
        op >= st
        for s in specs
        if s.output_padding
        for op, st in zip(s.output_padding, s.strides, strict=True)
    )


@pytest.mark.parametrize("seed", range(N_TRANSPOSED))
def test_explicit_transposed_padding_matches_torch(seed):
    """PyTorch's ``padding`` and ``output_padding`` where the padding is
    symmetric; an asymmetric one crops the full (padding 0) output,
    ``F.pad`` with negative amounts, and then the bias is added."""
    spec, _, batch, _, pairs = _transposed_case(seed)
    args, result = _transposed_results()[seed]
    rank = spec.rank
    ops = spec.output_padding or (0,) * rank
    symmetric = all(left == right for left, right in pairs)

    def torch_fn(x_t, w_t, b_t):
        conv = TORCH_CONV_T[rank]
        kwargs = dict(stride=spec.strides, dilation=spec.dilation_rate,
                      groups=spec.groups)  # fmt: skip
        if symmetric:
            return conv(x_t, w_t, b_t, padding=tuple(p for p, _ in pairs),
                        output_padding=ops, **kwargs)  # fmt: skip
        y = conv(x_t, w_t, **kwargs)
        y = F.pad(
            y,
            _torch_pad(
                [(-lo, op - hi) for (lo, hi), op in zip(pairs, ops, strict=True)]
            ),
        )
        return y if b_t is None else y + b_t.reshape(-1, *(1,) * rank)

    _compare(spec, batch, args, result, torch_fn)


# ---- 3. "same" and "causal" with the non-zero modes ---------------------------------------


def _same_cases():
    """``(spec, shape, how)``: stride-1 "same" per rank and mode against
    ``torch.nn.Conv*d(padding="same", padding_mode=...)`` (how="module");
    strided "same" (which PyTorch refuses) and "causal" (which it lacks)
    against ``F.pad`` of the amounts (how="pad")."""
    cases = []
    for i, (rank, mode) in enumerate(
        (rank, mode) for rank in (1, 2, 3) for mode in MODES[1:]
    ):
        kernel = (4, 3, 2)[:rank] if i % 2 else (2, 3, 3)[:rank]
        dilation = (1 + i % 2,) * rank
        spec = FORWARD[rank](
            4, kernel, padding="same", dilation_rate=dilation, padding_mode=mode,
            data_format="channels_first", groups=2,
        )  # fmt: skip
        cases.append((spec, (2, 2, *(7, 6, 5)[:rank]), "module"))
    for mode in MODES[1:]:
        cases.append((cj.Conv1D(3, 4, strides=3, padding="same", padding_mode=mode,
                                data_format="channels_first"), (2, 2, 11), "pad"))  # fmt: skip
        cases.append((cj.Conv2D(3, (3, 4), strides=(2, 3), padding="same",
                                padding_mode=mode, data_format="channels_first"),
                      (2, 2, 7, 8), "pad"))  # fmt: skip
        cases.append((cj.Conv1D(3, 3, dilation_rate=2, padding="causal",
                                padding_mode=mode, data_format="channels_first"),
                      (2, 2, 9), "pad"))  # fmt: skip
        cases.append((cj.Conv1D(2, 3, strides=2, padding="causal", groups=2,
                                padding_mode=mode, data_format="channels_first"),
                      (2, 2, 9), "pad"))  # fmt: skip
    return cases


N_SAME = len(_same_cases())


@functools.cache
def _same_results():
    return _ours([(s, shape) for s, shape, _ in _same_cases()])


@pytest.mark.parametrize("index", range(N_SAME))
def test_same_and_causal_with_modes_match_torch(index):
    spec, shape, how = _same_cases()[index]
    args, result = _same_results()[index]
    rank = spec.rank

    def torch_fn(x_t, w_t, b_t):
        if how == "module":
            module = getattr(torch.nn, f"Conv{rank}d")(
                w_t.shape[1] * spec.groups, spec.filters, spec.kernel_size,
                padding="same", dilation=spec.dilation_rate, groups=spec.groups,
                padding_mode=spec.padding_mode, bias=b_t is not None,
            )  # fmt: skip
            weights = {"weight": w_t} | ({} if b_t is None else {"bias": b_t})
            return torch.func.functional_call(module, weights, (x_t,))
        pads = spec.paddings(shape[2:])
        x_t = F.pad(x_t, _torch_pad(pads), mode=TORCH_MODE[spec.padding_mode])
        return TORCH_CONV[rank](x_t, w_t, b_t, stride=spec.strides,
                                dilation=spec.dilation_rate, groups=spec.groups)  # fmt: skip

    _compare(spec, (shape[0],), args, result, torch_fn)


def test_causal_amounts_and_torch_same_split():
    """The amounts the modes fill: "causal" pads ``k_eff - 1`` on the left;
    PyTorch's "same" puts the odd extra step on the right, as TensorFlow's
    does at stride 1."""
    assert cj.Conv1D(2, 3, dilation_rate=2, padding="causal").paddings((9,)) == (
        (4, 0),
    )
    assert cj.Conv2D(2, (4, 2), padding="same").paddings((5, 5)) == ((1, 2), (0, 1))


def _depthwise_cases():
    return [
        cj.DepthwiseConv1D(3, padding=((2, 1),), depth_multiplier=2,
                           padding_mode="reflect", data_format="channels_first"),
        cj.DepthwiseConv2D((2, 3), strides=(2, 1), dilation_rate=(1, 2),
                           padding=(1, (0, 2)), padding_mode="circular",
                           data_format="channels_first"),
        cj.DepthwiseConv1D(4, padding="causal", padding_mode="replicate",
                           data_format="channels_first", impl="shift"),
        cj.SeparableConv1D(4, 3, strides=2, padding=2, depth_multiplier=2,
                           padding_mode="replicate", data_format="channels_first"),
        cj.SeparableConv2D(3, 3, padding="same", padding_mode="reflect",
                           data_format="channels_first"),
    ]  # fmt: skip


def test_depthwise_and_separable_take_explicit_padding_and_modes():
    """Against PyTorch: a grouped ``F.conv*d`` with ``groups=C`` (and a 1 x 1
    one after it for the separable layers), on ``F.pad(mode=...)``."""
    specs = _depthwise_cases()
    xs = [normal(i, (2, 3, *(9, 7)[: s.rank])) for i, s in enumerate(specs)]
    params = [
        _random_params(s, x.shape, 10 * i)
        for i, (s, x) in enumerate(zip(specs, xs, strict=True))
    ]
    run = jax.jit(
        lambda params, xs: [
            s.apply(p, x) for s, p, x in zip(specs, params, xs, strict=True)
        ],
        compiler_options=FAST_COMPILE,
    )
    for spec, p, x, y in zip(specs, params, xs, run(params, xs), strict=True):
        rank = spec.rank
        pads = spec.paddings(x.shape[2:])
        x_t = F.pad(_to_torch(x, (2,), False, grad=False), _torch_pad(pads),
                    mode=TORCH_MODE[spec.padding_mode])  # fmt: skip
        depthwise = p["depthwise_kernel" if "depthwise_kernel" in p else "kernel"]
        *k, c, m = depthwise.shape
        weight = _torch_kernel(np.asarray(depthwise).reshape(*k, 1, c * m))
        y_t = TORCH_CONV[rank](x_t, weight, stride=spec.strides,
                               dilation=spec.dilation_rate, groups=c)  # fmt: skip
        if "pointwise_kernel" in p:
            y_t = TORCH_CONV[rank](y_t, _torch_kernel(p["pointwise_kernel"]))
        y_t = y_t + torch.tensor(np.asarray(p["bias"], np.float64)).reshape(
            -1, *(1,) * rank
        )
        assert_close(y, _from_torch(y_t, (2,), False), err_msg=type(spec).__name__)
        assert y.shape == spec.compute_output_shape(x.shape)


# ---- 4. shapes --------------------------------------------------------------------------


def _all_cases():
    return [
        *(("forward", _forward_case(s)) for s in range(N_FORWARD)),
        *(("transposed", _transposed_case(s)) for s in range(N_TRANSPOSED)),
    ]


def test_shapes_follow_apply():
    """``compute_output_shape`` (None in batch and spatial entries too) and
    the length helpers, given the padding as written, agree with
    ``apply``."""
    results = [*_forward_results(), *_transposed_results()]
    for (kind, case), (_, (y, _)) in zip(_all_cases(), results, strict=True):
        spec, config, batch, shape, _ = case
        assert spec.compute_output_shape(shape) == y.shape
        channel_axis = (
            len(shape) - 1 if spec.data_format == "channels_last" else (len(batch))
        )
        unknown = tuple(d if i == channel_axis else None for i, d in enumerate(shape))
        expected = tuple(
            d if i == channel_axis else None for i, d in enumerate(y.shape)
        )
        assert spec.compute_output_shape(unknown) == expected
        args = (_spatial(spec, shape), config["kernel_size"], config["strides"],
                config["padding"])  # fmt: skip
        if kind == "forward":
            lengths = cj.conv_output_length(*args, config["dilation_rate"])
        else:
            lengths = cj.conv_transpose_output_length(
                *args, config["output_padding"], config["dilation_rate"]
            )
        assert lengths == _spatial(spec, y.shape), (kind, config)
        if spec.rank == 1 and kind == "forward":  # an int length in 1-D
            one = (args[0][0], *args[1:], config["dilation_rate"])
            assert cj.conv_output_length(*one) == lengths[0]


def test_length_helpers_take_every_explicit_form():
    assert cj.conv_output_length(10, 3, padding=1) == 10
    assert cj.conv_output_length(10, 3, padding=((2, 0),)) == 10
    assert cj.conv_output_length(10, 3, padding=(0,)) == 8
    assert cj.conv_output_length((10, 6), 3, strides=2, padding=(1, (0, 3))) == (5, 4)
    assert cj.conv_output_length((None, 6), 3, padding=2) == (None, 8)
    # PyTorch's ConvTranspose length: (L - 1) * s - 2p + d * (k - 1) + op + 1
    for length, k, s, p, op, d in [(10, 4, 2, 1, 0, 1), (5, 3, 3, 2, 2, 1),
                                   (7, 3, 1, 4, 1, 2), (4, 2, 2, 0, 1, 1)]:  # fmt: skip
        expected = (length - 1) * s - 2 * p + d * (k - 1) + op + 1
        assert cj.conv_transpose_output_length(length, k, s, p, op, d) == expected
    assert cj.conv_transpose_output_length((4, 4), 3, 2, ((1, 0), 2), (1, 0)) == (9, 5)


# ---- 5. configs and the canonical form -------------------------------------------------


def test_configs_round_trip_through_json():
    for _, (spec, *_rest) in _all_cases():
        config = spec.get_config()
        assert ("padding_mode" in config) == (spec.padding_mode != "zeros")
        loaded = json.loads(json.dumps(config))
        assert loaded["padding"] == [list(p) for p in spec.padding]
        assert type(spec).from_config(loaded) == spec
    for spec in _depthwise_cases():
        config = json.loads(json.dumps(spec.get_config()))
        assert type(spec).from_config(config) == spec
        assert config.get("padding_mode", "zeros") == spec.padding_mode


def test_zeros_mode_keeps_keras_configs():
    import keras

    config = cj.Conv2D(4, 3, padding="same", padding_mode="ZEROS").get_config()
    assert "padding_mode" not in config and "impl" not in config
    assert keras.layers.Conv2D.from_config(config).padding == "same"
    assert cj.Conv2D.from_config(
        keras.layers.Conv2D(4, 3).get_config()
    ).padding_mode == ("zeros")


@pytest.mark.parametrize(
    "cls,forms",
    [
        (cj.Conv1D, [1, (1,), ((1, 1),), [1], [[1, 1]], np.array([1]),
                     np.int64(1), np.array([[1, 1]])]),
        (cj.Conv2D, [1, (1, 1), ((1, 1), (1, 1)), (1, (1, 1)), [[1, 1], 1],
                     np.array([1, 1])]),
        (cj.Conv3D, [1, (1, 1, 1), ((1, 1),) * 3]),
        (cj.Conv2DTranspose, [1, (1, 1), ((1, 1), (1, 1))]),
        (cj.DepthwiseConv1D, [1, (1,), ((1, 1),)]),
        (cj.SeparableConv2D, [1, (1, (1, 1))]),
    ],
)  # fmt: skip
def test_equal_paddings_give_equal_specs(cls, forms):
    args = (3,) if cls is cj.DepthwiseConv1D else (4, 3)
    specs = [cls(*args, padding=form) for form in forms]
    assert all(s == specs[0] and hash(s) == hash(specs[0]) for s in specs)
    assert specs[0].padding == ((1, 1),) * cls.rank
    assert all(type(side) is int for pair in specs[0].padding for side in pair)
    if not cls.transposed:
        assert cls(*args, padding_mode="Reflect").padding_mode == "reflect"
    # "valid" stays a name: it is Keras's argument (and a transposed
    # convolution's "valid" is not PyTorch's padding 0)
    assert cls(*args, padding=0) != cls(*args)
    assert cls(*args, padding=0).padding == ((0, 0),) * cls.rank


def test_equal_specs_compile_once():
    traces = []

    @functools.partial(jax.jit, static_argnums=2)
    def apply(kernel, x, spec):
        traces.append(spec)
        return spec.apply({"kernel": kernel}, x)

    x, kernel = normal(0, (1, 5, 2)), normal(1, (3, 2, 2))
    ys = [
        apply(
            kernel, x, cj.Conv1D(2, 3, padding=form, padding_mode=mode, use_bias=False)
        )
        for form, mode in [(1, "circular"), ((1,), "CIRCULAR"), ([[1, 1]], "Circular")]
    ]
    assert len(traces) == 1
    assert_close(ys[0], ys[2])


# ---- 6. errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls,kwargs,exc,message",
    [
        (cj.Conv1D, dict(padding=-1), ValueError,
         "`padding` must be >= 0 on every side of every axis (an explicit padding "
         "adds steps, it does not crop); received padding=-1."),
        (cj.Conv2D, dict(padding=(1, (0, -2))), ValueError,
         "`padding` must be >= 0 on every side of every axis (an explicit padding "
         "adds steps, it does not crop); received padding=(1, (0, -2))."),
        (cj.Conv1DTranspose, dict(padding=((-1, 0),)), ValueError,
         "`padding` must be >= 0 on every side of every axis (an explicit padding "
         "adds steps, it does not crop); received padding=((-1, 0),)."),
        (cj.Conv1D, dict(padding=(1, 2)), ValueError,
         "`padding` must be a string, an int, or a tuple with an int or a (left, "
         "right) pair per spatial axis (1 entry for a 1-D convolution); received "
         "padding=(1, 2) of length 2. For a left and a right padding write "
         "padding=((1, 2),)."),
        (cj.Conv3D, dict(padding=(1, 1)), ValueError,
         "`padding` must be a string, an int, or a tuple with an int or a (left, "
         "right) pair per spatial axis (3 entries for a 3-D convolution); received "
         "padding=(1, 1) of length 2."),
        (cj.Conv2D, dict(padding=((1, 2, 3), 1)), ValueError,
         "`padding` must have an int or a (left, right) pair on each axis; "
         "received padding=((1, 2, 3), 1), whose entry on axis 0 has 3 values."),
        (cj.Conv1D, dict(padding=1.5), TypeError,
         "`padding` must be one of 'valid', 'same', 'causal', or an int, or a "
         "tuple with an int or a (left, right) pair per spatial axis; received 1.5 "
         "of type float."),
        (cj.Conv2DTranspose, dict(padding=None), TypeError,
         "`padding` must be one of 'valid', 'same', or an int, or a tuple with an "
         "int or a (left, right) pair per spatial axis; received None of type "
         "NoneType."),
        (cj.Conv2D, dict(padding=(True, 1)), TypeError,
         "`padding` entries must be ints, or (left, right) pairs of ints; "
         "received padding=(True, 1)."),
        (cj.Conv1D, dict(padding_mode="zero"), ValueError,
         "`padding_mode` must be one of 'zeros', 'reflect', 'replicate', "
         "'circular' (any case); received padding_mode='zero'."),
        (cj.DepthwiseConv2D, dict(padding_mode=0), TypeError,
         "`padding_mode` must be one of 'zeros', 'reflect', 'replicate', "
         "'circular'; received 0 of type int."),
        (cj.Conv1DTranspose, dict(padding=1, padding_mode="reflect"), ValueError,
         "Conv1DTranspose supports only padding_mode='zeros' (as PyTorch's "
         "transposed convolutions do): its output is cropped, not its input "
         "padded; received padding_mode='reflect'."),
        (cj.Conv3DTranspose, dict(padding_mode="Circular"), ValueError,
         "Conv3DTranspose supports only padding_mode='zeros' (as PyTorch's "
         "transposed convolutions do): its output is cropped, not its input "
         "padded; received padding_mode='Circular'."),
        (cj.Conv2DTranspose, dict(padding=1, strides=(2, 1), output_padding=(1, 1)),
         ValueError,
         "`output_padding` must be smaller than `strides` or `dilation_rate` on "
         "axis 1 (PyTorch's rule, for an explicit padding); received "
         "output_padding=(1, 1) with strides=(2, 1) and dilation_rate=(1, 1)."),
        (cj.Conv1DTranspose, dict(padding="same", dilation_rate=2, output_padding=1),
         ValueError,
         "`output_padding` must be smaller than `strides`; received "
         "output_padding=1 with strides=1."),
    ],
)  # fmt: skip
def test_spec_errors(cls, kwargs, exc, message):
    args = (3,) if cls is cj.DepthwiseConv2D else (4, 3)
    with _raises(exc, message):
        cls(*args, **kwargs)


def test_torch_output_padding_rule_for_explicit_padding():
    """PyTorch allows output_padding below the dilation too; Keras's string
    paddings keep Keras's rule (below the stride)."""
    spec = cj.Conv1DTranspose(2, 3, padding=1, dilation_rate=2, output_padding=1)
    y_t = F.conv_transpose1d(torch.ones(1, 2, 4), torch.ones(2, 2, 3), padding=1,
                             dilation=2, output_padding=1)  # fmt: skip
    assert (
        spec.compute_output_shape((1, 4, 2))
        == (1, 7, 2)
        == (1, y_t.shape[2], y_t.shape[1])
    )
    with _raises(
        ValueError,
        "`output_padding` must be smaller than `strides`; received "
        "output_padding=1 with strides=1.",
    ):
        cj.Conv1DTranspose(2, 3, padding="valid", dilation_rate=2, output_padding=1)


@pytest.mark.parametrize(
    "spec,shape,ok_shape,message",
    [
        (cj.Conv1D(2, 3, padding=4, padding_mode="reflect"), (1, 4, 2), (1, 5, 2),
         "padding_mode='reflect' needs a padding smaller than the input length on "
         "each side (PyTorch's limit); the input length 4 is too short for a "
         "padding of (4, 4)."),
        (cj.Conv2D(2, 3, padding=(0, (0, 5)), padding_mode="circular"),
         (1, 4, 4, 2), (1, 4, 5, 2),
         "padding_mode='circular' needs a padding at most the input length on "
         "each side (PyTorch's limit); the input length 4 along spatial axis 1 "
         "is too short for a padding of (0, 5)."),
        (cj.Conv1D(2, 5, padding="same", padding_mode="reflect",
                   data_format="channels_first"), (1, 2, 2), (1, 2, 3),
         "padding_mode='reflect' needs a padding smaller than the input length on "
         "each side (PyTorch's limit); the input length 2 is too short for a "
         "padding of (2, 2)."),
        (cj.DepthwiseConv1D(3, padding="causal", dilation_rate=3,
                            padding_mode="circular"), (1, 5, 2), (1, 6, 2),
         "padding_mode='circular' needs a padding at most the input length on "
         "each side (PyTorch's limit); the input length 5 is too short for a "
         "padding of (6, 0)."),
        (cj.Conv1D(2, 1, padding=1, padding_mode="replicate"), (1, 0, 2), (1, 1, 2),
         "padding_mode='replicate' needs a non-empty input to replicate; the input "
         "length is 0."),
        (cj.Conv3D(2, 3, padding=((0, 0), 0, 1)), (1, 2, 3, 3, 2), (1, 3, 3, 3, 2),
         "The input length 2 along spatial axis 0 is too short for a padding of "
         "(0, 0) and a dilated kernel extent of 3: the output would have length "
         "0. Use a longer input, a smaller kernel_size or dilation_rate, or more "
         "padding."),
        (cj.Conv2DTranspose(2, 3, padding=(0, 3)), (1, 3, 1, 2), (1, 3, 5, 2),
         "The input length 1 along spatial axis 1 is too short for a transposed "
         "convolution with a padding of (3, 3) and a dilated kernel extent of 3: "
         "the output would have length -3. Use a longer input, a smaller padding "
         "or a larger output_padding."),
    ],
)  # fmt: skip
def test_length_errors_at_every_entry(spec, shape, ok_shape, message):
    """From ``compute_output_shape``, ``init`` and ``apply`` (under jit too),
    before any XLA op."""
    with _raises(ValueError, message):
        spec.compute_output_shape(shape)
    with _raises(ValueError, message):
        spec.init(jax.random.key(0), shape)
    params = _random_params(spec, ok_shape, 0)
    for apply in (spec.apply, jax.jit(spec.apply)):
        with _raises(ValueError, message):
            apply(params, jnp.ones(shape))


def test_length_helpers_validate_explicit_padding():
    with _raises(
        ValueError,
        "`padding` must be >= 0 on every side of every axis (an explicit padding "
        "adds steps, it does not crop); received padding=(1, -1).",
    ):
        cj.conv_output_length((4, 4), 3, padding=(1, -1))
    with _raises(
        ValueError,
        "`output_padding` must be smaller than `strides` or `dilation_rate` "
        "(PyTorch's rule, for an explicit padding); received output_padding=2 "
        "with strides=2 and dilation_rate=1.",
    ):
        cj.conv_transpose_output_length(4, 3, 2, padding=1, output_padding=2)
    with _raises(
        ValueError,
        "`padding` must be one of 'valid', 'same' (any case); received "
        "padding='causal'.",
    ):
        cj.conv_transpose_output_length(4, 3, padding="causal")
