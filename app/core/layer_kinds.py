"""What the visualizer calls each module and op, and what torch ops do to their arguments.

Pure tables and predicates over modules and fx nodes, shared by the tracer (``layer_trace``) and
the program (``layer_program``): which modules and functions are shown as layers and of which
kind, which ops return views of their input, which overwrite it in place, and the out-of-place
twin and parameter names of each op a unit explanation applies again.
"""

import operator
from typing import Any

import torch
from torch import fx, nn

GROUPING = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
PASS_THROUGH = (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
PADS = (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)
HIDDEN = PASS_THROUGH + PADS
ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.ELU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Mish,
    nn.Softplus,
    nn.PReLU,
    nn.SELU,
    nn.CELU,
)
NORMS = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm)
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)

# Functional ops shown as layers, by the name of the function or method (trailing "_" dropped).
FUNCTION_KINDS = {
    **dict.fromkeys(
        (
            "relu",
            "relu6",
            "hardtanh",
            "leaky_relu",
            "gelu",
            "silu",
            "hardswish",
            "hardsigmoid",
            "sigmoid",
            "tanh",
            "elu",
            "softplus",
            "mish",
            "selu",
            "celu",
            "prelu",
        ),
        "activation",
    ),
    **dict.fromkeys(
        (
            "max_pool2d",
            "avg_pool2d",
            "adaptive_avg_pool2d",
            "adaptive_max_pool2d",
            "lp_pool2d",
            "max_pool2d_with_indices",
        ),
        "pool",
    ),
    **dict.fromkeys(("cat", "concat", "concatenate"), "cat"),
    **dict.fromkeys(("add", "iadd"), "add"),
    **dict.fromkeys(("mul", "imul"), "mul"),
    "flatten": "flatten",
    "conv2d": "conv",
    "linear": "linear",
    "batch_norm": "batchnorm",
    **dict.fromkeys(("layer_norm", "group_norm", "instance_norm"), "norm"),
    "mean": "pool",
}
# Ops whose output may share memory with their first argument.
ALIASING = frozenset(
    [
        "view",
        "view_as",
        "reshape",
        "reshape_as",
        "flatten",
        "unflatten",
        "permute",
        "transpose",
        "t",
        "T",
        "mT",
        "H",
        "mH",
        "adjoint",
        "squeeze",
        "unsqueeze",
        "expand",
        "expand_as",
        "narrow",
        "select",
        "contiguous",
        "chunk",
        "split",
        "split_with_sizes",
        "tensor_split",
        "hsplit",
        "vsplit",
        "unbind",
        "getitem",
        "detach",
        "movedim",
        "moveaxis",
        "swapaxes",
        "swapdims",
        "diagonal",
        "unfold",
        "as_strided",
        "view_as_real",
        "real",
        "imag",
        "dropout",
        "dropout2d",
        "alpha_dropout",
        "identity",
        "type_as",
        "to",
        "float",
    ]
)
IN_PLACE_OPERATORS = frozenset(
    ("iadd", "isub", "imul", "itruediv", "ifloordiv", "ipow", "iand", "ior", "setitem")
)


def layer_kind(module: nn.Module) -> str | None:
    """The visualizer's name for a module's kind, or None when it is not shown as a layer."""
    if isinstance(module, nn.Conv2d):
        groups = module.groups
        return "depthwise_conv" if groups > 1 and groups == module.in_channels else "conv"
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        return "batchnorm"
    if isinstance(module, ACTIVATIONS):
        return "activation"
    if isinstance(module, NORMS):
        return "norm"
    if isinstance(module, POOLS):
        return "pool"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Flatten):
        return "flatten"
    if isinstance(module, HIDDEN + GROUPING):
        return None
    if any(True for _ in module.children()):
        return "block"
    return None


OUT_OF_PLACE = {
    operator.iadd: operator.add,
    operator.imul: operator.mul,
    operator.isub: operator.sub,
    operator.itruediv: operator.truediv,
    torch.relu_: torch.relu,
    torch.sigmoid_: torch.sigmoid,
    torch.tanh_: torch.tanh,
}

# Parameter names of functional ops, in positional order (what ``call_arguments`` reports).
POSITIONAL = {
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": (
        "input",
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
    "adaptive_avg_pool2d": ("input", "output_size"),
    "adaptive_max_pool2d": ("input", "output_size"),
    "cat": ("tensors", "dim"),
    "concat": ("tensors", "dim"),
    "leaky_relu": ("input", "negative_slope", "inplace"),
    "elu": ("input", "alpha", "inplace"),
    "celu": ("input", "alpha", "inplace"),
    "hardtanh": ("input", "min_val", "max_val", "inplace"),
    "softplus": ("input", "beta", "threshold"),
    "relu": ("input", "inplace"),
    "relu6": ("input", "inplace"),
    "hardswish": ("input", "inplace"),
    "hardsigmoid": ("input", "inplace"),
    "silu": ("input", "inplace"),
    "layer_norm": ("input", "normalized_shape", "weight", "bias", "eps"),
    "group_norm": ("input", "num_groups", "weight", "bias", "eps"),
}


def nodes_in(value: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(value, lambda n: found.append(n) or n)
    return found


def op_name(node: fx.Node) -> str:
    target = node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    name = name.strip("_")
    return name[:-1] if name.endswith("_") and name not in ("relu6",) else name


def tensor_args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) or n)
    return found


def mutated_argument(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The node whose tensor ``node`` overwrites in place, if any."""
    first = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    if first is None:
        return None
    if node.op == "call_module":
        return first if getattr(modules[str(node.target)], "inplace", False) else None
    if node.op not in ("call_function", "call_method"):
        return None
    raw = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if node.kwargs.get("inplace") is True or raw in IN_PLACE_OPERATORS:
        return first
    if raw.endswith("_") and not raw.startswith("_") and raw != "relu6":
        return first
    return None


def aliases(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node``'s output may share memory with its first argument."""
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], (nn.Flatten, nn.Unflatten, *PASS_THROUGH))
    return node.op in ("call_function", "call_method") and op_name(node) in ALIASING


def is_spatial_mean(node: fx.Node) -> bool:
    """``x.mean((2, 3))`` / ``x.mean([-2, -1])``: global average pooling written as a mean."""
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if not isinstance(dims, list | tuple):
        return False
    return sorted(int(d) % 4 for d in dims) == [2, 3]
