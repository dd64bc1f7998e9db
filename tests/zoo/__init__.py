"""A zoo of small CNNs written the way real-world PyTorch code is written, to test convlens on.

Each module builds one family in a well-known style (torchvision, the official ConvNeXt code, the
PyTorch tutorials) with its awkward constructs left in: in-place activations and additions, modules
called twice, functional ops that fire no hooks, concatenations, channels-last linears, padding
modes, data-dependent control flow. ``ZOO`` says how to build each model; ``specs.write_spec`` turns
an entry into a model spec (weights plus TOML) that convlens can load like any bundled model.
"""

import importlib
from dataclasses import dataclass, field

from torch import nn

from tests.zoo import (
    convnext,
    densenet,
    inception,
    mobilenetv3,
    padding,
    resnet,
    shufflenet,
    squeezenet,
    tutorial,
    untraceable,
    vgg,
)

NUM_CLASSES = 10


@dataclass(frozen=True)
class ZooEntry:
    """How to build one zoo model, and what it is.

    Attributes:
        name: Display name of the model's spec.
        entry_point: ``"module:function"`` of the builder, as a spec's ``entry_point``.
        input_shape: ``(channels, height, width)`` the model expects (its module's ``INPUT_SHAPE``).
        traceable: Whether ``torch.fx.symbolic_trace`` succeeds on the model (checked by a test).
        description: What the model imitates and which tricky constructs it contains.
        kwargs: Keyword arguments for the builder.
    """

    name: str
    entry_point: str
    input_shape: tuple[int, int, int]
    traceable: bool
    description: str
    kwargs: dict[str, int] = field(default_factory=lambda: {"num_classes": NUM_CLASSES})

    def build(self, **overrides: int) -> nn.Module:
        """Import the entry point and call it with ``kwargs`` updated by ``overrides``."""
        module_name, _, function_name = self.entry_point.partition(":")
        builder = getattr(importlib.import_module(module_name), function_name)
        return builder(**(self.kwargs | overrides))


ZOO: dict[str, ZooEntry] = {
    "zoo-resnet": ZooEntry(
        "Zoo: ResNet (BasicBlock)",
        "tests.zoo.resnet:build",
        resnet.INPUT_SHAPE,
        True,
        "torchvision-style ResNet with BasicBlocks: in-place ReLU module called twice per block, "
        "out += identity, strided 1×1 downsample.",
    ),
    "zoo-resnet-bottleneck": ZooEntry(
        "Zoo: ResNeXt (Bottleneck, dilated)",
        "tests.zoo.resnet:build_bottleneck",
        resnet.INPUT_SHAPE,
        True,
        "torchvision-style ResNeXt Bottlenecks: grouped 3×3 conv (groups=4), the last stage's "
        "stride replaced by dilation 2.",
    ),
    "zoo-tutorial": ZooEntry(
        "Zoo: PyTorch tutorial CIFAR net",
        "tests.zoo.tutorial:build",
        tutorial.INPUT_SHAPE,
        True,
        "The 60-minute-blitz CIFAR-10 net: functional ReLUs, one MaxPool2d module called twice.",
    ),
    "zoo-mobilenetv3": ZooEntry(
        "Zoo: MobileNetV3",
        "tests.zoo.mobilenetv3:build",
        mobilenetv3.INPUT_SHAPE,
        True,
        "MobileNetV3-style inverted residuals: depthwise convs, squeeze-excitation with an "
        "in-place functional hardsigmoid, Hardswish, result += input.",
    ),
    "zoo-convnext": ZooEntry(
        "Zoo: ConvNeXt",
        "tests.zoo.convnext:build",
        convnext.INPUT_SHAPE,
        True,
        "ConvNeXt blocks: depthwise 7×7, channels-last LayerNorm and Linear layers between "
        "permutes, layer scale, channels-first LayerNorm2d, 4×4 patchify stem.",
    ),
    "zoo-densenet": ZooEntry(
        "Zoo: DenseNet",
        "tests.zoo.densenet:build",
        densenet.INPUT_SHAPE,
        True,
        "DenseNet: dense layers fed a list and concatenating it, in-place ReLUs after BN, "
        "average-pool transitions, in-place functional ReLU before the head.",
    ),
    "zoo-inception": ZooEntry(
        "Zoo: Inception",
        "tests.zoo.inception:build",
        inception.INPUT_SHAPE,
        True,
        "Inception blocks: four parallel branches (1×1, 3×3, 5×5, functional max pool) joined by "
        "torch.cat, BasicConv2d with in-place functional ReLU, a stride-2 reduction block.",
    ),
    "zoo-squeezenet": ZooEntry(
        "Zoo: SqueezeNet 1.1",
        "tests.zoo.squeezenet:build",
        squeezenet.INPUT_SHAPE,
        True,
        "SqueezeNet 1.1: Fire modules, ceil-mode max pools, an unpadded stride-2 stem that never "
        "sees the image's last row and column, a conv classifier.",
    ),
    "zoo-padding": ZooEntry(
        "Zoo: padding and odd layers",
        "tests.zoo.padding:build",
        padding.INPUT_SHAPE,
        True,
        "Reflect, circular and replicate padding modes, asymmetric and reflect F.pad, dilated and "
        "grouped convs, GroupNorm, ceil-mode and count_include_pad=False pools, nine activations.",
    ),
    "zoo-vgg": ZooEntry(
        "Zoo: VGG",
        "tests.zoo.vgg:build",
        vgg.INPUT_SHAPE,
        True,
        "torchvision-style VGG: conv + in-place ReLU stacks, an adaptive average pool that "
        "averages, a dropout classifier.",
    ),
    "zoo-shufflenet": ZooEntry(
        "Zoo: ShuffleNetV2",
        "tests.zoo.shufflenet:build",
        shufflenet.INPUT_SHAPE,
        True,
        "ShuffleNetV2 units: channel split with chunk, concatenation with an untouched half, "
        "channel shuffle by view/transpose/view.",
    ),
    "zoo-untraceable": ZooEntry(
        "Zoo: data-dependent branch",
        "tests.zoo.untraceable:build",
        untraceable.INPUT_SHAPE,
        False,
        "A small CNN whose forward picks one of two branches in Python from x.mean() > 0, so "
        "torch.fx cannot trace it.",
    ),
}
"""Every zoo model by spec id (``zoo-`` + module name, underscores as hyphens)."""
