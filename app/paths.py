"""Where convlens reads its bundled files and keeps its cache, in a checkout or an installed wheel.

static/, templates/ and models/ live at the repository's top level; a wheel installs them inside
the package as app/assets/<name> (setup.py). A checkout, and an editable install (which imports
app/ from the checkout), has no app/assets/, so it reads the top-level folders themselves and
edits show without reinstalling. Plain directories rather than `importlib.resources` traversables,
because Starlette's StaticFiles and Jinja's loader need real folders.
"""

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_INSTALLED_ASSETS = _PACKAGE_DIR / "assets"
_INSTALLED = _INSTALLED_ASSETS.is_dir()
_ASSETS = _INSTALLED_ASSETS if _INSTALLED else _PACKAGE_DIR.parent

STATIC_DIR = _ASSETS / "static"
TEMPLATES_DIR = _ASSETS / "templates"
MODELS_DIR = _ASSETS / "models"


def _user_cache_dir() -> Path:
    """An installed app must not write into site-packages: the XDG cache folder instead."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convlens"


# The checkout's .cache (where `make test-deps` puts the MNIST digits), else the user's cache.
CACHE_DIR = _user_cache_dir() if _INSTALLED else _PACKAGE_DIR.parent / ".cache"


def _user_data_dir() -> Path:
    """Where an installed app keeps what it promised to keep (analysis records)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "convlens"


# Durable state (CONVLENS_DATA_DIR overrides): the checkout's .data, else the user's data folder.
DATA_DIR = _user_data_dir() if _INSTALLED else _PACKAGE_DIR.parent / ".data"
