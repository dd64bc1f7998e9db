"""Gallery networks: parameter totals equal the published ones, receptive fields the published ones.

Sources: parameter totals from torchvision's model docs (``num_params`` of AlexNet_Weights,
VGG16_Weights, GoogLeNet_Weights, ResNet50_Weights, DenseNet121_Weights .IMAGENET1K_V1);
receptive fields from Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019 (alexnet_v2 195, vgg_16 212, resnet_v1_50 483), and otherwise from the
textbook recurrence r += (k − 1)·j, j *= s along the widest path, written out below by hand.
Everything runs on the meta device: no weights are allocated.
"""

import pytest
import torch
from torch import nn

from app.core.architectures import gallery
from app.core.receptive_field import compute_receptive_fields

IMAGENET = (3, 224, 224)


def on_meta(build, **options) -> nn.Module:
    with torch.device("meta"):
        return build(**options).eval()


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def recurrence(path: list[tuple[int, int]]) -> int:
    """Receptive field of a single path of (kernel, stride) layers, by the textbook recurrence."""
    size, jump = 1, 1
    for kernel, stride in path:
        size += (kernel - 1) * jump
        jump *= stride
    return size


def rf_sizes(module: nn.Module, names: list[str], shape=IMAGENET) -> list[int]:
    fields = compute_receptive_fields(module, shape)
    return [fields[name].rf.size[0] for name in names]


@pytest.mark.parametrize(
    ("build", "published"),
    [
        (gallery.alexnet, 61_100_840),
        (gallery.vgg16, 138_357_544),
        (gallery.googlenet, 6_624_904),
        (gallery.resnet50, 25_557_032),
        (gallery.densenet121, 7_978_856),
    ],
)
def test_parameter_totals_equal_torchvision(build, published: int) -> None:
    assert parameters(on_meta(build)) == published


def test_zfnet_parameters_follow_the_paper_figure() -> None:
    convs = [(3, 96, 7), (96, 256, 5), (256, 384, 3), (384, 384, 3), (384, 256, 3)]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    by_hand = sum(o * i * k * k + o for i, o, k in convs) + sum(i * o + o for i, o in fcs)
    assert parameters(on_meta(gallery.zfnet)) == by_hand == 62_357_608


def test_lenet5_is_the_bundled_digit_model() -> None:
    assert parameters(gallery.lenet5()) == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706


def test_paper_variants_keep_or_change_the_count() -> None:
    # stride on the first 1×1 (the paper) or on the 3×3 (torchvision V1.5): same weights
    assert parameters(on_meta(gallery.resnet50, stride_on_3x3=False)) == 25_557_032
    # a true 5×5 third branch: 25/9 of the 3×3 branch's weights, 7,005,832 in total
    five = on_meta(gallery.googlenet, branch3_kernel=5)
    extra = sum(c[4] * c[5] * (25 - 9) for c in gallery.GOOGLENET_INCEPTIONS.values())
    assert parameters(five) == 6_624_904 + extra == 7_005_832


def test_alexnet_and_vgg16_receptive_fields_match_distill() -> None:
    alexnet = [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1)]
    assert recurrence(alexnet) == 163 and recurrence([*alexnet, (3, 2)]) == 195
    assert rf_sizes(on_meta(gallery.alexnet), ["conv5", "pool5"]) == [163, 195]
    vgg = []
    for widths in gallery.VGG16_STAGES:
        vgg += [(3, 1)] * len(widths) + [(2, 2)]
    assert recurrence(vgg[:-1]) == 196 and recurrence(vgg) == 212
    assert rf_sizes(on_meta(gallery.vgg16), ["conv5_3", "pool5"]) == [196, 212]


def test_resnet50_receptive_field_depends_on_where_the_stride_sits() -> None:
    def path(stride_on_3x3: bool) -> list[tuple[int, int]]:
        layers = [(7, 2), (3, 2)]
        for _, blocks, stride in gallery.RESNET50_STAGES:
            for block in range(blocks):
                s = stride if block == 0 else 1
                layers += [(1, 1), (3, s)] if stride_on_3x3 else [(1, s), (3, 1)]
        return layers

    assert recurrence(path(True)) == 427  # torchvision (V1.5)
    assert recurrence(path(False)) == 483  # the paper's layout: Distill's resnet_v1_50
    assert rf_sizes(on_meta(gallery.resnet50), ["layer4.2"]) == [427]
    paper = on_meta(gallery.resnet50, stride_on_3x3=False)
    assert rf_sizes(paper, ["layer1.2", "layer2.3", "layer3.5", "layer4.2"]) == [35, 99, 291, 483]


def test_googlenet_zfnet_densenet_lenet_receptive_fields_by_hand() -> None:
    stem = [(7, 2), (3, 2), (1, 1), (3, 1), (3, 2)]  # conv1, maxpool1, conv2, conv3, maxpool2
    widest = [(3, 1)]  # torchvision's inception: every branch reaches at most 3×3
    googlenet = stem + widest * 2 + [(3, 2)] + widest * 5 + [(2, 2)] + widest * 2
    assert recurrence(googlenet) == 379
    assert rf_sizes(on_meta(gallery.googlenet), ["inception5b"]) == [379]
    assert rf_sizes(on_meta(gallery.googlenet, branch3_kernel=5), ["inception5b"]) == [699]

    zfnet = [(7, 2), (3, 2), (5, 2), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)]
    assert recurrence(zfnet) == 171
    assert rf_sizes(on_meta(gallery.zfnet), ["pool5"]) == [171]

    densenet = [(7, 2), (3, 2)]
    for index, layers in enumerate(gallery.DENSENET121_BLOCKS):
        densenet += [(1, 1), (3, 1)] * layers + ([(1, 1), (2, 2)] if index < 3 else [])
    assert recurrence(densenet) == 2071
    assert rf_sizes(on_meta(gallery.densenet121), ["denseblock4"]) == [2071]

    assert recurrence([(5, 1), (2, 2), (5, 1), (2, 2)]) == 16
    assert rf_sizes(gallery.lenet5(), ["pool2"], (1, 28, 28)) == [16]


def test_inception_residual_and_dense_blocks_shapes() -> None:
    x = torch.zeros(1, 192, 28, 28, device="meta")
    inception = on_meta(gallery.Inception, cin=192, ch1x1=64, ch3x3red=96, ch3x3=128,
                        ch5x5red=16, ch5x5=32, pool_proj=32, branch3_kernel=3)  # fmt: skip
    assert inception(x).shape == (1, 64 + 128 + 32 + 32, 28, 28)  # concatenated branches
    block = on_meta(gallery.Bottleneck, cin=256, width=128, stride=2, stride_on_3x3=True)
    assert block(torch.zeros(1, 256, 56, 56, device="meta")).shape == (1, 512, 28, 28)
    dense = on_meta(gallery.DenseBlock, layers=6, cin=64, growth=32)
    assert dense(torch.zeros(1, 64, 56, 56, device="meta")).shape == (1, 64 + 6 * 32, 56, 56)


def test_forward_on_real_tensors_runs_for_the_small_nets() -> None:
    torch.manual_seed(0)
    assert gallery.lenet5().eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    googlenet = gallery.googlenet(num_classes=7).eval()
    assert googlenet(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
