"""A model as a runnable list of layer points: what every capture, tap and trace runs.

Real model code computes much of what a student should see outside modules (``F.relu(x)``,
``out += identity``, ``torch.cat``) and overwrites tensors in place (``ReLU(inplace=True)``).
``LayerProgram.build`` traces the model once with torch.fx and inserts a ``_tap`` call after every
visible value — module outputs, functional activations, residual adds, gates, concatenations,
pooling, flatten, block outputs — and after every module layer's real input. A tap hands the value
to the sink of the thread that runs the program (nothing when none is set) before any later op
can change it, and knows from the graph whether a later in-place op will overwrite it, so a sink
copies exactly those values and no others. Models fx cannot trace (Python control flow on tensor
values) fall back to forward hooks on their modules; then every kept value is copied.

Names: a module layer is its dotted module name (``layer1.0.bn1``; a module called again gets
``_1``, ``_2``, …), a functional layer is ``<enclosing module>.<op>`` (``layer1.0.add``, at the top
level just ``relu``), a block (a custom module with children) is its module name.
"""

import operator
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, fx, nn

Sink = Callable[[int, Tensor], Tensor | None]
"""Called with (point index, value) as the forward reaches a point; may return a replacement."""

_GROUPING = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_PASS_THROUGH = (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_PADS = (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)
_HIDDEN = _PASS_THROUGH + _PADS
_ACTIVATIONS = (
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
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)

# Functional ops shown as layers, by the name of the function or method (trailing "_" dropped).
_FUNCTION_KINDS = {
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
_ALIASING = frozenset(
    """view view_as reshape reshape_as flatten unflatten permute transpose t T mT H mH adjoint
    squeeze unsqueeze expand expand_as narrow select contiguous chunk split split_with_sizes
    tensor_split hsplit vsplit unbind getitem detach movedim moveaxis swapaxes swapdims diagonal
    unfold as_strided view_as_real real imag dropout dropout2d alpha_dropout identity type_as to
    float""".split()
)
_IN_PLACE_OPERATORS = frozenset(
    ("iadd", "isub", "imul", "itruediv", "ifloordiv", "ipow", "iand", "ior", "setitem")
)


def layer_kind(module: nn.Module) -> str | None:
    """The visualizer's name for a module's kind, or None when it is not shown as a layer."""
    if isinstance(module, nn.Conv2d):
        groups = module.groups
        return "depthwise_conv" if groups > 1 and groups == module.in_channels else "conv"
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        return "batchnorm"
    if isinstance(module, _ACTIVATIONS):
        return "activation"
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(module, _POOLS):
        return "pool"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Flatten):
        return "flatten"
    if isinstance(module, _HIDDEN + _GROUPING):
        return None
    if any(True for _ in module.children()):
        return "block"
    return None


@dataclass(frozen=True)
class Point:
    """One tapped value of the forward: the layers shown there, and whether it gets overwritten.

    ``node`` is the fx node's name in a plain ``torch.fx.symbolic_trace`` of the model (None for
    hooks), so tests can compare with an independent interpreter. An input point (a layer's
    tensor input as the layer reads it) has no layers of its own; ``reads`` names the layers
    whose output it is.
    """

    layers: tuple[str, ...]
    overwritten: bool
    node: str | None = None
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProgramLayer:
    """A visible layer of the program.

    Attributes:
        name: unique layer name (see the module docstring).
        kind: conv, depthwise_conv, batchnorm, norm, activation, pool, linear, flatten, add, mul,
            cat or block.
        type: module class (``Conv2d``) or function name (``relu``, ``add``).
        module: dotted name of the module that computes it (None for functional ops).
        point: index of the point whose value is this layer's output.
        input_point: index of the point holding the layer's real input (module layers), else None.
        operands: for functional ops, the points of their tensor operands (None: not tapped).
        source: the visible layer (or ``"input"``) whose output this module layer reads, with
            ``padding`` (top, left, bottom, right) of zeros added by hidden pads in between;
            None when something else comes in between.
    """

    name: str
    kind: str
    type: str
    module: str | None
    point: int
    input_point: int | None = None
    operands: tuple[int | None, ...] = ()
    source: str | None = None
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)


_OUT_OF_PLACE = {
    operator.iadd: operator.add,
    operator.imul: operator.mul,
    operator.isub: operator.sub,
    operator.itruediv: operator.truediv,
    torch.relu_: torch.relu,
    torch.sigmoid_: torch.sigmoid,
    torch.tanh_: torch.tanh,
}

# Parameter names of functional ops, in positional order (what ``call_arguments`` reports).
_POSITIONAL = {
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


def _nodes_in(value: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(value, lambda n: found.append(n) or n)
    return found


_local = threading.local()


def _tap(point: int, value: Any) -> Any:
    """Inserted after every point of a traced program: hands the value to this thread's sink."""
    sink = getattr(_local, "sink", None)
    if sink is None or not isinstance(value, Tensor):
        return value
    replacement = sink(point, value)
    return value if replacement is None else replacement


def _op_name(node: fx.Node) -> str:
    target = node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    name = name.strip("_")
    return name[:-1] if name.endswith("_") and name not in ("relu6",) else name


class _Tracer(fx.Tracer):
    """fx tracer that also remembers each non-leaf module call's output and enclosing scope."""

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[str] = []
        self.block_outputs: list[tuple[str, fx.Node, fx.Node | None]] = []

    def call_module(self, m: nn.Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        path = self.path_of_module(m)
        self.scopes.append(path)
        try:
            out = super().call_module(m, forward, args, kwargs)
        finally:
            self.scopes.pop()
        if not self.is_leaf_module(m, path) and isinstance(out, fx.Proxy):
            first = args[0].node if args and isinstance(args[0], fx.Proxy) else None
            self.block_outputs.append((path, out.node, first))
        return out

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["convlens_scope"] = self.scopes[-1] if self.scopes else ""
        return node


class _Names:
    """Unique layer names: the first use of a base name as is, then ``_1``, ``_2``, …"""

    def __init__(self, reserved: set[str]) -> None:
        self._used = set(reserved)
        self._counts: dict[str, int] = {}

    def take(self, base: str) -> str:
        count = self._counts.get(base, 0)
        while True:
            name = base if count == 0 else f"{base}_{count}"
            count += 1
            if name not in self._used:
                break
        self._counts[base] = count
        self._used.add(name)
        return name


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) or n)
    return found


def _mutated_argument(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The node whose tensor ``node`` overwrites in place, if any."""
    first = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    if first is None:
        return None
    if node.op == "call_module":
        return first if getattr(modules[str(node.target)], "inplace", False) else None
    if node.op not in ("call_function", "call_method"):
        return None
    raw = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if node.kwargs.get("inplace") is True or raw in _IN_PLACE_OPERATORS:
        return first
    if raw.endswith("_") and not raw.startswith("_") and raw != "relu6":
        return first
    return None


def _aliases(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node``'s output may share memory with its first argument."""
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], (nn.Flatten, nn.Unflatten, *_PASS_THROUGH))
    return node.op in ("call_function", "call_method") and _op_name(node) in _ALIASING


class LayerProgram:
    """The model's visible layers and a way to run the model with a sink at their points."""

    def __init__(
        self,
        model: nn.Module,
        method: Literal["fx", "hooks"],
        layers: list[ProgramLayer],
        points: list[Point],
        runner: Callable[[Tensor], Any],
        note: str = "",
    ) -> None:
        self.model = model
        self.method = method
        self.layers = layers
        self.points = points
        self.note = note
        self._runner = runner
        self._graph_module = runner if isinstance(runner, fx.GraphModule) else None
        # Point → the fx node that computes it (traced programs only).
        self._nodes: dict[int, fx.Node] = {}
        self.by_name = {layer.name: layer for layer in layers}
        # Points whose 4-d value is (N, H, W, C); set by the receptive-field trace at load time.
        self.channels_last: frozenset[int] = frozenset()

    @classmethod
    def build(cls, model: nn.Module) -> "LayerProgram":
        """Trace ``model`` with fx; fall back to module hooks when it cannot be traced."""
        try:
            return _traced_program(model)
        except Exception as error:  # fx raises many types on untraceable Python
            return _hooked_program(model, f"{type(error).__name__}: {error}".splitlines()[0])

    def reapply(self, layer: ProgramLayer, values: dict[int, Tensor]) -> Tensor:
        """The layer's op applied again to its captured inputs (``values`` by point).

        Module layers get their real input (``input_point``); functional layers their operands,
        with the model's own constants (e.g. a layer-scale parameter) and every non-tensor
        argument as in the forward. In-place forms are applied out of place.

        Raises:
            KeyError: an operand is neither among ``values`` nor a constant of the model.
        """
        if layer.module is not None and layer.kind != "block":
            module = self.model.get_submodule(layer.module)
            return module(values[layer.input_point].clone())  # type: ignore[index]
        node = self._nodes.get(layer.point)
        if node is None:
            raise KeyError(f"layer {layer.name!r} cannot be applied again")

        def resolve(arg: fx.Node) -> Any:
            if arg.op == "call_function" and arg.target is _tap:
                return values[arg.args[0]].clone()  # type: ignore[index]
            if arg.op == "get_attr":
                return fx.graph_module._get_attr(self._graph_module, str(arg.target))
            raise KeyError(f"{layer.name!r} reads {arg.name!r}, which is not a tapped value")

        args = fx.node.map_arg(node.args, resolve)
        kwargs = dict(fx.node.map_arg(node.kwargs, resolve))
        if "inplace" in kwargs:
            kwargs["inplace"] = False
        name = node.target if isinstance(node.target, str) else ""
        if node.op == "call_method":
            method = name[:-1] if name.endswith("_") and not name.startswith("_") else name
            return getattr(args[0], method)(*args[1:], **kwargs)
        target = _OUT_OF_PLACE.get(node.target, node.target)
        if node.op == "call_module":
            return self.model.get_submodule(str(node.target))(*args, **kwargs)
        return target(*args, **kwargs)

    def call_arguments(self, layer: ProgramLayer) -> dict[str, Any]:
        """A functional layer's non-tensor arguments by name (kernel_size, dim, negative_slope…)."""
        node = self._nodes.get(layer.point)
        if node is None or node.op == "call_module":
            return {}
        names = _POSITIONAL.get(_op_name(node), ())
        found = {name: arg for name, arg in zip(names, node.args, strict=False)}
        found.update(node.kwargs)
        arguments = {}
        for name, value in found.items():
            if name in ("input", "tensors"):
                continue
            if isinstance(value, fx.Node) and value.op == "get_attr":  # a model constant
                arguments[name] = fx.graph_module._get_attr(self._graph_module, str(value.target))
            elif not _nodes_in(value):
                arguments[name] = value
        return arguments

    def run(self, batch: Tensor, sink: Sink | None) -> Any:
        """Forward ``batch``, calling ``sink`` at each point this thread reaches."""
        previous = getattr(_local, "sink", None)
        _local.sink = sink
        try:
            return self._runner(batch)
        finally:
            _local.sink = previous


def _traced_program(model: nn.Module) -> LayerProgram:
    tracer = _Tracer()
    graph = tracer.trace(model)
    module = fx.GraphModule(model, graph, class_name=type(model).__name__)
    modules = dict(model.named_modules())
    nodes = list(graph.nodes)
    order = {node: i for i, node in enumerate(nodes)}
    image = {node for node in nodes if node.op == "placeholder"}
    for node in nodes:
        if node not in image and any(arg in image for arg in _tensor_args(node)):
            image.add(node)

    names = _Names(reserved={path for path, _ in model.named_modules() if path})
    # node → (name, kind, type, module path, the node of the module's real input or None)
    visible: dict[fx.Node, list[tuple[str, str, str, str | None, fx.Node | None]]] = {}
    module_calls: dict[str, int] = {}
    for node in nodes:
        if node not in image:
            continue
        if node.op == "call_module":
            target = str(node.target)
            kind = layer_kind(modules[target])
            if kind is None:
                continue
            calls = module_calls.get(target, 0)
            module_calls[target] = calls + 1
            name = target if calls == 0 else names.take(target)
            first = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
            visible.setdefault(node, []).append(
                (name, kind, type(modules[target]).__name__, target, first)
            )
        elif node.op in ("call_function", "call_method"):
            op = _op_name(node)
            kind = _FUNCTION_KINDS.get(op)
            operands = [arg for arg in _tensor_args(node) if arg in image]
            if kind in ("add", "mul") and len(operands) < 2:
                continue
            if op == "mean" and not _is_spatial_mean(node):
                continue
            if kind is not None:
                scope = node.meta.get("convlens_scope", "")
                base = f"{scope}.{op}" if scope else op
                visible.setdefault(node, []).append((names.take(base), kind, op, None, None))
    blocks_seen: set[str] = set()
    for path, node, first in tracer.block_outputs:
        owner = modules.get(path)
        if node in image and path not in blocks_seen and layer_kind(owner) == "block":
            blocks_seen.add(path)
            visible.setdefault(node, []).append((path, "block", type(owner).__name__, path, first))

    # Points: every visible node's output (tapped right after it runs), and every layer's tensor
    # inputs as the layer reads them (tapped right before it runs: an in-place op in between,
    # ``y.relu_()`` as a bare statement, changes what the layer receives).
    specs: list[tuple[fx.Node, fx.Node | None]] = []  # (value, consumer or None for an output)
    index_of: dict[tuple[fx.Node, fx.Node | None], int] = {}

    def point(value: fx.Node, consumer: fx.Node | None = None) -> int:
        key = (value, consumer)
        if key not in index_of:
            index_of[key] = len(specs)
            specs.append(key)
        return index_of[key]

    layers: list[ProgramLayer] = []
    for node in sorted(visible, key=order.__getitem__):
        for name, kind, type_name, path, source in visible[node]:
            reads = None if kind == "block" else node  # a block's input: as it was passed in
            input_point = point(source, reads) if source in image else None
            operands = (
                tuple(point(arg, node) if arg in image else None for arg in _tensor_args(node))
                if path is None
                else ()
            )
            source, padding = (
                _layer_source(source, visible, modules) if input_point is not None else (None, None)
            )
            layers.append(
                ProgramLayer(
                    name,
                    kind,
                    type_name,
                    path,
                    point(node),
                    input_point,
                    operands,
                    source,
                    padding or (0, 0, 0, 0),
                )
            )

    def when(index: int) -> float:
        value, consumer = specs[index]
        return order[value] + 0.5 if consumer is None else order[consumer] - 0.5

    layers.sort(key=lambda layer: (when(layer.point), layer.kind == "block"))
    overwritten = _overwritten_points(
        nodes, order, [(specs[i][0], when(i)) for i in range(len(specs))], modules
    )
    output_names = {
        value: tuple(layer.name for layer in layers if specs[layer.point][0] is value)
        for value, consumer in specs
        if consumer is None
    }
    points = [
        Point(
            tuple(layer.name for layer in layers if layer.point == i),
            i in overwritten,
            value.name,
            output_names.get(value, ()) if consumer is not None else (),
        )
        for i, (value, consumer) in enumerate(specs)
    ]
    for index, (value, consumer) in enumerate(specs):
        if consumer is None:
            with graph.inserting_after(value):
                tap = graph.call_function(_tap, (index, value))
            value.replace_all_uses_with(tap, delete_user_cb=lambda user, tap=tap: user is not tap)
    output_taps = {
        value: next(user for user in value.users if user.target is _tap)
        for value, consumer in specs
        if consumer is None
    }
    for index, (value, consumer) in enumerate(specs):
        if consumer is not None:
            current = output_taps.get(value, value)
            with graph.inserting_before(consumer):
                tap = graph.call_function(_tap, (index, current))
            consumer.replace_input_with(current, tap)
    graph.lint()
    module.recompile()
    program = LayerProgram(model, "fx", layers, points, module)
    program._nodes = {
        index: value for index, (value, consumer) in enumerate(specs) if consumer is None
    }
    return program


def _layer_source(
    node: fx.Node, visible: dict[fx.Node, list[tuple]], modules: dict[str, nn.Module]
) -> tuple[str | None, tuple[int, int, int, int] | None]:
    """The visible layer a module layer's input comes from, through hidden zero pads."""
    top = left = bottom = right = 0
    current: Any = node
    while isinstance(current, fx.Node):
        if current.op == "placeholder":
            return "input", (top, left, bottom, right)
        shown = [entry[0] for entry in visible.get(current, [])]
        if shown:  # the outermost name: a block's output rather than its last layer's
            return shown[-1], (top, left, bottom, right)
        pads: tuple[int, ...] | None = None
        if current.op == "call_module":
            module = modules[str(current.target)]
            zero = isinstance(module, nn.ZeroPad2d) or (
                isinstance(module, nn.ConstantPad2d) and module.value == 0
            )
            if zero:
                pads = tuple(module.padding)
            elif not isinstance(module, (nn.Flatten, *_PASS_THROUGH)):
                return None, None
        elif _op_name(current) == "pad":
            mode = current.kwargs.get(
                "mode", current.args[2] if len(current.args) > 2 else "constant"
            )
            value = current.kwargs.get("value", current.args[3] if len(current.args) > 3 else None)
            pads = tuple(current.args[1]) if len(current.args) > 1 else None
            if mode != "constant" or value not in (None, 0, 0.0) or pads is None or len(pads) != 4:
                return None, None
        elif _op_name(current) not in ("dropout", "contiguous", "identity"):
            return None, None
        if pads is not None:
            left, right, top, bottom = (
                left + pads[0],
                right + pads[1],
                top + pads[2],
                bottom + pads[3],
            )
        current = current.args[0] if current.args else None
    return None, None


def _is_spatial_mean(node: fx.Node) -> bool:
    """``x.mean((2, 3))`` / ``x.mean([-2, -1])``: global average pooling written as a mean."""
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if not isinstance(dims, list | tuple):
        return False
    return sorted(int(d) % 4 for d in dims) == [2, 3]


def _overwritten_points(
    nodes: list[fx.Node],
    order: dict[fx.Node, int],
    tapped: list[tuple[fx.Node, float]],
    modules: dict[str, nn.Module],
) -> set[int]:
    """Points (a value tapped at a position in node order) that a later in-place op overwrites,
    directly or through a view."""
    parent: dict[fx.Node, fx.Node] = {}

    def root(node: fx.Node) -> fx.Node:
        while parent.get(node, node) is not node:
            node = parent[node]
        return node

    mutations: list[tuple[int, fx.Node]] = []
    for node in nodes:
        first = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        mutated = _mutated_argument(node, modules)
        if first is not None and (mutated is not None or _aliases(node, modules)):
            parent[root(node)] = root(first)
        if mutated is not None:
            mutations.append((order[node], mutated))
    return {
        index
        for index, (node, position) in enumerate(tapped)
        if any(at > position and root(target) is root(node) for at, target in mutations)
    }


def _hooked_program(model: nn.Module, reason: str) -> LayerProgram:
    """Forward hooks on the visible modules (first call each): the fallback for untraceable code."""
    targets = [
        (name, module, kind)
        for name, module in model.named_modules()
        if name and (kind := layer_kind(module)) is not None
    ]
    layers: list[ProgramLayer] = []
    points: list[Point] = []
    by_module: dict[nn.Module, tuple[int, int | None]] = {}
    for name, module, kind in targets:
        input_point = None
        if kind != "block":
            input_point = len(points)
            points.append(Point((), True))
        output_point = len(points)
        points.append(Point((name,), True))
        by_module[module] = (output_point, input_point)
        layers.append(
            ProgramLayer(name, kind, type(module).__name__, name, output_point, input_point)
        )

    def runner(batch: Tensor) -> Any:
        thread = threading.get_ident()
        seen: set[nn.Module] = set()

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
            if threading.get_ident() != thread or module in seen:
                return None
            seen.add(module)
            output_point, input_point = by_module[module]
            if input_point is not None and inputs and isinstance(inputs[0], Tensor):
                _tap(input_point, inputs[0])
            return _tap(output_point, output)

        handles = [module.register_forward_hook(hook) for _, module, _ in targets]
        try:
            return model(batch)
        finally:
            for handle in handles:
                handle.remove()

    layers.sort(key=lambda layer: layer.point)  # registration order; fixed by describe()
    return LayerProgram(model, "hooks", layers, points, runner, note=reason)


_programs: "weakref.WeakKeyDictionary[nn.Module, LayerProgram]" = weakref.WeakKeyDictionary()
_programs_lock = threading.Lock()


def program_of(model: nn.Module, like: LayerProgram | None = None) -> LayerProgram:
    """The layer program of ``model``, built once per module object (thread-safe).

    ``like``: the program of another instance of the same architecture (a random twin, a private
    copy), whose load-time findings (channels-last points) then hold for this one too. Build
    after moving the model to its device: the program refers to its tensors.
    """
    with _programs_lock:
        program = _programs.get(model)
        if program is None:
            program = _programs[model] = LayerProgram.build(model)
            if like is not None:
                program.channels_last = like.channels_last
    return program
