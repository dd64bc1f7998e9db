"""Write the sample gallery under static/samples/: a few photos and held-out MNIST digits.

Photos are public-domain / CC0 scikit-image samples shrunk to at most 512 px; digits are the first
held-out test digit of each class (never seen in training), drawn 4× larger as white ink on black,
exactly as MNIST stores them. Run: `.venv/bin/python scripts/make_samples.py`.
"""

import json
from pathlib import Path

import numpy as np
import skimage
from PIL import Image

from app.config import REPO_ROOT, get_settings
from app.core.digits import load_digits

SAMPLES = REPO_ROOT / "static" / "samples"
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
PHOTO_SIDE = 512
DIGIT_SCALE = 4

PHOTOS = {
    "chelsea.png": ("chelsea", "Chelsea the cat", "小猫切尔西"),
    "coffee.png": ("coffee", "A cup of coffee", "一杯咖啡"),
    "astronaut.png": ("astronaut", "Astronaut Eileen Collins", "宇航员艾琳·柯林斯"),
    "rocket.jpg": ("rocket", "Falcon 9 launch", "猎鹰 9 号发射"),
}
"""source file → (sample name, English title, Chinese title)."""


def write_photo(source: str, stem: str) -> str:
    """Shrink one scikit-image photo to ≤ 512 px and save it as a JPEG; returns the file name."""
    image = Image.open(SKIMAGE_DATA / source).convert("RGB")
    image.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
    name = f"{stem}.jpg"
    image.save(SAMPLES / "photos" / name, format="JPEG", quality=85, optimize=True)
    return name


def write_digit(pixels: np.ndarray, digit: int) -> str:
    """Save a (28, 28) digit in [0, 1] as an upscaled grayscale PNG; returns the file name."""
    gray = np.rint(pixels * 255).astype(np.uint8)
    image = Image.fromarray(gray).resize(
        (28 * DIGIT_SCALE, 28 * DIGIT_SCALE), Image.Resampling.NEAREST
    )
    name = f"digit-{digit}.png"
    image.save(SAMPLES / "digits" / name, format="PNG", optimize=True)
    return name


def main() -> None:
    (SAMPLES / "photos").mkdir(parents=True, exist_ok=True)
    (SAMPLES / "digits").mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "url": f"/static/samples/photos/{write_photo(source, stem)}",
            "title": title,
            "model": "efficientnet-lite0",
            "i18n": {"zh": {"title": title_zh}},
        }
        for source, (stem, title, title_zh) in PHOTOS.items()
    ]
    split = load_digits(get_settings().mnist_dir)
    for digit in range(10):
        first_held_out = int(np.flatnonzero(split.test_labels == digit)[0])
        name = write_digit(split.test_images[first_held_out], digit)
        entries.append(
            {
                "url": f"/static/samples/digits/{name}",
                "title": f"digit {digit}",
                "model": "lenet5-mnist",
                "i18n": {"zh": {"title": f"数字 {digit}"}},
            }
        )
    text = json.dumps({"samples": entries}, indent=1, ensure_ascii=False)
    (SAMPLES / "samples.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {len(entries)} samples to {SAMPLES}")


if __name__ == "__main__":
    main()
