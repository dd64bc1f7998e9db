"""Packages for setuptools: app/, and static/, templates/, models/ installed as app/assets/<name>.

The three folders stay at the repository's top level; a wheel carries them inside the package,
where an installed `convlens` finds them (app/paths.py). pyproject.toml cannot say this alone:
its `packages.find` ignores `package-dir` mappings, and an explicit package list would silently
leave out every subpackage added later. Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

ASSETS = {
    "static": ["**/*"],
    "templates": ["**/*"],
    # Only the kinds of file the repository keeps here (specs, small weights and their sidecars):
    # other downloads parked in models/ (.pth, .onnx, ...) stay out of the wheel.
    "models": ["*.toml", "*.json", "*.sha256", "*.safetensors"],
}

setup(
    packages=[
        *find_namespace_packages(include=["app*"]),
        *(f"app.assets.{name}" for name in ASSETS),
    ],
    package_dir={f"app.assets.{name}": name for name in ASSETS},
    package_data={f"app.assets.{name}": patterns for name, patterns in ASSETS.items()},
    # Data comes from package_data alone; True would also scan the sdist manifest and warn that
    # every subfolder of static/ looks like an unlisted package.
    include_package_data=False,
)
