"""Playground API: torch's numbers with every step, and 422s that explain the formula."""

import httpx
import pytest

from app.core.lessons.presets import PRESETS

pytestmark = pytest.mark.anyio


async def test_conv_returns_output_and_every_step(client: httpx.AsyncClient) -> None:
    body = {
        "input": [[[0, 1, 2], [3, 4, 5], [6, 7, 8]]],
        "kernels": [[[[1, 2], [3, 4]]]],
        "bias": [10],
    }
    response = await client.post("/api/v1/playground/conv", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["output"] == [[[37, 47], [67, 77]]]
    assert result["input_shape"] == [1, 3, 3] and result["output_shape"] == [1, 2, 2]
    assert (result["kernel"], result["stride"], result["padding"]) == ([2, 2], [1, 1], [0, 0])
    assert result["total_steps"] == len(result["steps"]) == 4
    first = result["steps"][0]
    assert first["window"] == [[[0, 1], [3, 4]]] and first["products"] == [[[0, 2], [9, 16]]]
    assert (first["total"], first["bias"], first["value"], first["origin"]) == (27, 10, 37, [0, 0])
    assert [fit["output"] for fit in result["fits"]] == [2, 2]
    assert result["fits"][0]["formula"] == "O = (3 − 2 + 2·0)/1 + 1 = 1/1 + 1 = 2"


async def test_seven_by_seven_stride_three_is_a_422_with_the_formula(
    client: httpx.AsyncClient,
) -> None:
    body = {"input": [[[0] * 7] * 7], "kernels": [[[[1] * 3] * 3]], "stride": 3}
    response = await client.post("/api/v1/playground/conv", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "does_not_fit"
    assert "O = (7 − 3 + 2·0)/3 + 1 = 4/3 + 1 = 2.33…" in error["message"]
    floored = await client.post("/api/v1/playground/conv", json={**body, "fit": "floor"})
    assert floored.json()["output_shape"] == [1, 2, 2]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"input": [[[0, 1], [2]]], "kernels": [[[[1]]]]}, "invalid_input"),
        ({"input": [[[0, 1]], [[2, 3], [4, 5]]], "kernels": [[[[1]], [[1]]]]}, "invalid_input"),
        ({"input": [[[0]]], "kernels": [[[[1]]], [[[1, 1]]]]}, "invalid_input"),
        ({"input": [[[0, 0]]], "kernels": [[[[1]], [[1]]]]}, "invalid_kernels"),
        ({"input": [[[0]]], "kernels": [[[[1]]]], "bias": [1, 2]}, "invalid_kernels"),
        ({"input": [[[0] * 3]], "kernels": [[[[1, 1]]]], "stride": 2}, "does_not_fit"),
        ({"input": [[[0]]], "kernels": [[[[1, 1]]]], "fit": "floor"}, "does_not_fit"),
        ({"input": [[[0]]], "kernels": [[[[1]]]], "padding": "middle"}, "invalid_request"),
        ({"input": [[[0] * 4] * 4], "kernels": [[[[1, 1]] * 2]], "padding": "same"},
         "invalid_parameter"),
        ({"input": [[[0] * 32] * 32] * 3, "kernels": [[[[1] * 3] * 3] * 3] * 5, "padding": 1},
         "too_many_steps"),
    ],
)  # fmt: skip
async def test_refusals_are_422_with_stable_codes(
    client: httpx.AsyncClient, body: dict, code: str
) -> None:
    response = await client.post("/api/v1/playground/conv", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"input": [[[False]]]}, "input.0.0.0"),  # the issue's body: a boolean is not a number
        ({"input": [[["1"]]]}, "input.0.0.0"),
        ({"input": [[[1e6 + 1]]]}, "input.0.0.0"),
        ({"input": []}, "input"),
        ({"input": [[]]}, "input.0"),
        ({"input": [[[]]]}, "input.0.0"),
        ({"input": [[[0] * 33]]}, "input.0.0"),
        ({"input": [[[0]]] * 4}, "input"),
        ({"kernels": [[[[1] * 12]]]}, "kernels.0.0.0"),
        ({"kernels": [[[[1]]]] * 9}, "kernels"),
        ({"bias": []}, "bias"),
        ({"stride": 0}, "stride"),
        ({"stride": True}, "stride"),
        ({"stride": "2"}, "stride"),
        ({"stride": 1.5}, "stride"),
        ({"stride": [1, 2, 3]}, "stride"),
        ({"padding": 12}, "padding"),
        ({"dilation": 33}, "dilation"),
        ({"kernel": [[[[1]]]]}, "kernel"),  # an unknown field, here a misspelt one
    ],
)
async def test_what_the_schema_states_is_refused_as_invalid_request(
    client: httpx.AsyncClient, change: dict, where: str
) -> None:
    body = {"input": [[[0, 1], [2, 3]]], "kernels": [[[[1]]]], **change}
    response = await client.post("/api/v1/playground/conv", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith((f"{where}:", f"{where}."))  # a union names its branch


async def test_a_whole_float_is_an_integer_as_json_schema_says(client: httpx.AsyncClient) -> None:
    body = {"input": [[[0, 1, 2, 3, 4]]], "kernels": [[[[1.0]]]], "stride": [1.0, 2.0]}
    response = await client.post("/api/v1/playground/conv", json=body)
    assert response.status_code == 200, response.text
    assert (response.json()["stride"], response.json()["output"]) == ([1, 2], [[[0, 2, 4]]])


async def test_the_schema_states_every_bound_of_a_body(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    conv = schemas["ConvRequest"]
    assert conv["additionalProperties"] is False and conv["required"] == ["input", "kernels"]
    levels, node = [], conv["properties"]["input"]
    while node["type"] == "array":
        levels.append((node["minItems"], node["maxItems"]))
        node = node["items"]
    assert levels == [(1, 3), (1, 32), (1, 32)]
    assert node == {"type": "number", "minimum": -1e6, "maximum": 1e6}
    levels, node = [], conv["properties"]["kernels"]
    while node["type"] == "array":
        levels.append((node["minItems"], node["maxItems"]))
        node = node["items"]
    assert levels == [(1, 8), (1, 3), (1, 11), (1, 11)]
    stride = conv["properties"]["stride"]["oneOf"]
    assert stride[0] == {"type": "integer", "minimum": 1, "maximum": 32}
    assert stride[1]["prefixItems"] == [stride[0], stride[0]]
    assert (stride[1]["minItems"], stride[1]["maxItems"]) == (2, 2)
    pool = schemas["PoolRequest"]["properties"]
    assert pool["kernel_size"]["oneOf"][0] == {"type": "integer", "minimum": 1, "maximum": 11}
    assert pool["padding"]["oneOf"][0] == {"type": "integer", "minimum": 0, "maximum": 11}
    names = conv["properties"]["padding"]["oneOf"][2]
    assert names == {"type": "string", "enum": ["valid", "same"]}


async def test_every_preset_is_a_body_the_api_takes(client: httpx.AsyncClient) -> None:
    """The presets' requests pass the strict schema and give what the preset page says."""
    for preset in PRESETS:
        detail = (await client.get(f"/api/v1/lessons/presets/{preset.slug}")).json()
        response = await client.post(f"/api/v1/playground/{preset.operation}", json=preset.request)
        if detail["refused"] is None:
            assert response.status_code == 200, (preset.slug, response.text)
            shape = (
                response.json()["shapes"]["output"]
                if preset.operation == "im2col"
                else (response.json()["output_shape"])
            )
            assert shape == detail["output_shape"], preset.slug
        else:
            assert response.status_code == 422, preset.slug
            assert response.json()["error"]["code"] == detail["refused"]["code"] == "does_not_fit"


async def test_pool_relu_and_im2col(client: httpx.AsyncClient) -> None:
    grid = [[[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]]
    maximum = (await client.post("/api/v1/playground/pool", json={"input": grid})).json()
    assert maximum["output"] == [[[6, 8], [3, 4]]] and maximum["operation"] == "max_pool"
    assert maximum["steps"][0]["argmax"] == [1, 1]
    average = await client.post("/api/v1/playground/pool", json={"input": grid, "kind": "avg"})
    assert average.json()["output"] == [[[3.25, 5.25], [2, 2]]]
    relu = (await client.post("/api/v1/playground/relu", json={"input": [[[-1, 2]]]})).json()
    assert relu["output"] == [[[0, 2]]] and relu["total_steps"] == 2
    body = {"input": [[[0, 1, 2], [3, 4, 5], [6, 7, 8]]], "kernels": [[[[1, 2], [3, 4]]]]}
    im2col = (await client.post("/api/v1/playground/im2col", json=body)).json()
    assert im2col["shapes"] == {"W_row": [1, 4], "X_col": [4, 4], "product": [1, 4],
                                "output": [1, 2, 2]}  # fmt: skip
    assert im2col["columns"][0] == [0, 1, 3, 4]  # the top-left of each window
    assert im2col["output"] == im2col["conv_output"] == [[[27, 37], [57, 67]]]
    assert im2col["max_abs_difference"] == 0


async def test_output_size_and_limits(client: httpx.AsyncClient) -> None:
    params = {"input": 32, "kernel": 5, "padding": 2}
    fit = (await client.get("/api/v1/playground/output-size", params=params)).json()
    assert (fit["output"], fit["fits"], fit["span"]) == (32, True, 31)
    assert fit["explanation"]["zh"].startswith("宽：O = (32 − 5 + 2·2)/1 + 1")
    bad = await client.get("/api/v1/playground/output-size", params={"input": 0, "kernel": 3})
    assert bad.status_code == 422
    limits = (await client.get("/api/v1/playground/limits")).json()
    assert limits == {
        "max_channels": 3, "max_side": 32, "max_kernels": 8, "max_kernel_side": 11,
        "max_steps": 4096, "max_step_values": 250_000, "max_value": 1_000_000,
    }  # fmt: skip


async def test_playground_page_lists_the_presets(client: httpx.AsyncClient) -> None:
    page = await client.get("/playground")
    assert page.status_code == 200
    assert 'value="curve-detector"' in page.text
    assert '<script type="module" src="/static/js/lessons/playground-page.js">' in page.text
    assert "<script>" not in page.text  # CSP: module files only
