"""torch.fx tracing of a model into a layer program (see ``layer_program``).

The tracer records, beside the graph, each non-leaf module call's output and input and the
module that encloses every node; the builder finds the visible layers, names them, finds which
tapped values a later in-place op overwrites, and inserts the taps.
"""

import copy
from collections.abc import Callable
from typing import Any

from torch import fx, nn

from app.core.layer_kinds import (
    FUNCTION_KINDS,
    PASS_THROUGH,
    aliases,
    is_spatial_mean,
    layer_kind,
    mutated_argument,
    op_name,
    tensor_args,
)
from app.core.layer_program import LayerProgram, Point, ProgramLayer, _tap


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


def traced_program(model: nn.Module) -> LayerProgram:
    tracer = _Tracer()
    graph = tracer.trace(model)
    plain = copy.deepcopy(graph)  # before any tap: for analyses of the graph itself
    module = fx.GraphModule(model, graph, class_name=type(model).__name__)
    modules = dict(model.named_modules())
    nodes = list(graph.nodes)
    order = {node: i for i, node in enumerate(nodes)}
    image = {node for node in nodes if node.op == "placeholder"}
    for node in nodes:
        if node not in image and any(arg in image for arg in tensor_args(node)):
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
            op = op_name(node)
            kind = FUNCTION_KINDS.get(op)
            operands = [arg for arg in tensor_args(node) if arg in image]
            if kind in ("add", "mul") and len(operands) < 2:
                continue
            if op == "mean" and not is_spatial_mean(node):
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
                tuple(point(arg, node) if arg in image else None for arg in tensor_args(node))
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
    program.plain_graph = plain
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
            elif not isinstance(module, (nn.Flatten, *PASS_THROUGH)):
                return None, None
        elif op_name(current) == "pad":
            mode = current.kwargs.get(
                "mode", current.args[2] if len(current.args) > 2 else "constant"
            )
            value = current.kwargs.get("value", current.args[3] if len(current.args) > 3 else None)
            pads = tuple(current.args[1]) if len(current.args) > 1 else None
            if mode != "constant" or value not in (None, 0, 0.0) or pads is None or len(pads) != 4:
                return None, None
        elif op_name(current) not in ("dropout", "contiguous", "identity"):
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
        mutated = mutated_argument(node, modules)
        if first is not None and (mutated is not None or aliases(node, modules)):
            parent[root(node)] = root(first)
        if mutated is not None:
            mutations.append((order[node], mutated))
    return {
        index
        for index, (node, position) in enumerate(tapped)
        if any(at > position and root(target) is root(node) for at, target in mutations)
    }
