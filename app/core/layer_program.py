"""A model as a runnable list of layer points: what every capture, tap and trace runs.

Real model code computes much of what a student should see outside modules (``F.relu(x)``,
``out += identity``, ``torch.cat``) and overwrites tensors in place (``ReLU(inplace=True)``).
``LayerProgram.build`` traces the model once with torch.fx and inserts a ``_tap`` call after every
visible value — module outputs, functional activations, residual adds, gates, concatenations,
pooling, flatten, block outputs — and, right before each layer runs, its tensor inputs as it reads
them (``layer_trace`` builds it; ``layer_kinds`` has the tables). A tap hands the value
to the sink of the thread that runs the program (nothing when none is set) before any later op
can change it, and knows from the graph whether a later in-place op will overwrite it, so a sink
copies exactly those values and no others. Models fx cannot trace (Python control flow on tensor
values) fall back to forward hooks on their modules; then every kept value is copied.

Names: a module layer is its dotted module name (``layer1.0.bn1``; a module called again gets
``_1``, ``_2``, …), a functional layer is ``<enclosing module>.<op>`` (``layer1.0.add``, at the top
level just ``relu``), a block (a custom module with children) is its module name.
"""

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, fx, nn
from torch.utils._pytree import tree_leaves, tree_map

from app.core.layer_kinds import OUT_OF_PLACE, POSITIONAL, layer_kind, nodes_in, op_name

Sink = Callable[[int, Tensor], Tensor | None]
"""Called with (point index, value) as the forward reaches a point; may return a replacement."""


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


class StopForward(Exception):
    """Raised by a sink to end the forward once it has what it wants."""


@dataclass(frozen=True)
class Frontier:
    """Where a forward that a sink stopped was: ``position`` is the graph node it stopped in (a
    tap), ``values`` the values computed before it and read at or after it, by node name."""

    position: int
    values: dict[str, Any]

    @property
    def nbytes(self) -> int:
        return sum(
            leaf.numel() * leaf.element_size()
            for leaf in tree_leaves(self.values)
            if isinstance(leaf, Tensor)
        )


class _Plan:
    """What every resumable run of one traced graph needs, worked out once (not per run): the
    nodes in order, the first tap of each point, where each value is read for the last time, and
    which values are live at a position (worked out the first time a run stops there)."""

    def __init__(self, graph: fx.Graph) -> None:
        self.nodes = list(graph.nodes)
        self.position = {node: index for index, node in enumerate(self.nodes)}
        self.first_tap: dict[int, int] = {}
        for index, node in enumerate(self.nodes):
            if node.op == "call_function" and node.target is _tap:
                self.first_tap.setdefault(node.args[0], index)  # type: ignore[arg-type]
        self.last_uses: dict[fx.Node, list[fx.Node]] = {}
        read_later: set[fx.Node] = set()
        for node in reversed(self.nodes):
            for read in node.all_input_nodes:
                if read not in read_later:
                    read_later.add(read)
                    self.last_uses.setdefault(node, []).append(read)
        self._live: dict[int, list[fx.Node]] = {}

    def live_at(self, position: int) -> list[fx.Node]:
        """The values computed before ``position`` and read at or after it."""
        live = self._live.get(position)
        if live is None:
            live = self._live[position] = [
                node
                for node in self.nodes[:position]
                if any(self.position[user] >= position for user in node.users)
            ]
        return live


class _Resuming(fx.Interpreter):
    """Runs a traced program node by node, so that it can stop at a tap and start again there
    (without `fx.Interpreter.run`'s per-run bookkeeping and progress bar)."""

    def __init__(self, module: fx.GraphModule, plan: _Plan) -> None:
        super().__init__(module, garbage_collect_values=False)
        self.plan = plan
        self.current: fx.Node | None = None

    def resume(self, batch: Tensor, start: Frontier | None) -> None:
        """Run from the input, or from ``start`` (a frontier of the same input), to the end."""
        first = 0
        if start is None:
            self.env = {}
            self.args_iter = iter(self.graph.process_inputs(batch))
        else:
            # A copy of each live value, so no in-place op of this run reaches the stored ones.
            self.env = {
                node: tree_map(_copy, start.values[node.name])
                for node in self.plan.live_at(start.position)
            }
            first = start.position
        for node in self.plan.nodes[first:]:
            self.current = node
            self.env[node] = self.run_node(node)
            for read in self.plan.last_uses.get(node, ()):
                self.env.pop(read, None)

    def frontier(self) -> Frontier | None:
        """The values live where this run stopped; None when two of them share memory (a copy of
        each would no longer see the other's in-place changes)."""
        if self.current is None:
            return None
        here = self.plan.position[self.current]
        values = {node.name: self.env[node] for node in self.plan.live_at(here)}
        storages = [
            leaf.untyped_storage().data_ptr()
            for leaf in tree_leaves(values)
            if isinstance(leaf, Tensor)
        ]
        if len(set(storages)) != len(storages):
            return None
        return Frontier(here, values)


def _copy(value: Any) -> Any:
    return value.clone() if isinstance(value, Tensor) else value


_local = threading.local()


@contextlib.contextmanager
def _sinking_into(sink: Sink | None) -> Iterator[None]:
    """Inside the block this thread's taps hand values to ``sink`` (then to the one before)."""
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield
    finally:
        _local.sink = previous


def _tap(point: int, value: Any) -> Any:
    """Inserted after every point of a traced program: hands the value to this thread's sink."""
    sink = getattr(_local, "sink", None)
    if sink is None or not isinstance(value, Tensor):
        return value
    replacement = sink(point, value)
    return value if replacement is None else replacement


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
        self._plan: _Plan | None = None
        self.by_name = {layer.name: layer for layer in layers}
        # The traced graph without taps (None for hooks): graph analyses use it instead of
        # tracing again while a server runs forwards.
        self.plain_graph: fx.Graph | None = None
        # Points whose 4-d value is (N, H, W, C); set by the receptive-field trace at load time.
        self.channels_last: frozenset[int] = frozenset()

    def channels_first(self, point: int, value: Tensor) -> Tensor:
        """A (N, H, W, C) value of a channels-last point as a (N, C, H, W) view; others as is."""
        return value.permute(0, 3, 1, 2) if point in self.channels_last else value

    def shown_shape(self, point: int, shape: tuple[int, ...]) -> tuple[int, ...]:
        """One item's shape as shown: (C, H, W) for a channels-last (H, W, C) point."""
        return (shape[2], shape[0], shape[1]) if point in self.channels_last else shape

    @classmethod
    def build(cls, model: nn.Module, *, trace: bool = True) -> "LayerProgram":
        """Trace ``model`` with fx; fall back to module hooks when it cannot be traced.

        ``trace=False`` uses hooks right away: for building programs while a server is running
        forwards (fx tracing patches ``nn.Module.__call__`` process-wide for its duration).
        """
        from app.core.layer_trace import traced_program

        if not trace:
            return _hooked_program(model, "built without tracing")
        try:
            return traced_program(model)
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
        target = OUT_OF_PLACE.get(node.target, node.target)
        if node.op == "call_module":
            return self.model.get_submodule(str(node.target))(*args, **kwargs)
        return target(*args, **kwargs)

    def call_arguments(self, layer: ProgramLayer) -> dict[str, Any]:
        """A functional layer's non-tensor arguments by name (kernel_size, dim, negative_slope…)."""
        node = self._nodes.get(layer.point)
        if node is None or node.op == "call_module":
            return {}
        names = POSITIONAL.get(op_name(node), ())
        found = {name: arg for name, arg in zip(names, node.args, strict=False)}
        found.update(node.kwargs)
        arguments = {}
        for name, value in found.items():
            if name in ("input", "tensors"):
                continue
            if isinstance(value, fx.Node) and value.op == "get_attr":  # a model constant
                arguments[name] = fx.graph_module._get_attr(self._graph_module, str(value.target))
            elif not nodes_in(value):
                arguments[name] = value
        return arguments

    def for_twin(self, model: nn.Module) -> "LayerProgram":
        """This program for another instance of the same architecture, without tracing."""
        if self._graph_module is None:
            twin = _hooked_program(model, self.note)
        else:
            runner = fx.GraphModule(
                model, self._graph_module.graph, self._graph_module.__class__.__name__
            )
            twin = LayerProgram(model, "fx", self.layers, self.points, runner, self.note)
            twin._nodes = {
                point: node_by_name
                for point, node in self._nodes.items()
                if (node_by_name := _node_named(runner.graph, node.name)) is not None
            }
        twin.channels_last = self.channels_last
        twin.plain_graph = self.plain_graph
        return twin

    def run(self, batch: Tensor, sink: Sink | None) -> Any:
        """Forward ``batch``, calling ``sink`` at each point this thread reaches."""
        with _sinking_into(sink):
            return self._runner(batch)

    def _resuming_plan(self, graph_module: fx.GraphModule) -> _Plan:
        if self._plan is None:
            self._plan = _Plan(graph_module.graph)
        return self._plan

    def tap_position(self, point: int) -> int | None:
        """The index in the traced graph of the node that first taps ``point`` (None: hooked)."""
        if self._graph_module is None:
            return None
        return self._resuming_plan(self._graph_module).first_tap.get(point)

    def run_until_stopped(
        self, batch: Tensor, sink: Sink, start: Frontier | None = None
    ) -> Frontier | None:
        """Forward ``batch`` until ``sink`` raises `StopForward`; returns where it stopped.

        A traced program runs node by node (an fx Interpreter)
        and, given ``start`` (a frontier of the same input), begins there instead of at the input:
        a later layer of an analysis costs only the layers between. Every value is computed by the
        same op on the same operands as in ``run``, so the results are the same to the bit.
        Returns None when the forward ran to its end, or for a hooked program (which always
        starts at the input).
        """
        if self._graph_module is None:
            with contextlib.suppress(StopForward):
                self.run(batch, sink)
            return None
        interpreter = _Resuming(self._graph_module, self._resuming_plan(self._graph_module))
        with _sinking_into(sink):
            try:
                interpreter.resume(batch, start)
            except StopForward:
                return interpreter.frontier()
        return None


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


def _node_named(graph: fx.Graph, name: str) -> fx.Node | None:
    return next((node for node in graph.nodes if node.name == name), None)


_programs: "weakref.WeakKeyDictionary[nn.Module, LayerProgram]" = weakref.WeakKeyDictionary()
_programs_lock = threading.Lock()


def program_of(model: nn.Module, like: LayerProgram | None = None) -> LayerProgram:
    """The layer program of ``model``, built once per module object (thread-safe).

    ``like``: the program of another instance of the same architecture (a random twin, a private
    copy). Its traced graph is reused as is, never traced again: fx tracing patches
    ``nn.Module.__call__`` for the whole process, which would break forwards that other requests
    are running meanwhile. Build after moving the model to its device: the program refers to its
    tensors.
    """
    with _programs_lock:
        program = _programs.get(model)
        if program is None:
            program = _programs[model] = (
                LayerProgram.build(model) if like is None else like.for_twin(model)
            )
    return program
