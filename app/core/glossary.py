"""One Chinese word per concept, for every page, lesson and panel.

A reader who meets 滤波器 in a lesson and 过滤器 on the analyze page wonders whether they are two
things. Each term below names the one translation the interface uses and the variants it must not
use; tests/core/test_glossary.py checks the Chinese strings of the lessons, the playground, the
templates and every JavaScript module against it. Quotations of the seed tutorials (their section
titles, shown as citations) keep their own wording.
"""

from typing import NamedTuple


class Term(NamedTuple):
    """A concept: its English name, the one Chinese word for it, and variants not to use."""

    en: str
    zh: str
    avoid: tuple[str, ...] = ()


GLOSSARY: tuple[Term, ...] = (
    Term("filter", "滤波器", ("过滤器",)),
    Term("kernel (a filter's weights over one channel)", "卷积核"),
    Term("stride", "步幅", ("步长", "步距")),
    Term("jump (stride of a layer on the input image)", "累积步幅", ("跳步",)),
    Term("padding", "填充", ("填白", "补白")),
    Term("dilation", "膨胀率", ("空洞率", "扩张率")),
    Term("bias", "偏置", ("偏移",)),
    Term("feature map / activation map", "特征图", ("激活映射", "特征映射", "激活图")),
    Term("receptive field", "感受野", ("接受野", "感知野")),
    Term("skip connection", "跳跃连接", ("跳层连接", "跳连")),
    Term("residual block", "残差块", ("残差模块",)),
    Term("batch normalization", "批归一化", ("批量归一化", "批标准化")),
    Term("fully connected", "全连接"),
    Term("max pooling", "最大池化"),
    Term("average pooling", "平均池化"),
    Term("channel", "通道"),
    Term("depthwise convolution", "逐通道卷积", ("深度卷积",)),
    Term("convolution playground", "卷积游乐场", ("实验场", "练习场")),
    Term("architecture gallery", "经典结构画廊", ("模型库", "模型画廊")),
)


def avoided_terms() -> dict[str, Term]:
    """Each variant not to use → the term it should have been."""
    return {variant: term for term in GLOSSARY for variant in term.avoid}
