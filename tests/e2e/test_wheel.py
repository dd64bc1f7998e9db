"""End to end: the wheel, installed into a fresh virtualenv, serves from outside the checkout,
the bundled models and a user's own (docs/models/example, copied to a folder of its own).

The wheel is built offline from a copy of what git sees (tracked and untracked-but-not-ignored
files, as they are on disk), so a stray file or a stale build/ in the checkout cannot hide a
packaging mistake. The new virtualenv borrows this environment's dependencies through a .pth file
instead of downloading them; only convlens itself is installed from the wheel.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest
import torch

from app.config import REPO_ROOT
from app.core.analysis import analyze
from app.core.model_spec import read_spec
from app.core.registry import load_model
from app.launch import _await_ready, _stop, free_port
from app.services.analyses import model_input

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHIPPED_FOLDERS = ("static", "templates", "models")
DIGIT = "static/samples/digits/digit-7.png"
EXAMPLE = REPO_ROOT / "docs" / "models" / "example"
EXAMPLE_FILES = ("mynet.py", "mynet.toml", "mynet.safetensors")  # what a user keeps together
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]

ServeInstalled = Callable[..., AbstractContextManager[str]]


@pytest.fixture(scope="module")
def sources() -> list[str]:
    """Repository-relative paths git tracks or would track (not ignored), that exist on disk."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.fail("building the wheel from what git holds needs git and a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(name for name in listing.split("\0") if name and (REPO_ROOT / name).is_file())


@pytest.fixture(scope="module")
def wheel(sources: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in sources:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    subprocess.run([*PIP, "wheel", source, *offline, "--wheel-dir", dist], check=True)
    (built,) = dist.glob("convlens-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel installed; dependencies come from this environment."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()
    dependencies = dict.fromkeys(sysconfig.get_paths()[kind] for kind in ("purelib", "platlib"))
    (Path(site) / "convlens-test-dependencies.pth").write_text("\n".join(dependencies) + "\n")
    offline = ["--no-deps", "--no-index", "--quiet"]
    subprocess.run([*PIP, "--python", python, "install", *offline, wheel], check=True)
    return venv


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with no app/ in it (`python -c` would import one from there)."""
    return tmp_path_factory.mktemp("outside")


def installed_env(outside: Path) -> dict[str, str]:
    """This environment without checkout overrides (CONVLENS_*, PYTHONPATH)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CONVLENS_") and key != "PYTHONPATH"
    }
    # Never the developer's cache or data: records an older version left in ~/.local/share
    # were served instead of a fresh analysis.
    return {**env, "XDG_CACHE_HOME": str(outside / "cache"), "XDG_DATA_HOME": str(outside / "data")}


@pytest.fixture(scope="module")
def serve_installed(venv: Path, outside: Path) -> ServeInstalled:
    """`with serve_installed(*extra_cli_args) as base_url:` runs the installed `convlens serve`."""

    @contextmanager
    def serve(*extra_args: str) -> Iterator[str]:
        port = free_port()
        log = outside / f"serve-{port}.log"
        output = log.open("wb")
        command = [venv / "bin" / "convlens", "serve", "--port", str(port), *extra_args]
        process = subprocess.Popen(
            [*command, "--log-level", "warning"],
            cwd=outside,
            env=installed_env(outside),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                _await_ready(process, base, time.monotonic() + 60)
            except (RuntimeError, TimeoutError) as error:
                pytest.fail(f"{error}; its output:\n{log.read_text(errors='replace')}")
            yield base
        finally:
            _stop(process, output)

    return serve


@pytest.fixture(scope="module")
def installed_server(serve_installed: ServeInstalled) -> Iterator[httpx.Client]:
    with serve_installed() as base, httpx.Client(base_url=base, timeout=60) as http:
        yield http


def test_wheel_holds_every_module_and_bundled_file_inside_the_package(
    wheel: Path, sources: list[str]
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {name.split("/")[0] for name in names} == {"app", "convlens-0.1.0.dist-info"}
    modules = {name for name in sources if name.startswith("app/") and name.endswith(".py")}
    bundled = {f"app/assets/{name}" for name in sources if name.split("/")[0] in SHIPPED_FOLDERS}
    assert "app/assets/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in bundled
    assert modules <= names
    assert {name for name in names if name.startswith("app/assets/")} == bundled


def test_installed_package_is_the_one_imported(venv: Path, outside: Path) -> None:
    probe = (
        "import app, app.paths as paths; from app.config import Settings; s = Settings();"
        "print(app.__file__, paths.STATIC_DIR, paths.TEMPLATES_DIR, s.models_dir,"
        " s.feature_vis_dir, sep='\\n')"
    )
    printed = subprocess.run(
        [venv / "bin" / "python", "-c", probe],
        cwd=outside,
        env=installed_env(outside),
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split("\n")
    site = next(venv.glob("lib/python*/site-packages")).resolve()
    module, static, templates, models, feature_vis = (Path(line) for line in printed[:5])
    assert module == site / "app" / "__init__.py"
    assert (static, templates, models) == tuple(
        site / "app" / "assets" / name for name in SHIPPED_FOLDERS
    )
    assert feature_vis == outside / "cache" / "convlens" / "feature-vis"


def test_installed_server_serves_the_page_and_its_static_files(
    installed_server: httpx.Client,
) -> None:
    page = installed_server.get("/")
    assert page.status_code == 200 and 'value="lenet5-mnist"' in page.text
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page.text)
    assert "/static/css/app.css" in stylesheets
    for url in [*stylesheets, "/static/vendor/swagger-ui-5.35.0/swagger-ui.css"]:
        response = installed_server.get(url)
        assert response.status_code == 200, url
        assert response.content == (REPO_ROOT / url.removeprefix("/")).read_bytes(), url
    assert installed_server.get("/docs").status_code == 200


@pytest.mark.anyio
async def test_installed_server_analyzes_a_digit_like_the_checkout(
    installed_server: httpx.Client,
    client: httpx.AsyncClient,
) -> None:
    digit = {"image": ("digit-7.png", (REPO_ROOT / DIGIT).read_bytes(), "image/png")}
    response = installed_server.post("/api/v1/models/lenet5-mnist/analyze", files=digit)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert predictions[0]["label"] == "7"
    reference = await client.post("/api/v1/models/lenet5-mnist/analyze", files=digit)
    assert predictions == reference.json()["predictions"]


@pytest.fixture(scope="module")
def user_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/models/example's spec, model file and weights, copied to a folder of their own."""
    folder = tmp_path_factory.mktemp("my-model")
    for name in EXAMPLE_FILES:
        shutil.copy2(EXAMPLE / name, folder / name)
    return folder / "mynet.toml"


def test_installed_server_serves_a_users_model_from_its_own_folder(
    serve_installed: ServeInstalled, user_spec: Path, outside: Path
) -> None:
    assert REPO_ROOT not in user_spec.parents and user_spec.parent != outside
    digit = (REPO_ROOT / DIGIT).read_bytes()
    reference = load_model(read_spec(user_spec), torch.device("cpu"))  # loaded in this process
    expected = analyze(reference, model_input(digit, 40_000_000, reference.spec.preprocess))
    layers = ["conv1", "relu", "max_pool2d", "conv2", "relu_1", "max_pool2d_1", "flatten", "fc"]
    assert [layer.name for layer in reference.layers] == layers
    with (
        serve_installed("--model", str(user_spec)) as base,
        httpx.Client(base_url=base, timeout=60) as http,
    ):
        ids = [model["id"] for model in http.get("/api/v1/models").json()["models"]]
        assert ids[-1] == "mynet" and "lenet5-mnist" in ids  # beside the bundled models
        detail = http.get("/api/v1/models/mynet").json()
        assert [layer["name"] for layer in detail["layers"]] == layers
        assert [layer["output_shape"] for layer in detail["layers"]] == [
            [8, 28, 28], [8, 28, 28], [8, 14, 14], [16, 14, 14], [16, 14, 14], [16, 7, 7],
            [784], [10],
        ]  # fmt: skip
        assert 'value="mynet"' in http.get("/").text
        files = {"image": ("digit-7.png", digit, "image/png")}
        response = http.post("/api/v1/models/mynet/analyze", files=files)
        assert response.status_code == 200, response.text
        body = response.json()
    assert [layer["name"] for layer in body["layers"]] == layers
    assert body["logits"] == expected.logits
    assert [(p["index"], p["label"], p["probability"]) for p in body["predictions"]] == [
        (p.index, p.label, p.probability) for p in expected.predictions
    ]
    assert body["predictions"][0]["label"] == "7"
