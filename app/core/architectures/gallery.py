"""The classic networks the seeds walk through, defined here (random init, no weights needed).

Parameter totals equal the standard definitions: torchvision's AlexNet (single tower, "one weird
trick"), VGG-16, GoogLeNet without its auxiliary heads (including torchvision's 3×3 kernel in the
"5×5" branch, pytorch/vision#906), ResNet-50 (V1.5: stride on the 3×3) and DenseNet-121; ZFNet
follows Fig. 3 of Zeiler & Fergus; LeNet-5 is the bundled digit model. Every stage is its own named
module (``conv5_3``, ``inception4a``, ``layer4.2``, ``denseblock3``) and no activation runs in
place, so the layer table, hooks and receptive-field trace read like the papers.
"""

from collections import OrderedDict

import torch
from torch import Tensor, nn

from app.core.architectures.lenet5 import LeNet5

IMAGENET_CLASSES = 1000


def _named(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def _conv_relu(
    suffix: str, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0
) -> list[tuple[str, nn.Module]]:
    conv = nn.Conv2d(cin, cout, kernel, stride, padding)
    return [(f"conv{suffix}", conv), (f"relu{suffix}", nn.ReLU())]


def _classifier(features: int, hidden: int, num_classes: int) -> list[tuple[str, nn.Module]]:
    """fc6, fc7, fc8 with ReLU and dropout, as in AlexNet, ZFNet and VGG."""
    return [
        ("flatten", nn.Flatten()),
        ("drop6", nn.Dropout()),
        ("fc6", nn.Linear(features, hidden)),
        ("relu6", nn.ReLU()),
        ("drop7", nn.Dropout()),
        ("fc7", nn.Linear(hidden, hidden)),
        ("relu7", nn.ReLU()),
        ("fc8", nn.Linear(hidden, num_classes)),
    ]


def lenet5() -> nn.Module:
    """LeNet-5 as bundled for 28×28 digits (conv1 pads by 2: LeCun's 32×32 arithmetic)."""
    return LeNet5()


def alexnet(num_classes: int = IMAGENET_CLASSES) -> nn.Sequential:
    """AlexNet as in torchvision: one tower of 64-192-384-256-256 filters."""
    return _named(
        *_conv_relu("1", 3, 64, 11, 4, 2),
        ("pool1", nn.MaxPool2d(3, 2)),
        *_conv_relu("2", 64, 192, 5, 1, 2),
        ("pool2", nn.MaxPool2d(3, 2)),
        *_conv_relu("3", 192, 384, 3, 1, 1),
        *_conv_relu("4", 384, 256, 3, 1, 1),
        *_conv_relu("5", 256, 256, 3, 1, 1),
        ("pool5", nn.MaxPool2d(3, 2)),
        ("avgpool", nn.AdaptiveAvgPool2d(6)),
        *_classifier(256 * 6 * 6, 4096, num_classes),
    )


def zfnet(num_classes: int = IMAGENET_CLASSES) -> nn.Sequential:
    """ZFNet (Zeiler & Fergus 2014, Fig. 3): smaller first filters (7×7, stride 2) than AlexNet.

    224 → 110 → 55 → 26 → 13 → 13 → 13 → 6 as in the figure; the figure's sizes need padding 1
    on conv1 (floored: (224 − 7 + 2)/2 + 1 = 110.5) and ceil-mode 3×3/2 pooling; layers 1 and 2
    are contrast-normalized across feature maps (no parameters).
    """
    return _named(
        *_conv_relu("1", 3, 96, 7, 2, 1),
        ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("norm1", nn.LocalResponseNorm(5)),
        *_conv_relu("2", 96, 256, 5, 2, 0),
        ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("norm2", nn.LocalResponseNorm(5)),
        *_conv_relu("3", 256, 384, 3, 1, 1),
        *_conv_relu("4", 384, 384, 3, 1, 1),
        *_conv_relu("5", 384, 256, 3, 1, 1),
        ("pool5", nn.MaxPool2d(3, 2)),
        *_classifier(256 * 6 * 6, 4096, num_classes),
    )


VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16(num_classes: int = IMAGENET_CLASSES) -> nn.Sequential:
    """VGG-16 (configuration D): only 3×3 convolutions and 2×2 max pooling, conv1_1 … conv5_3."""
    layers: list[tuple[str, nn.Module]] = []
    cin = 3
    for stage, widths in enumerate(VGG16_STAGES, start=1):
        for index, width in enumerate(widths, start=1):
            layers += _conv_relu(f"{stage}_{index}", cin, width, 3, 1, 1)
            cin = width
        layers.append((f"pool{stage}", nn.MaxPool2d(2, 2)))
    return _named(
        *layers, ("avgpool", nn.AdaptiveAvgPool2d(7)), *_classifier(512 * 7 * 7, 4096, num_classes)
    )


class ConvBNReLU(nn.Sequential):
    """Bias-free convolution, batch norm, ReLU: the unit GoogLeNet and ResNet are built from."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(cin, cout, kernel, stride, padding, bias=False),
                bn=nn.BatchNorm2d(cout, eps=0.001),
                relu=nn.ReLU(),
            )
        )


class Inception(nn.Module):
    """Four branches side by side, concatenated: 1×1; 1×1→3×3; 1×1→"5×5"; 3×3 max pool→1×1.

    The 1×1 convolutions in front cut the depth the larger kernels see (the seeds' 1×1 idea).
    """

    def __init__(
        self,
        cin: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch3_kernel: int,
    ) -> None:
        super().__init__()
        self.branch1 = ConvBNReLU(cin, ch1x1, 1)
        self.branch2 = nn.Sequential(
            ConvBNReLU(cin, ch3x3red, 1), ConvBNReLU(ch3x3red, ch3x3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            ConvBNReLU(cin, ch5x5red, 1),
            ConvBNReLU(ch5x5red, ch5x5, branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, 1, 1, ceil_mode=True), ConvBNReLU(cin, pool_proj, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], dim=1)


GOOGLENET_INCEPTIONS = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}
"""(in, 1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool proj) per module: Table 1 of the paper."""


def googlenet(num_classes: int = IMAGENET_CLASSES, branch3_kernel: int = 3) -> nn.Sequential:
    """GoogLeNet (Inception v1) without the auxiliary classifiers.

    Args:
        branch3_kernel: 3 as in torchvision (whose published weights and 6,624,904 parameters
            keep this known deviation), 5 for the paper's true 5×5 branch.
    """
    inceptions = {
        name: Inception(*channels, branch3_kernel=branch3_kernel)
        for name, channels in GOOGLENET_INCEPTIONS.items()
    }
    return _named(
        ("conv1", ConvBNReLU(3, 64, 7, 2, 3)),
        ("maxpool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("conv2", ConvBNReLU(64, 64, 1)),
        ("conv3", ConvBNReLU(64, 192, 3, padding=1)),
        ("maxpool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
        *[(name, inceptions[name]) for name in ("inception3a", "inception3b")],
        ("maxpool3", nn.MaxPool2d(3, 2, ceil_mode=True)),
        *[(f"inception4{c}", inceptions[f"inception4{c}"]) for c in "abcde"],
        ("maxpool4", nn.MaxPool2d(2, 2, ceil_mode=True)),
        *[(name, inceptions[name]) for name in ("inception5a", "inception5b")],
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(0.2)),
        ("fc", nn.Linear(1024, num_classes)),
    )


class Bottleneck(nn.Module):
    """ResNet's residual block: 1×1 reduce, 3×3, 1×1 expand (×4), plus the shortcut, then ReLU.

    ``stride_on_3x3`` places a stage's down-sampling on the 3×3 (torchvision, "V1.5"); False puts
    it on the first 1×1 as the paper does. Same parameters, different receptive fields.
    """

    def __init__(self, cin: int, width: int, stride: int, stride_on_3x3: bool) -> None:
        super().__init__()
        cout = 4 * width
        self.conv1 = nn.Conv2d(cin, width, 1, 1 if stride_on_3x3 else stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride if stride_on_3x3 else 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.relu3 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu3(out + shortcut)


RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
"""(width, blocks, stride of the first block) for layer1 … layer4."""


def resnet50(num_classes: int = IMAGENET_CLASSES, stride_on_3x3: bool = True) -> nn.Sequential:
    """ResNet-50: a 7×7 stem, then 3 + 4 + 6 + 3 bottleneck blocks, global pooling, one FC."""
    stages: list[tuple[str, nn.Module]] = []
    cin = 64
    for index, (width, blocks, stride) in enumerate(RESNET50_STAGES, start=1):
        layer = []
        for block in range(blocks):
            layer.append(Bottleneck(cin, width, stride if block == 0 else 1, stride_on_3x3))
            cin = 4 * width
        stages.append((f"layer{index}", nn.Sequential(*layer)))
    return _named(
        ("conv1", nn.Conv2d(3, 64, 7, 2, 3, bias=False)),
        ("bn1", nn.BatchNorm2d(64)),
        ("relu", nn.ReLU()),
        ("maxpool", nn.MaxPool2d(3, 2, 1)),
        *stages,
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(2048, num_classes)),
    )


class DenseLayer(nn.Module):
    """BN-ReLU-1×1 (4k filters) then BN-ReLU-3×3 (k filters): the k new feature maps."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    """Every layer sees the concatenation of the block's input and all earlier layers' outputs."""

    def __init__(self, layers: int, cin: int, growth: int) -> None:
        super().__init__()
        for index in range(layers):
            self.add_module(f"denselayer{index + 1}", DenseLayer(cin + index * growth, growth))

    def forward(self, x: Tensor) -> Tensor:
        features = x
        for layer in self.children():
            features = torch.cat([features, layer(features)], dim=1)
        return features


DENSENET121_BLOCKS = (6, 12, 24, 16)
DENSENET_GROWTH = 32


def densenet121(num_classes: int = IMAGENET_CLASSES) -> nn.Sequential:
    """DenseNet-121 (k = 32): dense blocks of 6, 12, 24, 16 layers; transitions halve C, H, W."""
    layers: list[tuple[str, nn.Module]] = [
        ("conv0", nn.Conv2d(3, 64, 7, 2, 3, bias=False)),
        ("norm0", nn.BatchNorm2d(64)),
        ("relu0", nn.ReLU()),
        ("pool0", nn.MaxPool2d(3, 2, 1)),
    ]
    channels = 64
    for index, count in enumerate(DENSENET121_BLOCKS, start=1):
        layers.append((f"denseblock{index}", DenseBlock(count, channels, DENSENET_GROWTH)))
        channels += count * DENSENET_GROWTH
        if index < len(DENSENET121_BLOCKS):
            transition = _named(
                ("norm", nn.BatchNorm2d(channels)),
                ("relu", nn.ReLU()),
                ("conv", nn.Conv2d(channels, channels // 2, 1, bias=False)),
                ("pool", nn.AvgPool2d(2, 2)),
            )
            layers.append((f"transition{index}", transition))
            channels //= 2
    return _named(
        *layers,
        ("norm5", nn.BatchNorm2d(channels)),
        ("relu5", nn.ReLU()),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Linear(channels, num_classes)),
    )
