"""Checkers for Chapter 8: a CNN on CIFAR-10.

Each ``check_*`` function prints one verdict line; each ``*_cases`` function lists the cases,
so that a grader can run them with other seeds (``hidden=True``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.arith import LayerSpec, spec_output_shapes
from cnn_course.checks.core import (
    Case,
    CaseFailed,
    Exercise,
    Exercises,
    MethodViolation,
    OpCounter,
    as_tensor,
    case_seed,
    expect_shape,
    observed,
    report,
)
from cnn_course.checks.pooling import call_with_specs
from cnn_course.messages import N_, tr, translated

# ---- Exercise 1: in_features of the first Linear layer -------------------------------------

def _stages(*convs: tuple[int, int, int]) -> list[LayerSpec]:
    """Layer specs of the tutorial's layout: each (out_channels, kernel_size, padding)
    convolution, stride 1, followed by MaxPool2d(2)."""
    specs: list[LayerSpec] = []
    for out_channels, kernel_size, padding in convs:
        specs += [("conv", out_channels, kernel_size, 1, padding), ("pool", 2, 2, 0)]
    return specs


# (description, input (C, H, W), layer specs: the format of cnn_course.arith)
_FEATURE_CONFIGS: list[tuple[str, tuple[int, int, int], list[LayerSpec]]] = [
    (N_("the chapter's model"), (3, 32, 32), _stages((32, 5, 2), (32, 5, 2), (64, 5, 2))),
    (N_("no padding, two stages (LeNet-like)"), (3, 32, 32), _stages((6, 5, 0), (16, 5, 0))),
    (N_("3x3 kernels, four stages"), (3, 32, 32),
     _stages((16, 3, 1), (32, 3, 1), (64, 3, 1), (128, 3, 1))),
    (N_("28x28 input: pooling 7 pixels gives 3"), (3, 28, 28),
     _stages((32, 5, 2), (32, 5, 2), (64, 5, 2))),
    (N_("40x40 input, mixed padding"), (3, 40, 40), _stages((10, 3, 0), (20, 5, 1))),
    (N_("one stage"), (3, 32, 32), _stages((8, 5, 2))),
]


def _features_by_model(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec]) -> int:
    shapes = spec_output_shapes(input_shape, specs)
    return math.prod(shapes[-1] if shapes else input_shape)


def _features_with(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec], *,
                   pool: bool = True, use_padding: bool = True, ceil: bool = False,
                   channels: bool = True) -> int:
    """The size computed with one of the usual mistakes switched on (for diagnosis)."""
    count, height, width = input_shape
    rounding = math.ceil if ceil else math.floor
    for spec in specs:
        if spec[0] == "pool" and not pool:
            continue
        if spec[0] == "conv":
            _, count, kernel, stride, padding = spec
        else:
            _, kernel, stride, padding = spec
        padding = padding if use_padding else 0
        height = rounding((height + 2 * padding - kernel) / stride) + 1
        width = rounding((width + 2 * padding - kernel) / stride) + 1
    return (count if channels else 1) * height * width


def _random_feature_configs(generator: torch.Generator, count: int
                            ) -> list[tuple[str, tuple[int, int, int], list[LayerSpec]]]:
    configs = []
    while len(configs) < count:
        image_size = int(torch.randint(20, 65, (1,), generator=generator))
        stages = int(torch.randint(1, 4, (1,), generator=generator))
        convs = []
        for _ in range(stages):
            kernel = int(torch.tensor([1, 3, 5, 7])[torch.randint(0, 4, (1,),
                                                                  generator=generator)])
            padding = int(torch.randint(0, kernel // 2 + 1, (1,), generator=generator))
            channels = int(torch.randint(4, 129, (1,), generator=generator))
            convs.append((channels, kernel, padding))
        input_shape, specs = (3, image_size, image_size), _stages(*convs)
        try:
            spec_output_shapes(input_shape, specs)
        except ValueError:  # a map shrank away
            continue
        configs.append((tr("random stack {number}", number=len(configs) + 1), input_shape,
                        specs))
    return configs


def linear_in_features_cases(fn: Callable[..., int], hidden: bool = False) -> list[Case]:
    configs = list(_FEATURE_CONFIGS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(8, hidden, "linear_in_features"))
        configs += _random_feature_configs(generator, 12)
    cases = []
    for description, input_shape, specs in configs:
        def run(input_shape=input_shape, specs=specs) -> None:
            got = call_with_specs(fn, input_shape, specs)
            expected = _features_by_model(input_shape, specs)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if isinstance(got, float):
                raise CaseFailed(tr("returned {got!r}, a float; layer sizes are whole numbers: "
                                    "use floor division // for the pooling", got=got),
                                 diagnosed=True)
            if not isinstance(got, int) or isinstance(got, bool):
                raise CaseFailed(tr("returned {got!r}; expected an int", got=got), diagnosed=True)
            if got == expected:
                return
            last_channels = next((spec[1] for spec in reversed(specs) if spec[0] == "conv"),
                                 input_shape[0])
            mistakes = [
                (_features_with(input_shape, specs, pool=False),
                 tr("your code skips the pool specs: each ('pool', 2, 2, 0) is a MaxPool2d(2), "
                    "which halves height and width")),
                (_features_with(input_shape, specs, use_padding=False),
                 tr("you left out the padding: a convolution with padding p adds 2p to the size "
                    "before the kernel is applied")),
                (_features_with(input_shape, specs, ceil=True),
                 tr("max pooling rounds down: a 7-pixel side gives 3, not 4")),
                (_features_with(input_shape, specs, channels=False),
                 tr("multiply the spatial size by the number of channels ({channels}) of "
                    "the last convolution", channels=last_channels)),
            ]
            for wrong, explanation in mistakes:
                if wrong == got and wrong != expected:
                    raise CaseFailed(tr("returned {got}, but the real layers give {expected}: "
                                        "{explanation}", got=got, expected=expected,
                                        explanation=explanation), diagnosed=True)
            raise CaseFailed(tr("returned {got}, but the real layers give {expected}", got=got,
                                expected=expected))
        cases.append(Case(tr("{description}: input {input_shape}, layers {specs}",
                             description=translated(description), input_shape=input_shape,
                             specs=specs), run))
    return cases


# ---- Exercise 2: the model with ReLU --------------------------------------------------------

_EXPECTED_LAYERS = ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                    "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
_EXPECTED_PARAMS = 145_578
_ACTIVATIONS = (nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.ReLU6,
                nn.PReLU, nn.Hardtanh, nn.Softplus)


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


def _normalized_types(model: nn.Module) -> list[str]:
    """Leaf layer types in order, with a ReLU placed after its pooling layer moved in front
    of it (max pooling and ReLU commute, so both orders are the same network)."""
    kinds = [type(m).__name__ for m in _leaves(model) if not isinstance(m, nn.Identity)]
    for i in range(len(kinds) - 1):
        if kinds[i] == "MaxPool2d" and kinds[i + 1] == "ReLU":
            kinds[i], kinds[i + 1] = "ReLU", "MaxPool2d"
    return kinds


def _structure(model: nn.Module) -> dict:
    """What the structural cases read off the model, as plain data: a model that a grader
    rebuilds from its forward pass need not keep its layer objects."""
    leaves = _leaves(model)
    settings = [m for m in leaves if not isinstance(m, (nn.ReLU, nn.Identity))]
    return {
        "kinds": _normalized_types(model),
        "other_activations": [type(m).__name__ for m in leaves if isinstance(m, _ACTIVATIONS)],
        "convs": [((m.in_channels, m.out_channels, m.kernel_size, m.padding, m.stride), str(m))
                  for m in settings if isinstance(m, nn.Conv2d)],
        "pools": [((m.kernel_size, m.stride), str(m))
                  for m in settings if isinstance(m, nn.MaxPool2d)],
        "linears": [((m.in_features, m.out_features), str(m))
                    for m in settings if isinstance(m, nn.Linear)],
        "params": sum(p.numel() for p in model.parameters()),
    }


# What the first Linear layer receives, said once for every message about it.
_FIRST_LINEAR = N_("for a 32x32 input the first Linear layer receives 64*4*4 = 1024 features "
                   "per image (the last convolution has 64 channels, and the three 2x2 poolings "
                   "take 32 to 16, 8 and 4)")

# Sizes a learner gets by a plausible slip, and what each one is.
_FLAT_SLIPS = {
    64 * 8 * 8: N_("64x8x8, the maps before the third pooling"),
    64 * 16 * 16: N_("64x16x16, the maps after only one pooling"),
    64 * 32 * 32: N_("64x32x32, the maps without any pooling"),
    32 * 4 * 4: N_("32x4x4, with the second convolution's 32 channels instead of the last "
                   "one's 64"),
    3 * 32 * 32: N_("3x32x32, the input image itself"),
}


def _first_linear_message(in_features: int) -> str:
    """Why a first Linear layer built for ``in_features`` inputs does not fit."""
    slip = _FLAT_SLIPS.get(in_features)
    message = tr("your first Linear layer is built for {in_features:,} features, but "
                 "{first_linear}", in_features=in_features, first_linear=translated(_FIRST_LINEAR))
    if slip:
        message += tr("; {in_features:,} is {slip}", in_features=in_features,
                      slip=translated(slip))
    return message


_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied "
                     r"\((\d+)x(\d+) and (\d+)x(\d+)\)")
_RESHAPE = re.compile(r"shape '\[[^\]]*\]' is invalid for input of size \d+")


def _run_model(net: nn.Module, x: torch.Tensor) -> object:
    """``net(x)`` without gradients; a shape error of the flatten or of a Linear layer becomes
    a message that names the sizes the layers should have."""
    try:
        with torch.no_grad():
            return net(x)
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        matmul = _MATMUL.search(detail)
        if matmul:
            got, built = int(matmul.group(2)), int(matmul.group(3))
            raise CaseFailed(tr("the forward pass failed ({detail}): a Linear layer built for "
                                "{built:,} inputs received {got:,} features per image; "
                                "{first_linear}, and the second one receives the first one's 64 "
                                "outputs", detail=detail, built=built, got=got,
                                first_linear=translated(_FIRST_LINEAR)),
                             diagnosed=True) from None
        if _RESHAPE.search(detail):
            raise CaseFailed(tr("the forward pass failed while flattening ({detail}); "
                                "{first_linear}. Flatten with nn.Flatten() (or x.flatten(1)), "
                                "which keeps the batch axis and needs no typed size",
                                detail=detail, first_linear=translated(_FIRST_LINEAR)),
                             diagnosed=True) from None
        raise


def _relu_calls(model: nn.Module) -> list[int]:
    """How often each nn.ReLU leaf runs in one forward pass."""
    relus = [m for m in _leaves(model) if isinstance(m, nn.ReLU)]
    calls = [0] * len(relus)
    handles = [relu.register_forward_hook(
        lambda *args, i=i: calls.__setitem__(i, calls[i] + 1)) for i, relu in enumerate(relus)]
    try:
        _run_model(model.eval(), torch.zeros(1, 3, 32, 32))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def relu_cnn_cases(fn: Callable[[], nn.Module], hidden: bool = False) -> list[Case]:
    state: dict[str, object] = {}
    seeds = {name: case_seed(visible, hidden, f"relu_cnn {name}")
             for name, visible in (("output", 4), ("one", 6), ("batch", 7))}

    def model() -> nn.Module:
        if "model" not in state:
            built = fn()
            if not isinstance(built, nn.Module):
                raise CaseFailed(tr("your function returned a {type_name}; return the model, "
                                    "an nn.Sequential", type_name=type(built).__name__),
                                 diagnosed=True)
            state["model"] = built
        return state["model"]

    def structure() -> dict:
        if "structure" not in state:
            state["structure"] = observed(lambda: _structure(model()))
        return state["structure"]

    def layer_order() -> None:
        kinds = structure()["kinds"]
        if kinds == _EXPECTED_LAYERS:
            return
        other = structure()["other_activations"]
        if other:
            raise CaseFailed(tr("the model uses {activation}; this exercise asks for nn.ReLU",
                                activation=other[0]), diagnosed=True)
        relus = kinds.count("ReLU")
        if relus == 0:
            raise CaseFailed(tr("the model has no nn.ReLU layer at all. (If you call F.relu or "
                                "torch.relu in a forward method, build the model as an "
                                "nn.Sequential with nn.ReLU() layers instead, so that the layers "
                                "can be checked.)"), diagnosed=True)
        if kinds and kinds[-1] in ("ReLU", "Softmax", "LogSoftmax"):
            raise CaseFailed(tr("the model ends with {last}: the last Linear layer must "
                                "output raw scores (logits), because cross_entropy applies the "
                                "softmax itself", last=kinds[-1]), diagnosed=True)
        without_last_relu = _EXPECTED_LAYERS[:11] + ["Linear"]
        if kinds == without_last_relu:
            raise CaseFailed(tr("there is no ReLU between the two Linear layers: without it they "
                                "collapse into a single linear map"), diagnosed=True)
        if "Flatten" not in kinds:
            raise CaseFailed(tr("add nn.Flatten() before the first Linear layer: it turns the "
                                "[N, 64, 4, 4] maps into [N, 1024] vectors"), diagnosed=True)
        raise CaseFailed(tr("the layers are {got}; expected {expected}", got=" - ".join(kinds),
                            expected=" - ".join(_EXPECTED_LAYERS)))

    def layer_settings() -> None:
        found = structure()
        for (settings, conv), (c_in, c_out) in zip(found["convs"], [(3, 32), (32, 32), (32, 64)],
                                                   strict=True):
            if settings != (c_in, c_out, (5, 5), (2, 2), (1, 1)):
                raise CaseFailed(tr("found {conv}; expected Conv2d({c_in}, {c_out}, "
                                    "kernel_size=5, padding=2)", conv=conv, c_in=c_in,
                                    c_out=c_out), diagnosed=True)
        for (kernel_size, stride), pool in found["pools"]:
            if kernel_size not in (2, (2, 2)) or stride not in (2, (2, 2)):
                raise CaseFailed(tr("found {pool}; expected MaxPool2d(2)", pool=pool),
                                 diagnosed=True)
        for index, ((sizes, linear), shape) in enumerate(zip(found["linears"],
                                                             [(1024, 64), (64, 10)], strict=True)):
            if index == 0 and sizes[0] != shape[0]:
                raise CaseFailed(tr("found {linear}: {reason}; the layer is "
                                    "Linear(64 * 4 * 4, 64)", linear=linear,
                                    reason=_first_linear_message(sizes[0])), diagnosed=True)
            if sizes != shape:
                raise CaseFailed(tr("found {linear}; expected Linear({inputs}, {outputs})",
                                    linear=linear, inputs=shape[0], outputs=shape[1]),
                                 diagnosed=True)

    def parameter_count() -> None:
        count = structure()["params"]
        if count != _EXPECTED_PARAMS:
            raise CaseFailed(tr("the model has {count:,} parameters; the published model has "
                                "{expected:,} and ReLU adds none", count=count,
                                expected=_EXPECTED_PARAMS), diagnosed=True)

    def output_shape() -> None:
        generator = torch.Generator().manual_seed(seeds["output"])
        batch = 3 if hidden else 2
        out = _run_model(model().eval(), torch.randn(batch, 3, 32, 32, generator=generator))
        out = as_tensor(out, N_("the model's output"))
        expect_shape(out, (batch, 10),
                     N_("the model's output for a batch of 32x32 colour images"))

    def relus_applied() -> None:
        calls = observed(lambda: _relu_calls(model()))  # the hooks count inside the model
        if 0 in calls:
            raise CaseFailed(tr("ReLU number {number} is a layer of the model but the "
                                "forward pass never calls it", number=calls.index(0) + 1),
                             diagnosed=True)

    def single_image() -> None:
        out = _run_model(model().eval(), torch.rand(1, 3, 32, 32, generator=torch.Generator()
                                                    .manual_seed(seeds["one"])))
        expect_shape(as_tensor(out, N_("the model's output")), (1, 10),
                     N_("the model's output for one 32x32 colour image"))

    def batch_independent() -> None:
        x = torch.randn(7, 3, 32, 32, generator=torch.Generator().manual_seed(seeds["batch"]))
        net = model().eval()
        together = as_tensor(_run_model(net, x), N_("the model's output"))
        alone = torch.cat([as_tensor(_run_model(net, x[i:i + 1]), N_("the model's output"))
                           for i in range(len(x))])
        if not torch.allclose(together, alone, atol=1e-4, rtol=1e-4):
            raise CaseFailed(tr("an image's scores change when other images are in the batch: "
                                "flatten with nn.Flatten() (which keeps the batch axis)"),
                             diagnosed=True)

    hidden_cases = [  # batch sizes that no visible case uses (the architecture is fixed)
        Case(N_("a single image [1, 3, 32, 32] gives [1, 10]"), single_image),
        Case(N_("a batch of 7: each image's scores do not depend on the rest of the batch"),
             batch_independent),
    ]
    return [Case(N_("the function returns a model"), lambda: model() and None),
            Case(N_("the layers and their order"), layer_order),
            Case(N_("each layer's settings"), layer_settings),
            Case(N_("the number of parameters"), parameter_count),
            Case(N_("the output shape"), output_shape),
            Case(N_("every ReLU is applied in the forward pass"), relus_applied)
            ] + (hidden_cases if hidden else [])


# ---- Exercise 3: random crop and flip on whole batches -------------------------------------

AugmentFn = Callable[..., torch.Tensor]


def _call_augment(fn: AugmentFn, x: torch.Tensor, padding: int, seed: int) -> torch.Tensor:
    original = x.clone()
    out = fn(x, padding=padding, generator=torch.Generator().manual_seed(seed))
    out = as_tensor(out, N_("the output"))
    if not torch.equal(x, original):
        raise CaseFailed(tr("your function changed its input batch in place; return a new "
                            "tensor and leave the input as it was"), diagnosed=True)
    return out


def _crop_matches(x: torch.Tensor, out: torch.Tensor, padding: int, mode: str = "constant"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """For every image, which (row shift, column shift) crops of the padded input equal the
    output, without and with a left-right mirror: two bool tensors [N, 2p+1, 2p+1]."""
    _, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode=mode) if padding else x
    crops = padded.unfold(2, h, 1).unfold(3, w, 1)     # [N, C, 2p+1, 2p+1, H, W]
    crops = crops.permute(0, 2, 3, 1, 4, 5)             # [N, 2p+1, 2p+1, C, H, W]

    def same(target: torch.Tensor) -> torch.Tensor:
        # |a - b| <= 1e-6 (isclose with rtol=0 for finite values, twice as fast)
        close = (crops - target[:, None, None]).abs() <= 1e-6
        return close.flatten(3).all(dim=3)

    return same(out), same(out.flip(-1))


def _locate(x: torch.Tensor, out: torch.Tensor, padding: int) -> tuple[torch.Tensor, ...]:
    """Row shifts, column shifts and flips [N] of a valid output; raise on any other."""
    n, c, h, w = x.shape
    if tuple(out.shape) == (n, c, h + 2 * padding, w + 2 * padding) and padding:
        raise CaseFailed(tr("the output has shape {shape}: that is the padded batch; "
                            "crop it back to {height}x{width}", shape=tuple(out.shape), height=h,
                            width=w), diagnosed=True)
    expect_shape(out, (n, c, h, w))
    if out.dtype != x.dtype:
        raise CaseFailed(tr("the output has dtype {got}; keep the input's {expected}",
                            got=out.dtype, expected=x.dtype), diagnosed=True)
    out = out.detach().cpu()
    plain, mirrored = _crop_matches(x, out, padding)
    found = plain.flatten(1).any(1) | mirrored.flatten(1).any(1)
    if not found.all():
        bad = int((~found).nonzero()[0])
        upside_down, _ = _crop_matches(x, out.flip(-2), padding)
        if upside_down.flatten(1).any(1)[bad] or _crop_matches(x, out.flip(-1).flip(-2),
                                                               padding)[0].flatten(1).any(1)[bad]:
            raise CaseFailed(tr("image {image} was flipped upside down; a horizontal flip "
                                "mirrors left and right: flip the last axis (width, dim=-1)",
                                image=bad), diagnosed=True)
        if padding and x.shape[-1] > padding and x.shape[-2] > padding:
            for mode in ("reflect", "replicate", "circular"):
                p, m = _crop_matches(x, out, padding, mode)
                if (p.flatten(1).any(1) | m.flatten(1).any(1))[bad]:
                    raise CaseFailed(tr("image {image} was padded in '{mode}' mode; pad with "
                                        "zeros (F.pad's default)", image=bad, mode=mode),
                                     diagnosed=True)
        raise CaseFailed(tr("output image {image} is not a crop of its zero-padded input image "
                            "at any shift from 0 to {top}, nor a mirrored one", image=bad,
                            top=2 * padding))
    use_plain = plain.flatten(1).any(1)
    grid = torch.where(use_plain[:, None, None], plain, mirrored).flatten(1)
    position = grid.float().argmax(1)
    side = 2 * padding + 1
    return position // side, position % side, ~use_plain


def random_crop_flip_cases(fn: AugmentFn, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(3, hidden, "random_crop_flip"))
    seed = case_seed(10, hidden, "random_crop_flip generator")  # for the generator argument

    def images(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) + 3.0  # never 0, the padding value

    def valid(shape: tuple[int, ...], padding: int) -> Callable[[], None]:
        x = images(*shape)

        def run() -> None:
            _locate(x, _call_augment(fn, x, padding, seed), padding)
        return run

    def statistics() -> None:
        padding = 4
        x = images(512, 3, 10, 10)
        rows, cols, flips = _locate(x, _call_augment(fn, x, padding, seed), padding)
        share = flips.float().mean().item()
        if share == 0:
            raise CaseFailed(tr("no image of a 512-image batch was flipped; flip each image "
                                "with probability 1/2"), diagnosed=True)
        if share == 1:
            raise CaseFailed(tr("every image was flipped (or the whole batch together); decide "
                                "for each image separately, with probability 1/2"),
                             diagnosed=True)
        if not 0.4 <= share <= 0.6:
            raise CaseFailed(tr("{share:.0%} of a 512-image batch was flipped; about half "
                                "should be", share=share), diagnosed=True)
        if len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == 1:
            raise CaseFailed(tr("every image got the same shift; draw a shift for each image "
                                "(a tensor of N random shifts)"), diagnosed=True)
        if torch.equal(rows, cols):
            raise CaseFailed(tr("each image moved by the same amount down and right; draw the "
                                "row shift and the column shift separately"), diagnosed=True)
        # One template per direction, so that each language can word "row"/"column" its way.
        directions = (
            (rows, N_("the row shift never reaches {top} = 2*padding; torch.randint's upper "
                      "bound is exclusive: use randint(0, 2 * padding + 1, ...)"),
             N_("with padding {padding}, the row shifts seen were {seen}; every shift from 0 "
                "to {top} should be possible")),
            (cols, N_("the column shift never reaches {top} = 2*padding; torch.randint's upper "
                      "bound is exclusive: use randint(0, 2 * padding + 1, ...)"),
             N_("with padding {padding}, the column shifts seen were {seen}; every shift from "
                "0 to {top} should be possible")),
        )
        for shifts, never_reaches, not_all_seen in directions:
            seen = set(shifts.tolist())
            if max(seen) == 2 * padding - 1:
                raise CaseFailed(tr(never_reaches, top=2 * padding), diagnosed=True)
            if seen != set(range(2 * padding + 1)):
                raise CaseFailed(tr(not_all_seen, padding=padding, seen=sorted(seen),
                                    top=2 * padding))

    def repeatable() -> None:
        x = images(64, 3, 8, 8)
        first = _call_augment(fn, x, 2, seed)
        second = _call_augment(fn, x, 2, seed)
        if not torch.equal(first, second):
            raise CaseFailed(tr("two calls with identically seeded generators gave different "
                                "results: draw every random number with generator=generator"),
                             diagnosed=True)
        if torch.equal(first, _call_augment(fn, x, 2, seed + 1)):
            raise CaseFailed(tr("generators with different seeds gave the same result; the "
                                "shifts and flips should be random"))

    # The operation counts and the time are no return values of the learner's code: each is
    # measured as an observed unit.
    def operations(x: torch.Tensor) -> int:
        with OpCounter() as counter:
            fn(x, padding=2, generator=torch.Generator().manual_seed(seed))
        return counter.calls

    def vectorized() -> None:
        counts = {}
        for n in (32, 1024):
            x = images(n, 3, 8, 8)
            counts[n] = observed(lambda x=x: operations(x))
        if counts[1024] > 4 * counts[32] + 100:
            raise MethodViolation(tr("your function called {small} PyTorch operations for "
                                     "32 images and {large} for 1,024: it loops over the "
                                     "images. Work on the whole batch at once (one random tensor "
                                     "for all shifts, indexing or torch.where for all images)",
                                     small=counts[32], large=counts[1024]))

    def duration(x: torch.Tensor) -> float:
        fn(x[:8], padding=4, generator=torch.Generator().manual_seed(seed))  # warm-up
        start = time.perf_counter()
        fn(x, padding=4, generator=torch.Generator().manual_seed(seed))
        return time.perf_counter() - start

    def fast() -> None:
        x = images(512, 3, 32, 32)
        seconds = observed(lambda: duration(x))
        if seconds > 1.0:
            raise MethodViolation(tr("a batch of 512 images took {seconds:.1f} s; a vectorized "
                                     "version takes a few milliseconds", seconds=seconds))

    shape_cases = [
        (N_("a batch of 16 colour images 32x32, padding 4"), (16, 3, 32, 32), 4),
        (N_("one image"), (1, 3, 32, 32), 4),
        (N_("one channel, non-square 10x14 images, padding 3"), (8, 1, 10, 14), 3),
        (N_("padding 1"), (8, 2, 6, 6), 1),
        (N_("padding 0: only flips are possible"), (8, 3, 5, 5), 0),
    ]
    if hidden:
        shape_cases += [(N_("5 channels, 9x7 images, padding 2"), (12, 5, 9, 7), 2),
                        (N_("a batch of 40, padding 5"), (40, 3, 16, 16), 5)]
    cases = [Case(description, valid(shape, padding)) for description, shape, padding
             in shape_cases]
    cases += [Case(N_("512 images: shifts and flips vary from image to image"), statistics),
              Case(N_("the generator argument makes it repeatable"), repeatable),
              Case(N_("works on the whole batch, not image by image"), vectorized),
              Case(N_("512 images of 32x32 in well under a second"), fast)]
    return cases


# ---- Exercise 4: per-class accuracy ---------------------------------------------------------

def _confusion(predicted: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    counts = torch.zeros(k, k, dtype=torch.float64)
    counts.index_put_((labels, predicted), torch.ones(len(labels), dtype=torch.float64),
                      accumulate=True)
    return counts


def per_class_accuracy_cases(fn: Callable[..., torch.Tensor], hidden: bool = False
                             ) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(13, hidden, "per_class_accuracy"))

    def randint(high: int, n: int) -> torch.Tensor:
        return torch.randint(0, high, (n,), generator=generator)

    labels = randint(10, 400)
    random_pred = randint(10, 400)
    mostly_right = torch.where(torch.rand(400, generator=generator) < 0.7, labels, random_pred)
    never_predicted = mostly_right.clone()
    never_predicted[never_predicted == 3] = 5          # class 3 occurs, is never predicted
    absent_labels = labels.clone()
    absent_labels[absent_labels == 7] = 2              # class 7 never occurs in the labels
    absent_pred = torch.where(torch.rand(400, generator=generator) < 0.6, absent_labels,
                              randint(10, 400))
    configs = [
        (N_("perfect predictions"), labels, labels, 10),
        (N_("random predictions"), random_pred, labels, 10),
        (N_("70% right"), mostly_right, labels, 10),
        (N_("class 3 is never predicted (its accuracy is 0)"), never_predicted, labels, 10),
        (N_("class 7 never occurs in the labels (its accuracy is nan)"), absent_pred,
         absent_labels, 10),
        (N_("everything predicted as class 0"), torch.zeros_like(labels), labels, 10),
        (N_("3 classes, 5 samples"), torch.tensor([0, 1, 1, 2, 0]),
         torch.tensor([0, 1, 2, 2, 2]), 3),
        (N_("num_classes=12 but labels only go up to 9"), mostly_right, labels, 12),
    ]
    if hidden:
        for k in (2, 5, 100):
            true, pred = randint(k, 300), randint(k, 300)
            configs.append((tr("{k} classes, random", k=k), pred, true, k))

    cases = []
    for description, predicted, true, k in configs:
        def run(predicted=predicted, true=true, k=k) -> None:
            got = fn(predicted.clone(), true.clone(), k)
            got = as_tensor(got, N_("the result"))
            counts = _confusion(predicted, true, k)
            expected = counts.diagonal() / counts.sum(1)
            if got.dim() == 1 and got.shape[0] < k:
                raise CaseFailed(tr("the result has {entries} entries, not num_classes={k} "
                                    "(if you count with torch.bincount, give it "
                                    "minlength=num_classes)", entries=got.shape[0], k=k),
                                 diagnosed=True)
            expect_shape(got, (k,), N_("the result"))
            if not got.is_floating_point():
                raise CaseFailed(tr("the result has dtype {dtype}; accuracies are fractions: "
                                    "convert the counts to float before dividing",
                                    dtype=got.dtype), diagnosed=True)
            got = got.detach().cpu().double()
            absent = torch.isnan(expected)
            n = len(true)
            over_all = counts.diagonal() / n
            if torch.allclose(got[~absent], over_all[~absent], atol=1e-6) and not torch.allclose(
                    over_all[~absent], expected[~absent], atol=1e-6):
                raise CaseFailed(tr("you divided each class's correct predictions by the number "
                                    "of all samples ({n}); divide by the number of samples of "
                                    "that class instead (torch.bincount(labels, "
                                    "minlength=num_classes)), so that a class whose images are "
                                    "all right gets 1", n=n), diagnosed=True)
            if absent.any() and not torch.isnan(got[absent]).all():
                first = int(absent.nonzero()[0])
                raise CaseFailed(tr("class {label} never occurs in the labels, so its accuracy "
                                    "is undefined: return nan for it, not {got:g} (0/0 in float "
                                    "arithmetic gives nan)", label=first,
                                    got=got[first].item()), diagnosed=True)
            if torch.allclose(got, expected, atol=1e-6, equal_nan=True):
                return
            precision = counts.diagonal() / counts.sum(0)
            overall = counts.diagonal().sum() / counts.sum()
            if torch.allclose(got, precision, atol=1e-6, equal_nan=True):
                raise CaseFailed(tr("you divided by how often each class was predicted (that "
                                    "is the precision); divide by how often it occurs in the "
                                    "labels"), diagnosed=True)
            if torch.allclose(got[~absent], overall.expand(k)[~absent], atol=1e-6):
                raise CaseFailed(tr("every class got the overall accuracy; count the correct "
                                    "predictions of each class separately"), diagnosed=True)
            wrong = ~torch.isclose(got, expected, atol=1e-6, equal_nan=True)
            first = int(wrong.nonzero()[0])
            raise CaseFailed(tr("class {label}: got {got:.4g}, expected {expected:.4g} "
                                "({correct} of {total} images of that class predicted "
                                "correctly)", label=first, got=got[first].item(),
                                expected=expected[first].item(),
                                correct=int(counts[first, first]),
                                total=int(counts[first].sum())))
        cases.append(Case(description, run))
    return cases


EXERCISES = Exercises({
    "linear_in_features": Exercise(
        linear_in_features_cases, N_("all {n} stacks agree with real layers."),
        N_("go through the specs in order: each layer maps height and width by "
           "(n + 2p - k) // s + 1 (a 5x5 conv with padding 2 keeps 32, a ('pool', 2, 2, 0) "
           "halves it, rounding down); multiply the last height and width by the last conv's "
           "channels.")),
    "relu_cnn": Exercise(
        relu_cnn_cases, N_("the layers, the 145,578 parameters and the output shape are right."),
        N_("Conv2d(3, 32, 5, padding=2), ReLU, MaxPool2d(2), and so on; Flatten, "
           "Linear(1024, 64), ReLU, Linear(64, 10).")),
    "random_crop_flip": Exercise(
        random_crop_flip_cases,
        N_("every output is a shifted (and sometimes mirrored) crop, drawn per image, for the "
           "whole batch at once."),
        N_("pad with F.pad, draw N row shifts, N column shifts and N flip decisions at once; "
           "padded.unfold(2, H, 1).unfold(3, W, 1) views every crop, and indexing it with "
           "[arange(N), :, row_shifts, col_shifts] picks one per image.")),
    "per_class_accuracy": Exercise(
        per_class_accuracy_cases, N_("all {n} cases agree with the confusion matrix."),
        N_("for class c: (number of samples with label c predicted as c) / (number of samples "
           "with label c).")),
})
run_check = EXERCISES.run_check


def check_linear_in_features(fn: Callable[..., int]) -> None:
    """Compare ``fn(input_shape, specs)`` with the flattened size of the real layers."""
    report(run_check("linear_in_features", fn))


def check_relu_cnn(fn: Callable[[], nn.Module]) -> None:
    """Check the model's layers, settings, parameter count, output shape and nonlinearity."""
    report(run_check("relu_cnn", fn))


def check_random_crop_flip(fn: AugmentFn) -> None:
    """Check that every output is a random crop/flip of its input, per image, vectorized."""
    report(run_check("random_crop_flip", fn))


def check_per_class_accuracy(fn: Callable[..., torch.Tensor]) -> None:
    """Compare per-class accuracies with those of a confusion matrix (nan for absent)."""
    report(run_check("per_class_accuracy", fn))
