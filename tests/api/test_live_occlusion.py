"""Live occlusion answers equal a full forward of the occluded image (to 1e-4)."""

import httpx
import pytest
import torch

from app.core.analysis import top_predictions
from app.core.registry import ModelRegistry
from app.services.analyses import model_input
from tests.conftest import sample_photo

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("model_id", "photo", "square"),
    [
        ("efficientnet-lite0", "chelsea.png", (100, 90, 32)),
        ("efficientnet-lite0", "chelsea.png", (210, 200, 32)),  # cut at the bottom-right edge
        ("lenet5-mnist", "chelsea.png", (10, 12, 6)),
    ],
)
async def test_a_square_gives_the_full_forwards_predictions(
    client: httpx.AsyncClient, registry: ModelRegistry, model_id: str, photo: str, square: tuple
) -> None:
    analyzed = await client.post(
        f"/api/v1/models/{model_id}/analyze",
        files={"image": (photo, sample_photo(photo), "image/png")},
    )
    analysis = analyzed.json()
    top, left, size = square
    response = await client.get(
        f"/api/v1/analyses/{analysis['analysis_id']}/occlusion/live",
        params={"top": top, "left": left, "size": size},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    model = registry.get(model_id)
    record = (await client.get(f"/api/v1/analyses/{analysis['analysis_id']}")).json()
    assert body["class_index"] == record["predictions"][0]["index"]
    pre = model.spec.preprocess
    fill = (model.spec.occlusion_fill - torch.tensor(pre.mean)) / torch.tensor(pre.std)
    image = model_input(sample_photo(photo), 10**8, pre)
    clean = image.clone()
    image[:, top : top + size, left : left + size] = fill.reshape(-1, 1, 1)
    with torch.inference_mode():
        logits = model.module(image.unsqueeze(0))[0]
        clean_logits = model.module(clean.unsqueeze(0))[0]
    assert body["score"] == pytest.approx(float(logits[body["class_index"]]), abs=1e-4)
    assert body["clean_score"] == pytest.approx(float(clean_logits[body["class_index"]]), abs=1e-4)
    expected = top_predictions(logits, model.labels, 5)
    assert [p["index"] for p in body["predictions"]] == [p.index for p in expected]


async def test_a_square_outside_the_image_is_a_clear_422(client: httpx.AsyncClient) -> None:
    analyzed = await client.post(
        "/api/v1/models/lenet5-mnist/analyze",
        files={"image": ("digit.png", sample_photo("chelsea.png"), "image/png")},
    )
    response = await client.get(
        f"/api/v1/analyses/{analyzed.json()['analysis_id']}/occlusion/live",
        params={"top": 28, "left": 0, "size": 4},
    )
    assert response.status_code == 422
    assert "inside the 28×28 input" in response.json()["error"]["message"]
