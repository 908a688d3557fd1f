"""What every chapter's checkers promise: the course's reference answer passes the visible and
the hidden cases, an unsolved exercise is reported as not solved yet (not as wrong), and the
hidden cases hold shapes or arguments that the visible ones do not."""

import copy
import hashlib
import importlib
import importlib.resources
import re
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.checks import core
from cnn_course.reference import conv as reference_conv

CHAPTERS = ["conv", "activations", "pooling", "fully_connected", "backprop", "optimizers",
            "lenet", "cifar"]


def _exercises() -> list[tuple[str, str]]:
    return [(chapter, exercise) for chapter in CHAPTERS
            for exercise in importlib.import_module(f"cnn_course.checks.{chapter}").EXERCISES]


def _modules(chapter: str):
    return (importlib.import_module(f"cnn_course.checks.{chapter}"),
            importlib.import_module(f"cnn_course.reference.{chapter}"))


def test_every_checker_module_is_covered():
    import cnn_course.checks as package

    modules = {path.stem for path in importlib.resources.files(package).iterdir()
               if path.suffix == ".py" and path.stem not in ("__init__", "core")}
    assert modules == set(CHAPTERS)


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_reference_answer_passes_visible_and_hidden_cases(chapter, exercise):
    checks, reference = _modules(chapter)
    for hidden in (False, True):
        result = checks.run_check(exercise, getattr(reference, exercise), hidden=hidden)
        assert result.passed, f"{chapter}.{exercise} (hidden={hidden}): {result.message}"


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_unsolved_stub_is_reported_as_not_solved(chapter, exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError()
    checks, _ = _modules(chapter)
    result = checks.run_check(exercise, stub)
    assert not result.passed and "not solved yet" in result.message


# Exercises whose hidden cases may all repeat the visible descriptions, each with its reason.
# Empty: every exercise has hidden-only cases (even the ones whose answer is a fixed kernel or
# a fixed model use other images or batch sizes). Add an entry only for an exercise that can
# have no other shapes or arguments, and say why.
_NO_HIDDEN_ONLY_CASES: dict[tuple[str, str], str] = {}


def _descriptions(chapter: str, exercise: str, hidden: bool) -> list[str]:
    checks, reference = _modules(chapter)
    return [case.description
            for case in checks.EXERCISES[exercise].cases(getattr(reference, exercise),
                                                         hidden=hidden)]


def test_allow_list_names_real_exercises():
    assert set(_NO_HIDDEN_ONLY_CASES) <= set(_exercises())


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_hidden_cases_are_not_only_reseeded_visible_ones(chapter, exercise):
    """Hidden cases add shapes or arguments of their own, so that an answer fitted to the
    visible cases (a lookup of their results, code for their shapes only) can fail them."""
    visible = set(_descriptions(chapter, exercise, hidden=False))
    hidden_only = [d for d in _descriptions(chapter, exercise, hidden=True) if d not in visible]
    if (chapter, exercise) in _NO_HIDDEN_ONLY_CASES:
        assert not hidden_only, f"{chapter}.{exercise} has hidden-only cases now: drop it from "\
            "the allow-list"
    else:
        assert hidden_only, f"{chapter}.{exercise}: the hidden cases only re-seed the visible ones"


def _key(value: object) -> object:
    """A hashable fingerprint of a call's arguments (tensors by shape and values)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), tuple(value.flatten().tolist()))
    if isinstance(value, list | tuple):
        return tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _key(v)) for k, v in value.items()))
    return repr(value)


def _lookup_of_visible_results(chapter: str, exercise: str):
    """An answer that memorised the reference's results on the visible cases and returns the
    first of them for any call it has not seen."""
    checks, reference = _modules(chapter)
    answer = getattr(reference, exercise)
    table: dict[object, object] = {}

    def recorder(*args, **kwargs):
        result = answer(*args, **kwargs)
        table[_key((args, kwargs))] = copy.deepcopy(result)
        return result

    assert checks.run_check(exercise, recorder).passed
    first = next(iter(table.values()))

    def memorised(*args, **kwargs):
        return copy.deepcopy(table.get(_key((args, kwargs)), first))
    return memorised


@pytest.mark.parametrize("chapter, exercise", [("lenet", "lenet_layer_table"),
                                               ("conv", "conv_params"),
                                               ("fully_connected", "one_hot")])
def test_lookup_of_the_visible_results_fails_a_hidden_only_case(chapter, exercise):
    checks, _ = _modules(chapter)
    memorised = _lookup_of_visible_results(chapter, exercise)
    assert checks.run_check(exercise, memorised).passed
    result = checks.run_check(exercise, memorised, hidden=True)
    assert not result.passed
    visible = set(_descriptions(chapter, exercise, hidden=False))
    failed_case = result.message.split('"')[1]
    assert failed_case not in visible, result.message


# ---- the hidden cases come from the grader's seed -------------------------------------------

HIDDEN_SEEDS = [0, 1, 2**40 + 7]


@pytest.mark.parametrize("seed", HIDDEN_SEEDS)
@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_reference_answer_passes_the_hidden_cases_of_any_seed(chapter, exercise, seed):
    checks, reference = _modules(chapter)
    with core.hidden_seed(seed):
        result = checks.run_check(exercise, getattr(reference, exercise), hidden=True)
    assert result.passed, f"{chapter}.{exercise} (hidden seed {seed}): {result.message}"


def _fingerprint(value: object) -> object:
    """A comparable digest of what a call received: tensors and modules by their values."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous()
        return ("tensor", tuple(data.shape), str(data.dtype),
                hashlib.sha1(data.numpy().tobytes()).hexdigest())
    if isinstance(value, nn.Module):
        return ("module", type(value).__name__, value.training,
                _fingerprint(list(value.state_dict().values())))
    if isinstance(value, torch.Generator):
        return ("generator", value.initial_seed())
    if isinstance(value, list | tuple):
        return tuple(_fingerprint(v) for v in value)
    if isinstance(value, dict):
        return tuple((repr(k), _fingerprint(v)) for k, v in value.items())
    if callable(value):
        return getattr(value, "__qualname__", type(value).__name__)
    text = repr(value)
    return type(value).__name__ if " at 0x" in text else text


def _what_the_reference_sees(chapter: str, exercise: str, hidden: bool, seed: int
                             ) -> tuple[list[str], list[object]]:
    """The case descriptions, and the arguments of every call of the reference answer (and
    of every module it returns), under hidden seed ``seed``."""
    checks, reference = _modules(chapter)
    answer = getattr(reference, exercise)
    seen: list[object] = []

    def watched(*args, **kwargs):
        seen.append(_fingerprint((args, kwargs)))
        result = answer(*args, **kwargs)
        if isinstance(result, nn.Module):
            result.register_forward_pre_hook(lambda _, inputs: seen.append(_fingerprint(inputs)))
        return result

    with core.hidden_seed(seed):
        descriptions = [case.description
                        for case in checks.EXERCISES[exercise].cases(watched, hidden=hidden)]
        assert checks.run_check(exercise, watched, hidden=hidden).passed
    return descriptions, seen


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_hidden_inputs_change_with_the_hidden_seed_and_visible_ones_do_not(chapter, exercise):
    visible = [_what_the_reference_sees(chapter, exercise, False, seed) for seed in (0, 1)]
    assert visible[0] == visible[1], "the visible cases depend on the hidden seed"
    hidden = [_what_the_reference_sees(chapter, exercise, True, seed) for seed in (0, 1)]
    assert hidden[0] != hidden[1], "the hidden cases do not depend on the hidden seed"


def test_case_seed_keeps_the_visible_seed_and_derives_the_hidden_ones():
    assert core.case_seed(7, False, "conv2d") == 7
    seeds = set()
    for hidden_seed in (0, 1):
        with core.hidden_seed(hidden_seed):
            seeds |= {core.case_seed(7, True, "conv2d"), core.case_seed(7, True, "pool")}
    assert len(seeds) == 4 and all(0 <= seed < 2**63 for seed in seeds)


# ---- refusals of a method are reported as such ----------------------------------------------

def _autograd_derivative(f):
    def derivative(x, **kwargs):
        leaf = x.detach().clone().requires_grad_(True)
        f(leaf, **kwargs).sum().backward()
        return leaf.grad
    return derivative


def _autograd_backward(forward, n_inputs, wrt=None):
    """``fn(dout, *inputs, ...)`` that gets its gradients from autograd."""
    def backward(dout, *args, **kwargs):
        leaves = [a.detach().clone().requires_grad_(True) for a in args[:n_inputs]]
        out = forward(*leaves, *args[n_inputs:], **kwargs)
        grads = torch.autograd.grad(out, leaves, dout)
        return grads if wrt is None else wrt(grads, dout)
    return backward


def _torch_optim(name):
    def step(params, grads, state, lr, **hyper):
        optimizer = getattr(torch.optim, name)(params, lr=lr, **hyper)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer.step()
    return step


def _summary_table(model, input_shape):
    from cnn_course.summary import model_summary
    return [(r.kind, r.output_shape, r.params) for r in model_summary(model, input_shape).rows]


def _evaluate(eval_mode: bool, no_grad: bool):
    def evaluate(model, batches):
        if eval_mode:
            model.eval()
        with torch.set_grad_enabled(not no_grad):
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
        return correct / sum(len(y) for _, y in batches)
    return evaluate


def _crop_flip_per_image(x, padding=4, generator=None):
    from cnn_course.reference.cifar import random_crop_flip
    return torch.cat([random_crop_flip(x[i:i + 1], padding=padding, generator=generator)
                      for i in range(len(x))])


def _slow_crop_flip(x, padding=4, generator=None):
    from cnn_course.reference.cifar import random_crop_flip
    if x.shape == (512, 3, 32, 32):
        time.sleep(1.05)
    return random_crop_flip(x, padding=padding, generator=generator)


def _numerical_by_autograd(f, x, h=1e-5):
    leaf = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(f(leaf), leaf)[0]


def _train_step_by_autograd(params, x, y, lr):
    from cnn_course.reference.backprop import tiny_cnn_logits
    leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
    loss = F.cross_entropy(tiny_cnn_logits(leaves, x), y)
    loss.backward()
    return loss.item(), {name: p.detach() - lr * p.grad for name, p in leaves.items()}


def _conv_grads(dout, x, w, stride=1, padding=0):
    return (torch.nn.grad.conv2d_input(x.shape, w, dout, stride, padding),
            torch.nn.grad.conv2d_weight(x, w.shape, dout, stride, padding), dout.sum((0, 2, 3)))


# (chapter, exercise, an answer that works the way the exercise rules out, words of the verdict)
_METHOD_CHEATS = [
    ("conv", "conv2d_loops", lambda x, w, b, stride=1, padding=0:
        F.conv2d(x, w, b, stride=stride, padding=padding), "built-in convolution"),
    ("conv", "conv2d_im2col", lambda x, w, b, stride=1, padding=0:
        torch.conv2d(x, w, b, stride, padding), "built-in convolution"),
    ("conv", "conv2d_im2col", reference_conv.conv2d_loops, "loops over"),
    ("activations", "relu", lambda x: torch.relu(x), "built-in relu"),
    ("activations", "sigmoid", lambda x: x.sigmoid(), "built-in sigmoid"),
    ("activations", "tanh", lambda x: F.tanh(x), "built-in tanh"),
    ("activations", "leaky_relu", lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
     "built-in leaky_relu"),
    ("activations", "softmax", lambda x, dim=-1: F.softmax(x, dim=dim), "built-in softmax"),
    ("activations", "relu_grad", _autograd_derivative(torch.relu), "used autograd"),
    ("activations", "sigmoid_grad", _autograd_derivative(torch.sigmoid), "used autograd"),
    ("activations", "tanh_grad", _autograd_derivative(torch.tanh), "used autograd"),
    ("activations", "leaky_relu_grad", _autograd_derivative(F.leaky_relu), "used autograd"),
    ("pooling", "max_pool2d", lambda x, k, stride=None, padding=0:
        F.max_pool2d(x, k, stride, padding), "built-in pooling"),
    ("pooling", "avg_pool2d", lambda x, k, stride=None, padding=0:
        F.avg_pool2d(x, k, stride, padding), "built-in pooling"),
    ("pooling", "max_pool2d_winners", lambda x, k, stride=None: _autograd_derivative(
        lambda t: t.unfold(2, k, stride or k).unfold(3, k, stride or k).amax((-2, -1)))(x),
     "used autograd"),
    ("fully_connected", "layer_table", _summary_table, "model_summary"),
    ("backprop", "numerical_gradient", _numerical_by_autograd, "called autograd"),
    ("backprop", "linear_backward", _autograd_backward(
        lambda x, w: x @ w.T, 2, lambda grads, dout: (*grads, dout.sum(0))), "called autograd"),
    ("backprop", "relu_backward", lambda dout, x: _autograd_backward(torch.relu, 1)(dout, x)[0],
     "called autograd"),
    ("backprop", "sigmoid_backward", lambda dout, out: dout * out * (1 - out)
     + 0 * _autograd_backward(torch.sigmoid, 1)(dout, out)[0], "called autograd"),
    ("backprop", "softmax_cross_entropy", lambda logits, y: (
        F.cross_entropy(logits, y).item(), _autograd_backward(
            lambda t: F.cross_entropy(t, y), 1)(torch.tensor(1.0, dtype=logits.dtype),
                                                 logits)[0]), "called autograd"),
    ("backprop", "max_pool2d_backward", lambda dout, x, k, s=None: _autograd_backward(
        lambda t: F.max_pool2d(t, k, s), 1)(dout, x)[0], "called autograd"),
    ("backprop", "conv2d_backward", _conv_grads, "built-in convolution gradients"),
    ("backprop", "cnn_train_step", _train_step_by_autograd, "called autograd"),
    ("optimizers", "sgd_step", _torch_optim("SGD"), "torch.optim's optimizer"),
    ("optimizers", "adagrad_step", _torch_optim("Adagrad"), "torch.optim's optimizer"),
    ("optimizers", "rmsprop_step", _torch_optim("RMSprop"), "torch.optim's optimizer"),
    ("optimizers", "adam_step", _torch_optim("Adam"), "torch.optim's optimizer"),
    ("optimizers", "adamw_step", _torch_optim("AdamW"), "torch.optim's optimizer"),
    ("lenet", "evaluate_accuracy", _evaluate(eval_mode=True, no_grad=False),
     "gradients enabled"),
    ("lenet", "evaluate_accuracy", _evaluate(eval_mode=False, no_grad=True),
     "running statistics changed"),
    ("cifar", "random_crop_flip", _crop_flip_per_image, "loops over the images"),
    ("cifar", "random_crop_flip", _slow_crop_flip, "well under a second"),
]


@pytest.mark.parametrize("chapter, exercise, cheat, words", _METHOD_CHEATS,
                         ids=[f"{c}.{e}-{w}" for c, e, _, w in _METHOD_CHEATS])
def test_a_refused_method_is_reported_as_a_method_violation(chapter, exercise, cheat, words):
    checks, _ = _modules(chapter)
    result = checks.run_check(exercise, cheat)
    assert not result.passed and result.method, result.message
    assert words in result.message, result.message


def test_a_wrong_value_is_no_method_violation():
    checks, reference = _modules("conv")
    result = checks.run_check("conv2d_loops", lambda *args, **kwargs: 2 * reference.conv2d_loops(
        *args, **kwargs))
    assert not result.passed and not result.method


# ---- the learner's language ------------------------------------------------------------------

@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_the_cases_are_the_same_in_every_language(chapter, exercise):
    """A grader's sandbox and its judge may run in different languages: the inputs must not
    depend on the language the descriptions are written in."""
    from cnn_course.messages import using_language

    seen = {}
    for language in ("en", "zh_CN"):
        with using_language(language):
            seen[language] = _what_the_reference_sees(chapter, exercise, True, 3)[1]
    assert seen["en"] == seen["zh_CN"]


# Three or more English words in a row: prose that was not translated. (Code, names and
# numbers inside a Chinese message stay as they are, and are rarely three words of letters.)
_ENGLISH_PROSE = re.compile(r"\b[A-Za-z]{2,}(?:[ '-]+[A-Za-z]{2,}){2,}\b")
_CODE = re.compile(r"`[^`]*`|\"[^\"]*\"|'[^']*'|\([^()\u4e00-\u9fff]*\)|\w+\([^()]*\)")


def _wrong_answers(reference):
    """Plausible wrong answers: nothing returned, and the right result slightly off."""
    def returns_none(*args, **kwargs):
        return None

    def slightly_off(*args, **kwargs):
        result = reference(*args, **kwargs)
        if isinstance(result, torch.Tensor) and result.is_floating_point():
            return result * 1.1 + 0.01
        if isinstance(result, bool):
            return not result
        if isinstance(result, int | float):
            return result + 1
        return result
    return [returns_none, slightly_off]


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_chinese_verdicts_carry_no_english_prose(chapter, exercise):
    from cnn_course.messages import using_language

    checks, reference = _modules(chapter)
    answer = getattr(reference, exercise)

    def stub(*args, **kwargs):
        raise NotImplementedError()
    with using_language("zh_CN"):
        verdicts = [checks.run_check(exercise, fn, hidden=hidden)
                    for fn in [stub, answer, *_wrong_answers(answer)] for hidden in (False, True)]
    for verdict in verdicts:
        text = _CODE.sub("", verdict.message)
        assert re.search(r"[\u4e00-\u9fff]", verdict.message), verdict.message
        assert not _ENGLISH_PROSE.search(text), f"English left in: {verdict.message}"
