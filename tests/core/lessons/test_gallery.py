"""The gallery catalog: layer tables like the live models', published and computed figures."""

import pytest

from app.core.lessons.gallery import NETWORKS, describe, total_params


@pytest.mark.parametrize("network", NETWORKS, ids=lambda network: network.id)
def test_catalog_figures_agree_with_the_definitions(network) -> None:
    description = describe(network.id)
    assert description.total_params == total_params(network.id)
    if network.published_params is not None:
        assert description.total_params == network.published_params
    layers = {layer.name: layer for layer in description.layers}
    for landmark in network.landmarks:
        assert layers[landmark.layer].receptive_field.rf.size == (landmark.rf_size,) * 2
    leaves = [layer for layer in description.layers if layer.kind != "block"]
    assert sum(layer.params for layer in leaves) == description.total_params  # each one once
    assert network.summary.en and network.summary.zh


def test_vgg16_layer_table() -> None:
    layers = {layer.name: layer for layer in describe("vgg16").layers}
    assert layers["conv1_1"].output_shape == (64, 224, 224)
    assert layers["conv1_1"].params == 3 * 64 * 9 + 64 == 1_792
    assert layers["pool5"].output_shape == (512, 7, 7)
    assert layers["pool5"].receptive_field.rf.jump == (32, 32)
    assert layers["fc6"].params == 25_088 * 4_096 + 4_096 == 102_764_544
    assert layers["fc8"].output_shape == (1000,)
    assert layers["fc8"].receptive_field.rf.is_global


def test_block_networks_show_their_blocks() -> None:
    googlenet = {layer.name: layer for layer in describe("googlenet").layers}
    assert googlenet["inception3a"].kind == "block"
    assert googlenet["inception3a"].output_shape == (256, 28, 28)
    assert googlenet["inception5b"].output_shape == (1024, 7, 7)
    resnet = {layer.name: layer for layer in describe("resnet50").layers}
    assert resnet["layer1.0"].kind == "block" and resnet["layer4.2"].output_shape == (2048, 7, 7)
    densenet = {layer.name: layer for layer in describe("densenet121").layers}
    assert densenet["denseblock1"].output_shape == (64 + 6 * 32, 56, 56)
    assert densenet["transition3.pool"].output_shape == (512, 7, 7)
    assert densenet["denseblock4"].output_shape == (1024, 7, 7)
