"""Every panel of one analysis written as files (PNG + JSON): for slides, reports and notebooks.

The files hold what the API serves for the same image: the model input, the predictions, each
layer's feature-map atlas with its layout and per-tile ranges, each conv layer's filter atlas, the
receptive-field table, and Grad-CAM when the attribution module is present.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.core.analysis import AnalysisResult, analyze
from app.core.attribution.colormap import overlay_png
from app.core.attribution.gradcam import default_cam_layer, grad_cam
from app.core.encode import Atlas, feature_map_atlas, png_bytes
from app.core.filters import conv_modules, filter_bank
from app.core.preprocess import denormalize
from app.core.receptive_field import receptive_field_json
from app.core.registry import LayerInfo, LoadedModel
from app.services.analyses import model_input
from app.services.records import make_analysis_id

Step = tuple[str, Callable[[], None]]
Progress = Callable[[list[Step]], Iterable[Step]]
"""Wraps the list of steps (e.g. in tqdm) and yields them back in order."""


@dataclass
class ExportSummary:
    """Where the files went and what they are (also written as `index.json`)."""

    out_dir: Path
    model_id: str
    analysis_id: str
    files: list[str] = field(default_factory=list)


class ExportWriter:
    """Writes files under one folder and remembers their relative paths, in order."""

    def __init__(self, summary: ExportSummary) -> None:
        self.summary = summary

    def bytes(self, relative: str, data: bytes) -> None:
        path = self.summary.out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.summary.files.append(relative)

    def json(self, relative: str, value: Any) -> None:
        self.bytes(relative, (json.dumps(value, indent=2) + "\n").encode())


def atlas_json(atlas: Atlas) -> dict[str, Any]:
    return {
        "scaling": atlas.scaling,
        "minimums": atlas.minimums,
        "maximums": atlas.maximums,
        "atlas": atlas.layout.to_json(),
    }


def layer_json(layer: LayerInfo) -> dict[str, Any]:
    field_ = layer.receptive_field
    return {
        "name": layer.name,
        "type": layer.type,
        "kind": layer.kind,
        "output_shape": list(layer.output_shape),
        "params": layer.params,
        "receptive_field": None if field_.rf is None else receptive_field_json(field_.rf),
        "receptive_field_diagnostic": field_.diagnostic,
    }


def grad_cam_files(
    writer: ExportWriter, model: LoadedModel, inputs: torch.Tensor, class_index: int
) -> None:
    """`gradcam.png` (overlay) + `gradcam.json` for the default Grad-CAM layer."""
    layer = default_cam_layer(model)
    if layer is None:
        return
    cam = grad_cam(model.module, inputs, layer, class_index)
    writer.bytes("gradcam.png", overlay_png(cam.upsampled.numpy()))
    writer.json(
        "gradcam.json",
        {
            "layer": cam.layer,
            "class_index": cam.class_index,
            "label": model.labels[cam.class_index],
            "score": cam.score,
            "cam": cam.cam.tolist(),
        },
    )


def export_steps(
    writer: ExportWriter, model: LoadedModel, inputs: torch.Tensor, result: AnalysisResult
) -> Iterator[Step]:
    """(description, action) pairs, so the caller can show progress over them."""
    summary = writer.summary
    yield (
        "input",
        lambda: writer.bytes("input.png", png_bytes(denormalize(inputs, model.spec.preprocess))),
    )
    yield (
        "predictions",
        lambda: writer.json(
            "predictions.json",
            {
                "model_id": model.spec.id,
                "analysis_id": summary.analysis_id,
                "predictions": [asdict(p) for p in result.predictions],
                "logits": result.logits,
            },
        ),
    )
    yield (
        "receptive fields",
        lambda: writer.json(
            "receptive-fields.json",
            {
                "input_shape": list(model.input_shape),
                "layers": [layer_json(layer) for layer in model.layers],
            },
        ),
    )
    stats = {stat.name: stat for stat in result.layers}
    for layer in model.layers:

        def feature_maps(layer: LayerInfo = layer) -> None:
            atlas = feature_map_atlas(result.activations[layer.name].float().numpy())
            writer.bytes(f"feature-maps/{layer.name}.png", atlas.png)
            writer.json(
                f"feature-maps/{layer.name}.json",
                {**layer_json(layer), **asdict(stats[layer.name]), **atlas_json(atlas)},
            )

        yield f"feature maps {layer.name}", feature_maps
    for name, conv in conv_modules(model.module).items():

        def filters(name: str = name, conv: torch.nn.Conv2d = conv) -> None:
            bank = filter_bank(name, conv)
            writer.bytes(f"filters/{name}.png", bank.atlas.png)
            writer.json(
                f"filters/{name}.json",
                {"layer": name, "shape": list(bank.weight.shape), **atlas_json(bank.atlas)},
            )

        yield f"filters {name}", filters
    top = result.predictions[0].index
    yield "grad-cam", lambda: grad_cam_files(writer, model, inputs, top)


def export_analysis(
    model: LoadedModel,
    data: bytes,
    out_dir: Path,
    *,
    max_image_pixels: int,
    progress: Progress = lambda steps: steps,
) -> ExportSummary:
    """Analyze `data` and write every panel under `out_dir` (created if missing).

    Raises:
        ImageError: the bytes are not an image the server would accept.
    """
    inputs = model_input(data, max_image_pixels, model.spec.preprocess)
    result = analyze(model, inputs, keep=[layer.name for layer in model.layers])
    analysis_id = make_analysis_id(model.spec.id, hashlib.sha256(data).hexdigest())
    summary = ExportSummary(out_dir, model.spec.id, analysis_id)
    writer = ExportWriter(summary)
    for _description, action in progress(list(export_steps(writer, model, inputs, result))):
        action()
    writer.json(
        "index.json",
        {"model_id": summary.model_id, "analysis_id": summary.analysis_id, "files": summary.files},
    )
    return summary
