"""cj.Graph on its own (without PyTorch): its checks, shapes, channels-last
runs and config; tests/test_torch_fx.py compares converted models with
PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv1djax as cj

CF = "channels_first"


def _gated(data_format=CF):
    conv = cj.Conv1D(4, 2, padding="causal", data_format=data_format)
    return cj.Graph(
        [("conv", conv), ("proj", cj.Conv1D(2, 1, data_format=data_format))],
        [
            cj.Node("h", "layer", (cj.Ref("x"),), (("layer", "conv"),)),
            cj.Node("parts", "chunk", (cj.Ref("h"), 2), (("dim", 1),)),
            cj.Node("a", "getitem", (cj.Ref("parts"), 0)),
            cj.Node("b", "getitem", (cj.Ref("parts"), 1)),
            cj.Node("ta", "activation", (cj.Ref("a"), "tanh")),
            cj.Node("sb", "activation", (cj.Ref("b"), "sigmoid")),
            cj.Node("z", "mul", (cj.Ref("ta"), cj.Ref("sb"))),
            cj.Node("p", "layer", (cj.Ref("z"),), (("layer", "proj"),)),
            cj.Node("s", "add", (cj.Ref("p"), cj.Ref("x"))),
            cj.Node("w", "weight", (), (("weight", "scale"),)),
            cj.Node("y", "mul", (cj.Ref("s"), cj.Ref("w"))),
            cj.Node("flat", "flatten", (cj.Ref("y"), 1)),
        ],
        inputs=["x"],
        output=(cj.Ref("y"), cj.Ref("flat")),
        weights=[("scale", (1, 2, 1))],
        data_format=data_format,
    )


def test_graph_runs_checks_and_saves(tmp_path):
    g = _gated()
    params = g.init(jax.random.key(0), (None, 2, 9))
    params["scale"] = jnp.asarray([[[2.0], [-1.0]]])
    assert sorted(params) == ["conv", "proj", "scale"]
    assert g.count_params((None, 2, 9)) == 4 * 2 * 2 + 4 + 2 * 2 + 2 + 2
    x = np.random.default_rng(0).normal(size=(3, 2, 9)).astype(np.float32)
    y, flat = g.apply(params, x)
    h = cj.Conv1D(4, 2, padding="causal", data_format=CF).apply(params["conv"], x)
    z = jnp.tanh(h[:, :2]) * jax.nn.sigmoid(h[:, 2:])
    p = cj.Conv1D(2, 1, data_format=CF).apply(params["proj"], z)
    np.testing.assert_allclose(y, (p + x) * params["scale"], rtol=1e-6)
    np.testing.assert_array_equal(flat, y.reshape(3, -1))
    assert g.compute_output_shape((None, 2, 9)) == ((None, 2, 9), (None, 18))
    # channels-last: the same numbers, rank >= 3 arrays in and out channels-last
    cl = _gated("channels_last")
    y_cl, flat_cl = cl.apply(params, np.moveaxis(x, 1, -1))
    np.testing.assert_allclose(np.moveaxis(y_cl, -1, 1), y, rtol=1e-6)
    np.testing.assert_allclose(flat_cl, flat, rtol=1e-6)
    cj.save(tmp_path / "g.npz", g, params)
    loaded, loaded_params = cj.load(tmp_path / "g.npz")
    assert loaded == g
    np.testing.assert_array_equal(loaded.apply(loaded_params, x)[0], y)


def test_graph_refuses_bad_wiring():
    conv = cj.Conv1D(2, 1)
    node = cj.Node("y", "layer", (cj.Ref("x"),), (("layer", "conv"),))
    cases = [
        (dict(nodes=[cj.Node("y", "add", (cj.Ref("q"), 1))]), r"reads \['q'\], not defined"),
        (dict(nodes=[cj.Node("y", "fft", (cj.Ref("x"),))]), r"op 'fft' is not one of"),
        (dict(nodes=[node, node]), r"'y' is used twice"),
        (dict(nodes=[cj.Node("y", "layer", (cj.Ref("x"),), (("layer", "c"),))]),
         r"calls layer 'c', which is not one of \['conv'\]"),
        (dict(nodes=[node], output=cj.Ref("z")), r"output reads \['z'\]"),
        (dict(nodes=[node], data_format="NCW"), r"`data_format` must be one of"),
    ]  # fmt: skip
    for kwargs, message in cases:
        args = dict(layers=[("conv", conv)], inputs=["x"], output=cj.Ref("y"))
        with pytest.raises(ValueError, match=message):
            cj.Graph(**(args | kwargs))
    g = cj.Graph([("conv", conv)], [node], ["x"], cj.Ref("y"))
    with pytest.raises(ValueError, match=r"Graph node 'y'.*"):
        g.apply(g.init(0, (None, 4, 3)), jnp.ones((1, 4, 5)))
