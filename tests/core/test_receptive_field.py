"""Receptive-field geometry: every number here was worked out by hand, not by the code under test.

Notation in comments: a unit's window on the previous layer, then that window mapped to input
pixels, per axis. "rows a..b" are inclusive input-pixel rows.
"""

from dataclasses import replace

import pytest
from torch import Tensor, nn

from app.core.receptive_field import (
    INPUT_RECEPTIVE_FIELD,
    Box,
    ReceptiveField,
    clip_box,
    compute_receptive_fields,
    conv_receptive_field,
    global_receptive_field,
    pad_receptive_field,
    pool_receptive_field,
    receptive_field_box,
    receptive_field_json,
    union_receptive_field,
)
from app.core.receptive_field.geometry import covering_receptive_field, narrow_receptive_field


def box_rows(rf: ReceptiveField, y: int, x: int = 0) -> tuple[int, int]:
    box = receptive_field_box(rf, y, x, (100, 100))
    return box.top, box.bottom


def test_conv_3x3_same_padding_is_centred_on_its_pixel() -> None:
    rf = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3, stride=1, padding=1)
    assert rf == ReceptiveField(size=(3, 3), jump=(1, 1), start=(0.0, 0.0))
    assert box_rows(rf, 0) == (-1, 1)  # pixels -1, 0, 1: the padded row above plus two real ones
    assert box_rows(rf, 5) == (4, 6)


def test_dilation_spreads_the_taps() -> None:
    # 3x3 dilation 2 reads input pixels y-2, y, y+2 (padding 2): it spans 5 rows.
    rf = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3, padding=2, dilation=2)
    assert rf == ReceptiveField(size=(5, 5), jump=(1, 1), start=(0.0, 0.0))
    # After a stride-2 layer (jump 2), dilation 2 reads units 4 apart = 8 input pixels per tap.
    strided = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=2, stride=2)  # unit u: 2u..2u+1
    rf = conv_receptive_field(strided, kernel=3, dilation=2)  # units u, u+2, u+4: rows 2u..2u+9
    assert rf.size == (10, 10) and rf.jump == (2, 2)
    assert box_rows(rf, 0) == (0, 9)
    assert box_rows(rf, 3) == (6, 15)


def test_stride_3() -> None:
    # kernel 3 stride 3: unit u reads rows 3u..3u+2; then kernel 2: units u, u+1 = rows 3u..3u+5.
    first = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3, stride=3)
    assert first == ReceptiveField(size=(3, 3), jump=(3, 3), start=(1.0, 1.0))
    second = conv_receptive_field(first, kernel=2)
    assert second == ReceptiveField(size=(6, 6), jump=(3, 3), start=(2.5, 2.5))
    assert box_rows(second, 4) == (12, 17)


def test_per_axis_kernel_stride_padding() -> None:
    # Height: k5 s2 p2 -> unit u reads 2u-2..2u+2. Width: k1 s1 p0 -> just column x.
    rf = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=(5, 1), stride=(2, 1), padding=(2, 0))
    assert rf == ReceptiveField(size=(5, 1), jump=(2, 1), start=(0.0, 0.0))
    assert receptive_field_box(rf, 3, 7, (100, 100)) == Box(top=4, left=7, bottom=8, right=7)


def test_asymmetric_zero_padding_shifts_only_by_the_leading_pad() -> None:
    # TF "SAME" for a stride-2 3x3 conv on an even input: pad 0 before, 1 after.
    padded = pad_receptive_field(INPUT_RECEPTIVE_FIELD, top=0, left=1)
    assert padded.start == (0.0, -1.0)  # padded column 0 is input column -1
    rf = conv_receptive_field(padded, kernel=3, stride=2)
    # Unit (y, x) reads padded rows 2y..2y+2 = input rows 2y..2y+2, columns 2x-1..2x+1.
    assert receptive_field_box(rf, 2, 2, (100, 100)) == Box(top=4, left=3, bottom=6, right=5)
    cropped = pad_receptive_field(INPUT_RECEPTIVE_FIELD, top=-2, left=0)  # x[:, :, 2:, :]
    assert box_rows(cropped, 0) == (2, 2)


def test_pool_stride_defaults_to_kernel_and_ceil_mode_changes_nothing() -> None:
    rf = pool_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3)
    assert rf == conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3, stride=3)
    # MaxPool2d(3, stride=2, padding=1, ceil_mode=True) on 8 rows: 5 units, the last one's
    # window is rows 7..9 (8 and 9 lie past the image); the formula still holds for it.
    rf = pool_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3, stride=2, padding=1)
    assert box_rows(rf, 4) == (7, 9)
    assert clip_box(receptive_field_box(rf, 4, 0, (8, 8)), 8, 8).height == 1


def test_union_of_branches_with_different_kernels_and_centres() -> None:
    narrow = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3, padding=1)  # rows y-1..y+1
    shifted = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=5, padding=0)  # rows y..y+4
    rf = union_receptive_field(narrow, shifted)  # rows y-1..y+4
    assert rf == ReceptiveField(size=(6, 6), jump=(1, 1), start=(1.5, 1.5))
    assert box_rows(rf, 10) == (9, 14)


def test_union_rejects_disagreeing_jumps_and_a_global_branch_gates() -> None:
    strided = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=2, stride=2)
    with pytest.raises(ValueError, match="jump"):
        union_receptive_field(INPUT_RECEPTIVE_FIELD, strided)
    whole = global_receptive_field(28, 30)
    # x * sigmoid(fc(mean(x))): the unit keeps x's box, and is scaled by what the gate saw.
    assert union_receptive_field(strided, whole) == replace(strided, gated=True)
    assert union_receptive_field(whole, strided, whole).gated
    rows_0_to_26 = ReceptiveField((27, 30), (0, 0), (13.0, 14.5), True, seen=Box(0, 0, 26, 29))
    assert union_receptive_field(rows_0_to_26, whole) == whole  # global branches: what all saw


def test_unpadded_stride_edges_leave_the_last_row_unseen() -> None:
    # 3x3 stride 2, no padding, on 50 rows: units 0..23 read rows 2u..2u+2, so rows 0..48.
    stem = conv_receptive_field(INPUT_RECEPTIVE_FIELD, kernel=3, stride=2)
    stem = narrow_receptive_field(stem, (24, 24), (50, 50))
    assert stem.seen == Box(0, 0, 48, 48)
    # MaxPool 3/2 ceil_mode: 12 units; unit 11 reads stem units 22, 23 (24 does not exist):
    # rows 44..48, where the formula alone says 44..50 and clipping to the image 44..49.
    pool = narrow_receptive_field(pool_receptive_field(stem, 3, 2), (12, 12), (50, 50))
    assert (pool.size, pool.jump, pool.seen) == ((7, 7), (4, 4), Box(0, 0, 48, 48))
    assert receptive_field_box(pool, 11, 0, (50, 50)) == Box(44, 0, 48, 6)
    # A global pool after it sees the 49 rows and columns its units see, centred on pixel 24.
    expected = ReceptiveField((49, 49), (0, 0), (24.0, 24.0), True, seen=Box(0, 0, 48, 48))
    assert covering_receptive_field(pool, (50, 50)) == expected
    assert receptive_field_box(expected, 0, 0, (50, 50)) == Box(0, 0, 48, 48)


def test_a_crop_cuts_boxes_at_the_top_but_padding_stays_visible_at_the_bottom() -> None:
    # x[:, :, 2:] of a 10x10 image: unit y is row y + 2, rows 2..9 are seen.
    cropped = narrow_receptive_field(
        pad_receptive_field(INPUT_RECEPTIVE_FIELD, -2, 0), (8, 10), (10, 10)
    )
    assert cropped.seen == Box(2, 0, 9, 9)
    conv = narrow_receptive_field(conv_receptive_field(cropped, 3, padding=1), (8, 10), (10, 10))
    # Unit 0 reads a padded row (not row 1: the crop dropped it) and rows 2, 3. Unit 7 reads rows
    # 8, 9 and the zero padding below the image, shown past the border as for any padded conv.
    assert receptive_field_box(conv, 0, 0, (10, 10)) == Box(2, -1, 3, 1)
    assert receptive_field_box(conv, 7, 0, (10, 10)) == Box(8, -1, 10, 1)
    assert narrow_receptive_field(INPUT_RECEPTIVE_FIELD, (10, 10), (10, 10)).seen is None


def test_global_field_stays_global_and_covers_the_image() -> None:
    whole = global_receptive_field(28, 30)
    assert whole == ReceptiveField(size=(28, 30), jump=(0, 0), start=(13.5, 14.5), is_global=True)
    after_conv = conv_receptive_field(whole, kernel=3, stride=2, padding=1)
    assert after_conv == whole
    assert receptive_field_box(after_conv, 3, 4, (28, 30)) == Box(0, 0, 27, 29)


def test_clip_box_and_box_sizes() -> None:
    box = Box(top=-2, left=5, bottom=13, right=31)
    assert (box.height, box.width) == (16, 27)
    assert clip_box(box, 28, 28) == Box(top=0, left=5, bottom=13, right=27)
    outside = clip_box(Box(top=30, left=0, bottom=33, right=3), 28, 28)
    assert (outside.height, outside.width) == (0, 4)


def test_receptive_field_json() -> None:
    rf = ReceptiveField(size=(14, 14), jump=(2, 2), start=(4.5, 4.5))
    assert receptive_field_json(rf) == {
        "size": [14, 14],
        "jump": [2, 2],
        "start": [4.5, 4.5],
        "is_global": False,
        "gated": False,
        "seen": None,
    }
    marked = receptive_field_json(replace(rf, gated=True, seen=Box(0, 1, 48, 49)))
    assert (marked["gated"], marked["seen"]) == (True, [0, 1, 48, 49])


class LeNet5(nn.Module):
    """LeNet-5 as in the brief, defined here so the test does not depend on the app's copy."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(400, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


def square(size: int, jump: int, start: float) -> ReceptiveField:
    return ReceptiveField((size, size), (jump, jump), (start, start))


def test_lenet5_layer_by_layer() -> None:
    fields = compute_receptive_fields(LeNet5(), (1, 28, 28))
    # conv1 unit y: rows y-2..y+2 (pad 2).    pool1 unit u: conv1 rows 2u, 2u+1 -> 2u-2..2u+3.
    # conv2 unit v: pool1 v..v+4 -> 2v-2..2v+11.    pool2 unit w: conv2 2w, 2w+1 -> 4w-2..4w+13.
    expected = {
        "conv1": square(5, 1, 0.0),
        "relu1": square(5, 1, 0.0),
        "pool1": square(6, 2, 0.5),
        "conv2": square(14, 2, 4.5),
        "relu2": square(14, 2, 4.5),
        "pool2": square(16, 4, 5.5),
        "flatten": square(16, 4, 5.5),  # each flattened element still comes from one pool2 unit
    }
    assert {name: fields[name].rf for name in expected} == expected
    for name in ("fc1", "relu3", "fc2", "relu4", "fc3", ""):
        assert fields[name].rf == global_receptive_field(28, 28), name
    assert all(field.diagnostic is None for field in fields.values())


def test_lenet5_unit_boxes() -> None:
    fields = compute_receptive_fields(LeNet5(), (1, 28, 28))
    # conv2 unit (3, 7) reads pool1 rows 3..7, cols 7..11 = conv1 rows 6..15, cols 14..23
    # = input rows 4..17, cols 12..25.
    conv2 = fields["conv2"].rf
    assert receptive_field_box(conv2, 3, 7, (28, 28)) == Box(top=4, left=12, bottom=17, right=25)
    # pool2 unit (0, 4): rows -2..13 (two padded rows of conv1), cols 14..29 (past column 27).
    box = receptive_field_box(fields["pool2"].rf, 0, 4, (28, 28))
    assert box == Box(top=-2, left=14, bottom=13, right=29)
    assert clip_box(box, 28, 28) == Box(top=0, left=14, bottom=13, right=27)
    assert receptive_field_box(fields["fc1"].rf, 0, 0, (28, 28)) == Box(0, 0, 27, 27)
