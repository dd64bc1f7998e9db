"""Self-checks: the questions that end each lesson, answered by the app from a real model.

Every question is asked about a real layer of a bundled (or any spec'd) model — its output size,
a unit's receptive field, its parameter count — or about the seed tutorials' own numbers (what
stride 3 does to a 7×7 input). The expected answer is computed, never typed in, and the worked
solution shows the arithmetic with the same numbers, in English and Chinese.
"""

import math
import re
from dataclasses import dataclass

from app.core.lessons.text import Text
from app.core.registry import LayerInfo, LoadedModel


@dataclass(frozen=True)
class SelfCheck:
    """One question: what to ask, the computed answer, and the worked solution."""

    id: str
    question: Text
    answer: tuple[int, ...]  # one number, or a shape / size pair
    solution: Text
    model_id: str | None = None
    layer: str | None = None


@dataclass(frozen=True)
class Grade:
    correct: bool
    expected: tuple[int, ...]
    given: tuple[int, ...] | None
    solution: Text


def parse_answer(text: str) -> tuple[int, ...] | None:
    """The integers in a student's answer: "16×56×56", "16, 56, 56", "35 x 35", "1,792" → ints.

    A thousands separator is read as part of a number when it is followed by exactly 3 digits.
    """
    cleaned = re.sub(r"(?<=\d)[,，'’ ](?=\d{3}(?!\d))", "", text.strip())
    numbers = re.findall(r"-?\d+", cleaned)
    return tuple(int(n) for n in numbers) if numbers else None


def grade(check: SelfCheck, text: str) -> Grade:
    given = parse_answer(text)
    expected = check.answer
    correct = given == expected or (
        given is not None
        and len(expected) == 2
        and expected[0] == expected[1]
        and given == expected[:1]
    )  # "35" is right for a 35×35 square
    return Grade(correct, expected, given, check.solution)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> float:
    return (size + 2 * padding - kernel) / stride + 1


def _output_size_check(
    model: LoadedModel, layer: LayerInfo, source_shape: tuple[int, ...]
) -> SelfCheck:
    module = model.module_of(layer.name)
    kernel, stride, padding = module.kernel_size[0], module.stride[0], module.padding[0]
    extra = layer.input.padding if layer.input else (0, 0, 0, 0)
    size = source_shape[1]
    padded = size + extra[0] + extra[2] + 2 * padding
    out = math.floor((padded - kernel) / stride) + 1
    shape = (module.out_channels, out, out)
    assert shape == tuple(layer.output_shape), (shape, layer.output_shape)
    pads = f"{size} + {extra[0] + extra[2] + 2 * padding}" if padded != size else f"{size}"
    formula = f"⌊({pads} − {kernel}) / {stride}⌋ + 1 = {out}"
    return SelfCheck(
        id=f"output-size:{model.spec.id}:{layer.name}",
        question=Text(
            f"{model.spec.name}: layer {layer.name} is a {kernel}×{kernel} convolution with "
            f"stride {stride} and {module.out_channels} filters on a {size}×{size} map. What is "
            "its output shape (channels × height × width)?",
            f"{model.spec.text('name', 'zh')}：{layer.name} 层是 {kernel}×{kernel} 卷积，步幅 "
            f"{stride}，{module.out_channels} 个滤波器，输入特征图 {size}×{size}。它的输出形状"
            "（通道 × 高 × 宽）是多少？",
        ),
        answer=shape,
        solution=Text(
            f"Output side = ⌊(input + padding − kernel) / stride⌋ + 1: {formula}; one channel "
            f"per filter: {shape[0]}×{out}×{out}.",
            f"输出边长 = ⌊(输入 + 填充 − 卷积核) / 步幅⌋ + 1：{formula}；每个滤波器一个通道："
            f"{shape[0]}×{out}×{out}。",
        ),
        model_id=model.spec.id,
        layer=layer.name,
    )


def _receptive_field_check(model: LoadedModel, layer: LayerInfo) -> SelfCheck:
    rf = layer.receptive_field.rf
    size = tuple(int(s) for s in rf.size)
    return SelfCheck(
        id=f"receptive-field:{model.spec.id}:{layer.name}",
        question=Text(
            f"{model.spec.name}: how many input pixels (height × width) does one unit of "
            f"{layer.name} see?",
            f"{model.spec.text('name', 'zh')}：{layer.name} 的一个单元能看到输入上多少像素"
            "（高 × 宽）？",
        ),
        answer=size,
        solution=Text(
            f"Each layer adds (kernel − 1) × jump pixels, where jump is the product of the "
            f"strides before it: for {layer.name} that gives {size[0]}×{size[1]} (jump "
            f"{int(rf.jump[0])}). Hover a unit of {layer.name} to see its box on the input.",
            f"每一层增加 (卷积核 − 1) × 跳距 个像素，跳距是它之前各层步幅的乘积：{layer.name} "
            f"得到 {size[0]}×{size[1]}（跳距 {int(rf.jump[0])}）。把鼠标移到 {layer.name} 的一个"
            "单元上，看它在输入上的方框。",
        ),
        model_id=model.spec.id,
        layer=layer.name,
    )


def _parameter_check(model: LoadedModel, layer: LayerInfo) -> SelfCheck:
    module = model.module_of(layer.name)
    weights = module.weight.numel()
    biases = module.bias.numel() if module.bias is not None else 0
    if layer.type == "Conv2d":
        kh, kw = module.kernel_size
        per = module.in_channels // module.groups
        terms = f"{module.out_channels} × {per} × {kh} × {kw} = {weights:,}"
    else:
        terms = f"{module.out_features} × {module.in_features} = {weights:,}"
    assert weights + biases == layer.params
    return SelfCheck(
        id=f"parameters:{model.spec.id}:{layer.name}",
        question=Text(
            f"{model.spec.name}: how many parameters (weights and biases) does layer "
            f"{layer.name} ({layer.type}) have?",
            f"{model.spec.text('name', 'zh')}：{layer.name} 层（{layer.type}）有多少个参数"
            "（权重加偏置）？",
        ),
        answer=(layer.params,),
        solution=Text(
            f"Weights: {terms}; biases: {biases}; total {layer.params:,}.",
            f"权重：{terms}；偏置：{biases}；共 {layer.params:,}。",
        ),
        model_id=model.spec.id,
        layer=layer.name,
    )


def _stride_check() -> SelfCheck:
    """The seed's own example: a 3×3 filter with stride 3 on a 7×7 input does not fit."""
    exact = _conv_out(7, 3, 3, 0)
    assert exact != int(exact)
    padded = int(_conv_out(7, 3, 3, 1))
    return SelfCheck(
        id="stride-3-on-7x7",
        question=Text(
            "A 3×3 filter slides with stride 3 over a 7×7 input. With one pixel of zero "
            "padding on every side, what is the output side length?",
            "3×3 滤波器以步幅 3 在 7×7 输入上滑动。四周各补一圈 0 之后，输出边长是多少？",
        ),
        answer=(padded,),
        solution=Text(
            f"Without padding (7 − 3) / 3 + 1 = {exact:.2f} is not a whole number: the filter "
            f"does not fit. With padding 1: (7 + 2 − 3) / 3 + 1 = {padded}.",
            f"不补零时 (7 − 3) / 3 + 1 = {exact:.2f} 不是整数：滤波器放不下。补一圈 0："
            f"(7 + 2 − 3) / 3 + 1 = {padded}。",
        ),
    )


def _convs(model: LoadedModel) -> list[LayerInfo]:
    """Conv layers whose output size the formula gives from one kernel, stride and padding."""
    found = []
    for layer in model.layers:
        module = model.module_of(layer.name)
        if layer.type != "Conv2d" or layer.input is None or isinstance(module.padding, str):
            continue
        if len(set(module.kernel_size)) == len(set(module.stride)) == len(set(module.padding)) == 1:
            found.append(layer)
    return found


def checks_for(slug: str, models: list[LoadedModel]) -> list[SelfCheck]:
    """The self-checks of one lesson, computed from the models served (photo model preferred)."""
    photo = next((m for m in models if m.spec.input_kind == "photo"), None)
    digit = next((m for m in models if m.spec.input_kind == "digit"), None)
    chosen = [m for m in (digit, photo) if m is not None]
    found: list[SelfCheck] = []
    for model in chosen:
        convs = _convs(model)
        if not convs:
            continue
        shapes = {layer.name: layer.output_shape for layer in model.layers}
        shapes["input"] = model.input_shape
        sized = [c for c in convs if c.input.source in shapes and c.output_shape[1] > 1]
        if slug in ("convolution", "stride-and-padding", "channels") and sized:
            pick = sized[min(len(sized) - 1, 1)]
            found.append(_output_size_check(model, pick, shapes[pick.input.source]))
        if slug in ("relu-and-pooling", "architectures"):
            spatial = [
                layer
                for layer in model.layers
                if layer.receptive_field.rf and not layer.receptive_field.rf.is_global
            ]
            if spatial:
                found.append(_receptive_field_check(model, spatial[len(spatial) // 2]))
        if slug in ("why-convolution", "channels", "im2col", "architectures"):
            found.append(_parameter_check(model, convs[min(len(convs) - 1, 1)]))
    if slug == "stride-and-padding":
        found.append(_stride_check())
    return found
