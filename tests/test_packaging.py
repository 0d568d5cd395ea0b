"""What users install is what the tests see: the sdist and the wheel hold the package whole.

Both are built here from the checkout (``python -m build --no-isolation``: the wheel is built
from the sdist, as pip does), then compared with each other and with the source tree.
"""
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(out), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = out.glob("mtltransfer-*.whl")
    (sdist,) = out.glob("mtltransfer-*.tar.gz")
    with zipfile.ZipFile(wheel) as zf:
        wheel_files = {n for n in zf.namelist() if n.startswith("mtltransfer/")}
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
    top = names[0].split("/")[0]
    assert all(n.split("/")[0] == top for n in names)
    sdist_files = {n.split("/", 1)[1] for n in names if "/" in n}
    return wheel_files, sdist_files


def test_the_sdist_holds_every_file_of_the_wheel(dists):
    wheel_files, sdist_files = dists
    assert "mtltransfer/__init__.py" in wheel_files
    assert wheel_files <= sdist_files, sorted(wheel_files - sdist_files)


def test_the_wheel_holds_every_module_and_data_file_of_the_tree(dists):
    wheel_files, _ = dists
    tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mtltransfer").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert len(tree) > 30
    assert tree <= wheel_files, sorted(tree - wheel_files)


def test_the_sdist_holds_the_project_metadata(dists):
    _, sdist_files = dists
    for name in ("README.md", "setup.cfg", "pyproject.toml"):
        assert name in sdist_files
