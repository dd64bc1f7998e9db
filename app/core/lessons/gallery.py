"""The architecture gallery: the seeds' network lineage with published figures beside computed ones.

Each network is built on the ``meta`` device (shapes only: VGG-16's 138 M parameters cost no
memory), then described by the same code as the live models (``registry.describe_layers``: one
forward for output shapes, the receptive-field trace, parameters per layer).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from app.core.architectures import gallery as nets
from app.core.layer_program import LayerProgram
from app.core.lessons.text import Text
from app.core.registry import LayerInfo, describe_layers

IMAGENET_INPUT = (3, 224, 224)


@dataclass(frozen=True)
class Landmark:
    """A layer whose receptive field is published (``citation``) or derived by hand (``note``)."""

    layer: str
    rf_size: int
    note: Text | None = None
    citation: str | None = None


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    year: int
    paper: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]
    published_params: int | None
    params_source: Text
    summary: Text
    diagram: str | None = None
    landmarks: tuple[Landmark, ...] = ()


DISTILL = "Araujo et al., Computing Receptive Fields of CNNs, Distill 2019"
TORCHVISION = Text("torchvision model docs (num_params)", "torchvision 模型文档（num_params）")
BY_HAND = Text("hand-derived, docs/lessons.md", "手工推导，见 docs/lessons.md")

NETWORKS: tuple[Network, ...] = (
    Network(
        "lenet5",
        "LeNet-5",
        1998,
        "LeCun et al., Gradient-Based Learning Applied to Document Recognition",
        nets.lenet5,
        (1, 28, 28),
        61_706,
        Text(
            "the bundled digit model (C3 fully connected; the paper connects C3 partially)",
            "本项目自带的数字模型（C3 为全连接；论文中 C3 是部分连接）",
        ),
        Text(
            "The first successful CNN: two conv + pool stages, then three fully connected layers. "
            "The same network reads digits on the analyze page.",
            "第一个成功的卷积神经网络：两组卷积 + 池化，再接三层全连接。"
            "分析页面上识别数字的就是它。",
        ),
        landmarks=(
            Landmark("pool2", 16, Text("hand-derived: 5, 6, 14, 16", "手工推导：5、6、14、16")),
        ),
    ),
    Network(
        "alexnet",
        "AlexNet",
        2012,
        "Krizhevsky et al., ImageNet Classification with Deep CNNs (torchvision: One weird trick)",
        nets.alexnet,
        IMAGENET_INPUT,
        61_100_840,
        TORCHVISION,
        Text(
            "Like LeNet but deeper and wider; ReLU, dropout, each conv stage followed by max "
            "pooling. 58.6 M of its 61.1 M parameters sit in the three fully connected layers.",
            "与 LeNet 类似但更深更宽；使用 ReLU 和随机失活，卷积后接最大池化。"
            "6110 万参数中有 5860 万在三层全连接里。",
        ),
        landmarks=(
            Landmark("conv5", 163, citation=DISTILL),
            Landmark("pool5", 195, citation=DISTILL),
        ),
    ),
    Network(
        "zfnet",
        "ZFNet",
        2013,
        "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks (Fig. 3)",
        nets.zfnet,
        IMAGENET_INPUT,
        None,
        Text(
            "computed from the paper's Fig. 3 (dense layers 3–5, no published total)",
            "根据论文图 3 计算（第 3–5 层为稠密连接，论文未给出总数）",
        ),
        Text(
            "AlexNet with a smaller first layer (7×7, stride 2 instead of 11×11, stride 4), "
            "chosen after visualizing what the layers had learned.",
            "把 AlexNet 第一层改小（7×7、步幅 2，而非 11×11、步幅 4），"
            "这是可视化各层学到的内容后做出的改动。",
        ),
        landmarks=(
            Landmark("pool5", 171, Text("hand-derived from Fig. 3", "根据论文图 3 手工推导")),
        ),
    ),
    Network(
        "vgg16",
        "VGG-16",
        2014,
        "Simonyan & Zisserman, Very Deep Convolutional Networks (configuration D)",
        nets.vgg16,
        IMAGENET_INPUT,
        138_357_544,
        TORCHVISION,
        Text(
            "Only 3×3 convolutions and 2×2 pooling, stacked 13 + 3 layers deep: two 3×3 see as "
            "far as one 5×5 with fewer weights.",
            "从头到尾只用 3×3 卷积和 2×2 池化，堆叠 13 + 3 层："
            "两个 3×3 的视野等于一个 5×5，参数却更少。",
        ),
        landmarks=(
            Landmark("conv5_3", 196, citation=DISTILL),
            Landmark("pool5", 212, citation=DISTILL),
        ),
    ),
    Network(
        "googlenet",
        "GoogLeNet (Inception v1)",
        2014,
        "Szegedy et al., Going Deeper with Convolutions",
        nets.googlenet,
        IMAGENET_INPUT,
        6_624_904,
        Text(f"{TORCHVISION.en}, without the auxiliary heads", f"{TORCHVISION.zh}，不含辅助分类器"),
        Text(
            "Inception modules run 1×1, 3×3, 5×5 and pooling side by side and concatenate them; "
            "1×1 convolutions keep the depth in check and global pooling replaces the big FC "
            "layers: 6.6 M parameters. torchvision's '5×5' branch is 3×3 (pytorch/vision#906); "
            "with a true 5×5 it would be 7.0 M.",
            "Inception 模块并排使用 1×1、3×3、5×5 和池化再拼接；1×1 卷积控制深度，全局池化"
            "取代庞大的全连接层：仅 660 万参数。torchvision 的“5×5”分支实为 3×3"
            "（torchvision 第 906 号问题）；真用 5×5 则为 700 万。",
        ),
        "inception",
        (Landmark("inception5b", 379, BY_HAND),),
    ),
    Network(
        "resnet50",
        "ResNet-50",
        2015,
        "He et al., Deep Residual Learning for Image Recognition",
        nets.resnet50,
        IMAGENET_INPUT,
        25_557_032,
        TORCHVISION,
        Text(
            "Residual blocks add their input to their output (a skip connection), so 50 layers "
            "still train; batch norm after every convolution. torchvision strides on the 3×3 "
            "('V1.5'): the last stage sees 427 pixels; the paper strides on the first 1×1: 483.",
            "残差块把输入加到输出上（跳跃连接），50 层也能训练；每个卷积后接批归一化。"
            "torchvision 在 3×3 上降采样（“V1.5”），最后一级感受野为 427；"
            "论文在第一个 1×1 上降采样：483。",
        ),
        "residual",
        (
            Landmark(
                "layer4.2",
                427,
                Text(
                    "hand-derived (V1.5); the paper's layout gives 483",
                    "手工推导（V1.5）；按论文的结构为 483",
                ),
                DISTILL,
            ),
        ),
    ),
    Network(
        "densenet121",
        "DenseNet-121",
        2017,
        "Huang et al., Densely Connected Convolutional Networks",
        nets.densenet121,
        IMAGENET_INPUT,
        7_978_856,
        TORCHVISION,
        Text(
            "Inside a dense block every layer receives all earlier layers' maps (concatenated) and "
            "adds k = 32 new ones: skip connections from start to end.",
            "稠密块中每一层都接收前面所有层的特征图（拼接），再新增 k = 32 张：跳跃连接贯穿始终。",
        ),
        "dense",
        (Landmark("denseblock4", 2071, BY_HAND),),
    ),
)

NETWORK_INDEX: dict[str, Network] = {network.id: network for network in NETWORKS}


@dataclass(frozen=True)
class Description:
    """A gallery network's layer table (same shape as a live model's) and parameter total."""

    network: Network
    layers: list[LayerInfo]
    total_params: int


def _build_on_meta(network: Network) -> nn.Module:
    with torch.device("meta"):
        return network.build().eval()


@cache
def total_params(network_id: str) -> int:
    """Parameters of the in-repo definition, counted without allocating them."""
    return sum(p.numel() for p in _build_on_meta(NETWORK_INDEX[network_id]).parameters())


@cache
def describe(network_id: str) -> Description:
    """Layer table of one gallery network, built once per process on the meta device."""
    network = NETWORK_INDEX[network_id]
    module = _build_on_meta(network)
    # Hooks, not fx: this runs while the server serves forwards (see LayerProgram.build).
    layers = describe_layers(LayerProgram.build(module, trace=False), network.input_shape)
    return Description(network, layers, sum(p.numel() for p in module.parameters()))
