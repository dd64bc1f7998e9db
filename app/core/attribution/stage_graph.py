"""A model's forward as a chain of stages, read from its torch.fx graph.

Fast occlusion (``local_forward``) runs the first stages of a network on crops, which is exact only
when each stage is a function of the previous stage's output alone. Real code is rarely a plain
chain of child modules: ``torch.flatten`` sits between the pool and the classifier, a residual
block reads its input twice, ``x.relu_()`` overwrites a tensor between two children. So the chain
is read from the traced graph. Every node computed from the image belongs to one call: the
outermost module call below the root that is not an ``nn.Sequential`` (a Sequential only passes
values along), or at the top level the node itself. The boundary after a call is a cut when exactly
one value computed so far is read later, and the calls since the previous cut computed it. Calls
between two cuts form one stage, so whatever a stage overwrites in place, or reads twice, stays
inside it. A stage is the module itself when it is one module call on the previous stage's output,
else a ``GraphModule`` of its nodes sharing the model's parameters.
"""

import copy
from dataclasses import dataclass

from torch import fx, nn

from app.core.layer_program import program_of


@dataclass(frozen=True)
class GraphStage:
    """One link of the chain: ``module`` maps the previous stage's output to this one's."""

    name: str
    module: nn.Module


def _call_of(node: fx.Node) -> str:
    """The call ``node`` belongs to: its outermost non-Sequential module call, else itself."""
    for key, (_, kind) in node.meta.get("nn_module_stack", {}).items():
        if kind is not nn.Sequential:
            return key  # "pool@1" for a module's second call
    return node.name


def _stage(
    model: nn.Module, name: str, source: fx.Node, members: list[fx.Node], result: fx.Node
) -> GraphStage:
    """The stage computing ``result`` from ``source`` by running ``members`` in graph order."""
    call = members[0]
    one_call = members == [call] and call.op == "call_module"
    if one_call and call.args == (source,) and not call.kwargs:
        return GraphStage(name, model.get_submodule(str(call.target)))
    graph = fx.Graph()
    copies = {source: graph.placeholder("x")}

    def copy(node: fx.Node) -> fx.Node:
        # Members come in graph order; anything else they read is a constant of the model.
        if node not in copies:
            copies[node] = graph.node_copy(node, copy)
        return copies[node]

    for node in members:
        copy(node)
    graph.output(copies[result])
    return GraphStage(name, fx.GraphModule(model, graph))


def graph_stages(model: nn.Module) -> list[GraphStage] | None:
    """The forward cut into stages, or None when fx cannot trace it or it does not map one image
    to one tensor (optional arguments, several outputs).

    The graph is the model's layer program's, traced once at load time: tracing again here, while
    other requests run forwards, would break them (fx patches ``nn.Module.__call__``).
    """
    plain = program_of(model).plain_graph
    if plain is None:
        return None
    graph = copy.deepcopy(plain)
    nodes = list(graph.nodes)
    inputs = [node for node in nodes if node.op == "placeholder"]
    output = nodes[-1]
    if len(inputs) != 1 or output.op != "output" or not isinstance(output.args[0], fx.Node):
        return None
    image, logits = inputs[0], output.args[0]
    dependent = {image}
    for node in nodes[1:-1]:
        if any(arg in dependent for arg in node.all_input_nodes):
            dependent.add(node)
    if logits not in dependent:
        return None
    order = {node: index for index, node in enumerate(nodes)}
    last_read = {node: max(map(order.__getitem__, node.users), default=-1) for node in dependent}

    calls: list[tuple[str, list[fx.Node]]] = []
    for node in nodes[1:-1]:
        if node in dependent:
            key = _call_of(node)
            if calls and calls[-1][0] == key:
                calls[-1][1].append(node)
            else:
                calls.append((key, [node]))

    stages: list[GraphStage] = []
    source, names, members = image, [], []
    for key, call in calls:
        names.append(key)
        members += call
        end = order[call[-1]]
        live = [node for node in dependent if order[node] <= end < last_read[node]]
        if len(live) == 1 and live[0] in members:
            stages.append(_stage(model, "+".join(names), source, members, live[0]))
            source, names, members = live[0], [], []
    return stages if source is logits and not members else None
