"""Lesson self-checks: questions about real layers, graded with the computed answer."""

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_output_size_question_is_graded_from_the_real_layer(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/v1/lessons/convolution/checks")).json()
    check = next(c for c in body["checks"] if c["model_id"] == "lenet5-mnist")
    assert check["id"] == "output-size:lenet5-mnist:conv2"
    assert "5×5" in check["question"]["en"] and "步幅" in check["question"]["zh"]
    card = (await client.get("/api/v1/models/lenet5-mnist")).json()
    shape = next(layer["output_shape"] for layer in card["layers"] if layer["name"] == "conv2")
    url = f"/api/v1/lessons/convolution/checks/{check['id']}"
    right = (await client.post(url, json={"answer": "×".join(map(str, shape))})).json()
    assert right["correct"] and right["expected"] == shape == [16, 10, 10]
    assert "⌊(14 − 5) / 1⌋ + 1 = 10" in right["solution"]["en"]
    wrong = (await client.post(url, json={"answer": "16 x 14 x 14"})).json()
    assert not wrong["correct"] and wrong["given"] == [16, 14, 14]


async def test_receptive_field_and_parameter_questions_match_the_model_card(
    client: httpx.AsyncClient,
) -> None:
    card = (await client.get("/api/v1/models/efficientnet-lite0")).json()
    layers = {layer["name"]: layer for layer in card["layers"]}
    for slug in ("architectures", "channels"):
        for check in (await client.get(f"/api/v1/lessons/{slug}/checks")).json()["checks"]:
            if check["model_id"] != "efficientnet-lite0":
                continue
            layer = layers[check["layer"]]
            kind = check["id"].split(":")[0]
            expected = (
                [int(s) for s in layer["receptive_field"]["size"]]
                if kind == "receptive-field"
                else [layer["params"]]
                if kind == "parameters"
                else layer["output_shape"]
            )
            graded = await client.post(
                f"/api/v1/lessons/{slug}/checks/{check['id']}",
                json={"answer": ", ".join(f"{n:,}" for n in expected)},
            )
            assert graded.json()["correct"], (check, graded.json())


async def test_stride_three_on_seven_by_seven(client: httpx.AsyncClient) -> None:
    url = "/api/v1/lessons/stride-and-padding/checks/stride-3-on-7x7"
    graded = (await client.post(url, json={"answer": "3"})).json()
    assert graded["correct"] and "2.33" in graded["solution"]["en"]
    assert (
        await client.post("/api/v1/lessons/nope/checks/x", json={"answer": "1"})
    ).status_code == 404
    missing = await client.post("/api/v1/lessons/convolution/checks/nope", json={"answer": "1"})
    assert missing.json()["error"]["code"] == "check_not_found"
