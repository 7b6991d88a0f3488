"""cj.interop.from_torch_module on whole PyTorch models (torch.fx traces
their ``forward``): real architectures, defined here from their papers'
descriptions with random weights (no downloads), converted and compared
with PyTorch in float32, eval mode: outputs, and the gradients of a scalar
loss with respect to the input and every parameter, to a max relative
difference (max |a - b| / max |b|, per array) of 1e-5.

The models are SMALL to keep the suite fast (few channels, tiny inputs,
fewer blocks where the architecture allows; each says what it keeps); each
is compiled once."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv1djax as cj

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

RTOL = 1e-5


@pytest.fixture(autouse=True)
def _seeded():
    """Each test's models built from the same random weights whatever ran
    before (a float32 gradient summed with cancellation can be a few 1e-6
    off on either side: tested on fixed weights, not on whatever comes)."""
    torch.manual_seed(0)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def check_model(net, shape, *, seed=0, **convert):
    """Converts ``net`` and compares outputs and gradients with PyTorch;
    returns ``(model, params, report)``."""
    torch.manual_seed(seed)
    net = net.eval()
    start = time.perf_counter()
    model, params = cj.interop.from_torch_module(net, **convert)
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = net(xt)
    w = rng.normal(size=tuple(yt.shape)).astype(np.float32)
    (yt * torch.from_numpy(w)).sum().backward()

    channels_last = convert.get("data_format") == "channels_last"
    to_cl = (lambda a: np.moveaxis(a, 1, -1)) if channels_last else (lambda a: a)

    @jax.jit
    def run(params, x):
        def loss(params, x):
            y = model.apply(params, x)
            return jnp.sum(y * jnp.asarray(to_cl(w))), y

        return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)

    (_, y), (gp, gx) = run(params, jnp.asarray(to_cl(x)))
    report = {
        "output": _rel(to_cl(yt.detach().numpy()), y),
        "input grad": _rel(to_cl(xt.grad.numpy()), gx),
    }
    grads = cj.interop.to_torch(model, gp)
    named = dict(net.named_parameters())
    assert named, "a model with parameters"
    for name, p in named.items():
        want = np.zeros(p.shape) if p.grad is None else p.grad.numpy()  # unused: 0
        if p.grad is None:
            assert not np.asarray(grads[name]).any(), name
            continue
        report[name] = _rel(want, grads[name])
    worst = max(report, key=report.get)
    assert report[worst] <= RTOL, (worst, report[worst])
    report["conversion seconds"] = seconds
    report["run"] = run
    return model, params, report


# ---- WaveNet / TCN --------------------------------------------------------------


class GatedBlock(nn.Module):
    """WaveNet's residual block: a causal dilated convolution (padded on
    the left by F.pad) into a tanh x sigmoid gate, a 1x1 residual and a 1x1
    skip output."""

    def __init__(self, channels, dilation):
        super().__init__()
        self.dilation = dilation
        self.filt = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        h = self.filt(F.pad(x, (self.dilation, 0)))
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return x + self.res(z), self.skip(z)


class WaveNet(nn.Module):
    """WaveNet (van den Oord et al. 2016): causal input convolution, a
    stack of gated dilated blocks (dilations 1, 2, 4, 8: one cycle of the
    paper's 1..512), skip sums, ReLU 1x1 head; a learned skip gain read
    directly as a Parameter. 4 channels."""

    def __init__(self, channels=4):
        super().__init__()
        self.inp = nn.Conv1d(1, channels, 2)
        self.blocks = nn.ModuleList(GatedBlock(channels, d) for d in (1, 2, 4, 8))
        self.gain = nn.Parameter(torch.randn(1, channels, 1))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(channels, 1, 1))

    def forward(self, x):
        x = self.inp(F.pad(x, (1, 0)))
        skips = 0
        for block in self.blocks:
            x, s = block(x)
            skips = skips + s
        return self.out(skips * self.gain)


def test_wavenet_and_its_stream():
    """Matches PyTorch; then streamed in chunks of 7 steps with
    cj.stream_apply (each F.pad before its convolution became that
    convolution's causal padding), equal to PyTorch on the whole signal."""
    net = WaveNet()
    model, params, _ = check_model(net, (2, 1, 32))
    assert isinstance(model, cj.Graph)
    assert "blocks.3.filt" in params and "gain" in params
    assert "pad" not in {node.op for node in model.nodes}
    x = np.random.default_rng(6).normal(size=(2, 1, 35)).astype(np.float32)
    want = net(torch.from_numpy(x)).detach().numpy()
    assert cj.stream_latency(model) == 0
    state = cj.stream_init(model, params, (2,))
    step = jax.jit(lambda p, s, c: cj.stream_apply(model, p, s, c))
    ys = []
    for start in range(0, 35, 7):
        y, state = step(params, state, jnp.asarray(x[..., start : start + 7]))
        ys.append(y)
    assert _rel(np.concatenate(ys, axis=-1), want) <= RTOL


# ---- U-Net ------------------------------------------------------------------------


def double_conv(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(o, o, 3, padding=1), nn.ReLU(inplace=True))  # fmt: skip


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015): double 3x3 convolutions, 2x2 max
    pooling down, 2x2 ConvTranspose2d up, torch.cat skips, 1x1 head. Two
    levels (the paper has four), 4 and 8 channels."""

    def __init__(self, c=4):
        super().__init__()
        self.down1 = double_conv(3, c)
        self.down2 = double_conv(c, 2 * c)
        self.bottom = double_conv(2 * c, 4 * c)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = double_conv(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = double_conv(2 * c, c)
        self.head = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(self.pool(a))
        m = self.bottom(self.pool(b))
        b = self.dec2(torch.cat([self.up2(m), b], dim=1))
        return self.head(self.dec1(torch.cat([self.up1(b), a], dim=1)))


def test_unet_channels_last():
    """The U-Net converted to channels-last: NHWC in and out, PyTorch's
    numbers."""
    model, params, _ = check_model(UNet(), (1, 3, 16, 16), data_format="channels_last")
    assert model.data_format == "channels_last"
    assert model.compute_output_shape((None, 16, 16, 3)) == (None, 16, 16, 2)


# ---- modules and functions one at a time ----------------------------------------------


class Functional(nn.Module):
    """Functional forms and tensor methods in one forward."""

    def forward(self, x):
        y = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        z = F.adaptive_avg_pool2d(x, 3)
        z = F.interpolate(z, size=y.shape[-2:], mode="nearest")
        y = F.leaky_relu(y, 0.1) + F.relu6(z) * 0.5 - F.avg_pool2d(y, 3, 1, 1)
        y = F.pad(y, (1, 2, 1, 1), mode="reflect")
        b, c, h, w = y.shape
        y = y.view(b, c * 2, h // 2, w).transpose(2, 3).reshape(b, -1)
        return torch.flatten(y.unsqueeze(1), 1).mean(dim=1, keepdim=True) + y[:, :3]


def test_modules_and_functions():
    """Modules beyond Keras's arguments (as graph ops) and a forward of
    functions, each against PyTorch, with the rank or layout of each."""
    modules = [
        (nn.Conv1d(3, 4, 3, stride=2, dilation=2), (2, 3, 13)),
        (nn.Conv2d(3, 4, 3, stride=2, dilation=(2, 3), padding=(1, 2)), (2, 3, 10, 13)),
        (nn.ConvTranspose1d(3, 4, 3, stride=2, dilation=2, padding=1, output_padding=1),
         (2, 3, 7)),
        (nn.MaxPool2d(3, 2, padding=1), (2, 3, 10, 13)),
        (nn.MaxPool1d(3, 2, ceil_mode=True), (2, 3, 10)),
        (nn.MaxPool1d(3, 2, padding=1, dilation=2), (2, 3, 11)),
        (nn.MaxPool1d(2, 2, padding=1, ceil_mode=True), (2, 3, 11)),  # the last window dropped
        (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
         (2, 3, 10, 13)),
        (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 10, 13)),
        (nn.AdaptiveAvgPool2d(3), (2, 3, 10, 13)),
        (nn.AdaptiveMaxPool1d(4), (2, 3, 10)),
        (nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 5, 6)),
        (nn.Upsample(scale_factor=1.7, mode="bilinear", align_corners=True), (2, 3, 5, 6)),
        (nn.Upsample(size=(7, 9), mode="bilinear"), (2, 3, 5, 6)),
        (nn.Upsample(scale_factor=3, mode="linear"), (2, 3, 5)),
        (nn.Upsample(scale_factor=2.5, mode="nearest"), (2, 3, 5, 6)),
        (nn.ReflectionPad2d((1, 2, 0, 3)), (2, 3, 5, 6)),
        (nn.ReplicationPad1d(2), (2, 3, 5)),
        (nn.CircularPad2d(1), (2, 3, 5, 6)),
        (nn.ZeroPad2d((-1, 2, 1, -2)), (2, 3, 5, 6)),
        (nn.Flatten(), (2, 3, 5, 6)),
        (Functional(), (2, 3, 10, 13)),
    ]  # fmt: skip
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    for module, shape in modules:
        module.eval()
        x = rng.normal(size=shape).astype(np.float32)
        want = module(torch.from_numpy(x)).detach().numpy()
        formats = ["channels_first"]
        if isinstance(module, Functional):  # pooling, padding, interpolation, view
            formats.append("channels_last")
        for fmt in formats:
            model, params = cj.interop.from_torch_module(module, data_format=fmt)
            xin = x if fmt == "channels_first" else np.moveaxis(x, 1, -1)
            got = np.asarray(model.apply(params, jnp.asarray(xin)))
            if fmt == "channels_last" and got.ndim >= 3:
                got = np.moveaxis(got, -1, 1)
            assert _rel(got, want) <= RTOL, (module, fmt)
            shape_in = (None, *xin.shape[1:])
            assert model.compute_output_shape(shape_in)[1:] == tuple(
                (got if fmt == "channels_first" else np.asarray(
                    model.apply(params, jnp.asarray(xin)))).shape[1:])  # fmt: skip


# ---- state dicts, saving, errors ---------------------------------------------------


def test_state_dict_both_ways_and_save(tmp_path):
    net = WaveNet().eval()
    model, params = cj.interop.from_torch_module(net)
    state = cj.interop.to_torch(model, params)
    assert sorted(state) == sorted(net.state_dict())
    other = WaveNet().eval()
    other.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = np.random.default_rng(2).normal(size=(1, 1, 16)).astype(np.float32)
    np.testing.assert_array_equal(
        other(torch.from_numpy(x)).detach().numpy(),
        net(torch.from_numpy(x)).detach().numpy(),
    )
    back = cj.interop.from_torch(model, other.state_dict())
    assert jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), back, params)
    )
    with pytest.raises(
        ValueError, match=r"keys no layer of the graph takes: \['extra'\]"
    ):
        cj.interop.from_torch(model, {**net.state_dict(), "extra": torch.zeros(1)})
    cj.save(tmp_path / "wavenet.safetensors", model, params)
    loaded, loaded_params = cj.load(tmp_path / "wavenet.safetensors")
    assert loaded == model
    np.testing.assert_array_equal(
        loaded.apply(loaded_params, x), model.apply(params, x)
    )


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 2, 3)

    def forward(self, x):
        return torch.fft.rfft(self.conv(x)).real


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


def test_refusals_name_node_and_line():
    with pytest.raises(ValueError, match=r"node 'fft_rfft' .*test_torch_fx\.py\", line \d+"
                       r".*torch\.fft\.rfft.*no conv1djax equivalent"):  # fmt: skip
        cj.interop.from_torch_module(Unsupported().eval())
    with pytest.raises(ValueError, match="torch.fx cannot trace Branchy.forward"):
        cj.interop.from_torch_module(Branchy().eval())
    lstm = nn.Sequential(nn.Conv1d(2, 2, 1), nn.LSTM(2, 2)).eval()
    with pytest.raises(TypeError, match=r"module 1 \(LSTM\) has no conv1djax"):
        cj.interop.from_torch_module(lstm)
    with pytest.warns(FutureWarning):  # the old API, deprecated
        old = torch.nn.utils.weight_norm(nn.Conv1d(2, 3, 3))
    with pytest.raises(
        ValueError, match=r"torch\.nn\.utils\.weight_norm.*remove_weight_norm"
    ):
        cj.interop.from_torch(
            cj.Conv1D(3, 3, data_format="channels_first"), old.state_dict()
        )
    # the old API converts as a module: cj.WeightNormalization reads weight_g / weight_v
    layer, params = cj.interop.from_torch_module(old)
    assert type(layer).__name__ == "WeightNormalization"
    x = np.random.default_rng(4).normal(size=(2, 2, 9)).astype(np.float32)
    want = old(torch.from_numpy(x)).detach().numpy()
    assert _rel(layer.apply(params, x), want) <= RTOL
    # Keras's paddings still refuse strides > 1 with dilation > 1
    with pytest.raises(ValueError, match="strides > 1"):
        cj.Conv1D(2, 3, strides=2, dilation_rate=2)
    cj.Conv1D(2, 3, strides=2, dilation_rate=2, padding=((1, 1),))  # PyTorch's allow


# ---- HiFi-GAN -------------------------------------------------------------------------

LRELU_SLOPE = 0.1
weight_norm = torch.nn.utils.parametrizations.weight_norm


class ResBlock1(nn.Module):
    """HiFi-GAN's ResBlock1: per dilation, x + conv(lrelu(conv_d(lrelu(x))))."""

    def __init__(self, channels, kernel_size, dilations):
        super().__init__()
        pad = lambda d: (kernel_size * d - d) // 2  # noqa: E731
        self.convs1 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=pad(d))
            )  # fmt: skip
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, padding=pad(1)))
            for _ in dilations
        )

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class Generator(nn.Module):
    """HiFi-GAN V1's generator (Kong et al. 2020): weight-normed conv_pre,
    ConvTranspose1d upsampling (kernel 2u, padding (k - u) / 2), each
    followed by the multi-receptive-field fusion (the mean of ResBlock1s
    with kernels 3, 7, 11 and dilations 1, 3, 5), leaky ReLU 0.1, the final
    leaky ReLU (PyTorch's default slope, as the reference code), conv_post
    and tanh. Small: 8 mel bins, 16 channels, upsampling 4 x 2 (V1: 8, 8, 2,
    2 from 512 channels)."""

    def __init__(self, mels=8, ch=16, rates=(4, 2), kernels=(3, 7, 11),
                 dilations=(1, 3, 5)):  # fmt: skip
        super().__init__()
        self.num_kernels = len(kernels)
        self.conv_pre = weight_norm(nn.Conv1d(mels, ch, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, u in enumerate(rates):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(weight_norm(nn.ConvTranspose1d(
                c_in, c_out, 2 * u, stride=u, padding=u // 2)))  # fmt: skip
            for k in kernels:
                self.resblocks.append(ResBlock1(c_out, k, dilations))
        self.conv_post = weight_norm(nn.Conv1d(c_out, 1, 7, padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            xs = None
            for j in range(self.num_kernels):
                y = self.resblocks[i * self.num_kernels + j](x)
                xs = y if xs is None else xs + y
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


class DiscriminatorP(nn.Module):
    """HiFi-GAN's period discriminator: the signal reflect-padded to a
    multiple of the period (written as a pad of (p - t % p) % p, which
    torch.fx traces, for the reference's `if t % p`), viewed as
    (b, c, t / p, p), (5, 1) convolutions of stride (3, 1) with leaky ReLU
    0.1, a (3, 1) conv_post, flattened. Channels 4, 8, 16 (V1: 32 ... 1024)."""

    def __init__(self, period, chs=(4, 8, 16)):
        super().__init__()
        self.period = period
        ins = (1, *chs[:-1])
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(i, o, (5, 1), (3, 1), padding=(2, 0)))
            for i, o in zip(ins, chs, strict=True)
        )
        self.conv_post = weight_norm(nn.Conv2d(chs[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):
        b, c, t = x.shape
        pad = (self.period - t % self.period) % self.period
        x = F.pad(x, (0, pad), "reflect")
        x = x.view(b, c, (t + pad) // self.period, self.period)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
        return torch.flatten(self.conv_post(x), 1, -1)


class MultiPeriodDiscriminator(nn.Module):
    """Periods 2 and 3 (V1: 2, 3, 5, 7, 11); the scores concatenated."""

    def __init__(self, periods=(2, 3)):
        super().__init__()
        self.discriminators = nn.ModuleList(DiscriminatorP(p) for p in periods)

    def forward(self, x):
        return torch.cat([d(x) for d in self.discriminators], dim=1)


def test_hifigan_generator_and_discriminator():
    """Both match; then the generator is fine-tuned three SGD steps in
    conv1djax (the loss's gradients, compiled once above) and exported back
    to PyTorch (weight_norm's g and v), which computes the same."""
    net = Generator()
    model, params, report = check_model(net, (1, 8, 8))
    x = jnp.asarray(np.random.default_rng(5).normal(size=(1, 8, 8)), jnp.float32)
    (_, before), _ = report["run"](params, x)
    for _ in range(3):
        _, (grads, _) = report["run"](params, x)
        params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    (_, y), _ = report["run"](params, x)
    state = cj.interop.to_torch(model, params)
    assert sorted(state) == sorted(net.state_dict())
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    want = net(torch.from_numpy(np.array(x))).detach().numpy()
    assert _rel(y, want) <= RTOL
    assert _rel(y, before) > 1e-3  # the steps moved it
    check_model(MultiPeriodDiscriminator(), (2, 1, 61))


# ---- ResNet-18 and MobileNetV2 (BatchNorm in eval mode) ---------------------------------


class BasicBlock(nn.Module):
    """ResNet's basic block: 3x3 conv, BN, ReLU, 3x3 conv, BN, plus the
    identity or a strided 1x1 conv + BN, ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016): 7x7/2 stem, BN, ReLU, 3x3/2 max pool with
    padding 1, four stages of two basic blocks (all 8 blocks), adaptive
    average pooling, flatten, Linear head. Widths 4, 8, 16, 32 (the paper's
    64 ... 512), 32x32 inputs."""

    def __init__(self, widths=(4, 8, 16, 32), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        cin = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}",
                    nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))  # fmt: skip
            cin = w
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _randomize_batchnorms(net, seed):
    """Running statistics and affine weights away from their defaults."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return net


def test_resnet18():
    net = _randomize_batchnorms(ResNet18(), 0)
    model, params, _ = check_model(net, (2, 3, 32, 32))
    assert type(model.sublayers()["layer2.0.bn1"]).__name__ == "BatchNormalization"
    assert type(model.sublayers()["fc"]).__name__ == "Dense"


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion (when t > 1), 3x3 depthwise of
    stride s, each with BN and ReLU6, a linear 1x1 projection with BN, and
    the skip when the stride is 1 and the widths match."""

    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = []
        if t != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=True)]  # fmt: skip
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        ]  # fmt: skip
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018): 3x3/2 stem, inverted residual
    stages (t, c, n, s) = (1, 4, 1, 1), (6, 8, 2, 2) (the paper's seven
    stages, narrowed, two kept: the second has the residual), 1x1 to 32,
    adaptive average pooling, dropout, Linear."""

    def __init__(self, classes=10):
        super().__init__()
        layers = [nn.Conv2d(3, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU6()]
        cin = 4
        for t, c, n, s in ((1, 4, 1, 1), (6, 8, 2, 2)):
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += [nn.Conv2d(cin, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def test_mobilenet_v2_and_folded_batchnorm():
    """MobileNetV2 with BatchNorm as the layer; then its residual inverted
    residual (expansion, depthwise, projection: three BatchNorms after
    convolutions) with ``fold_batchnorm=True``: no BatchNorm left, the same
    numbers."""
    net = _randomize_batchnorms(MobileNetV2(), 1)
    check_model(net, (2, 3, 32, 32))
    block = net.features[5].eval()  # with the skip
    folded, folded_params = cj.interop.from_torch_module(block, fold_batchnorm=True)
    names = {type(layer).__name__ for layer in folded.sublayers().values()}
    assert "BatchNormalization" not in names and "Conv2D" in names
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 8)).astype(np.float32)
    want = block(torch.from_numpy(x)).detach().numpy()
    assert _rel(folded.apply(folded_params, x), want) <= RTOL
