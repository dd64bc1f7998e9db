"""Copy the README's screenshots from the browser tests' output to docs/screenshots/, made small.

Run the browser tests first (`.venv/bin/pytest -m browser`), then this script. Each image is scaled
to at most 1000 px wide and stored as a 256-colour PNG, so the repository stays light.
"""

from PIL import Image

from app.config import REPO_ROOT

SOURCE = REPO_ROOT / "tests" / "browser" / "screenshots"
TARGET = REPO_ROOT / "docs" / "screenshots"
MAX_WIDTH = 1000

PUBLISHED = {
    "photo-overview": "analyze-photo.png",
    "unit-arithmetic": "unit-arithmetic.png",
    "digit-seven": "draw-digit.png",
    "digit-arithmetic": "digit-arithmetic.png",
    "chinese": "analyze-zh.png",
    "dark-large": "dark-large-text.png",
    "live-occlusion": "live-occlusion.png",
    "layer-math-stem": "im2col-folded-separable.png",
    "self-checks": "self-checks.png",
}


def publish(source_name: str, target_name: str) -> int:
    """Shrink and palette-quantize one screenshot; returns the bytes written."""
    image = Image.open(SOURCE / f"{source_name}.png").convert("RGB")
    if image.width > MAX_WIDTH:
        height = round(image.height * MAX_WIDTH / image.width)
        image = image.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    path = TARGET / target_name
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path.stat().st_size


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for source_name, target_name in PUBLISHED.items():
        size = publish(source_name, target_name)
        print(f"{target_name}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
