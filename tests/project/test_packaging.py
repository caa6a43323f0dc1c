"""The sdist and the wheel carry the licence, the metadata, and (sdist) tests, docs and examples.

Built offline with the installed setuptools (``python -m build --no-isolation``) from a
copy of the tree, so the build's own droppings (build/, *.egg-info) never touch the
checkout. The wheel is built from the sdist, as ``build`` does: a file the sdist lacks
breaks the wheel too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "*.egg-info", "__pycache__", ".*_cache",
                                    ".hypothesis", "build", "dist", "_build", "out")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("dists")
    tree = tmp / "tree"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCE)
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                             str(tmp / "dist"), str(tree)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = (tmp / "dist").glob("trustwire-*.tar.gz")
    (wheel,) = (tmp / "dist").glob("trustwire-*.whl")
    return sdist, wheel


def _sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as tar:
        return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}


def _wheel_metadata(wheel: Path) -> tuple[set[str], Message]:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        return names, Parser().parsestr(zf.read(meta).decode())


def test_sdist_has_license_tests_docs_and_examples(dists: tuple[Path, Path]) -> None:
    names = _sdist_names(dists[0])
    for path in ("LICENSE", "README.md", "pyproject.toml", "tests/conftest.py", "docs/conf.py", "docs/index.md",
                 "docs/reasons/expired.md", "docs/operations.md", "docs/benchmarks.png", "examples/hello.py",
                 "src/trustwire/py.typed"):
        assert path in names, path
    assert not [n for n in names if n.startswith("docs/_build") or "__pycache__" in n]


def test_wheel_has_license_in_dist_info(dists: tuple[Path, Path]) -> None:
    names, meta = _wheel_metadata(dists[1])
    license_files = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert license_files, sorted(n for n in names if "dist-info" in n)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert "trustwire/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]  # tests ship in the sdist only


def test_metadata_has_classifiers_and_urls(dists: tuple[Path, Path]) -> None:
    _, meta = _wheel_metadata(dists[1])
    classifiers = set(meta.get_all("Classifier") or [])
    for classifier in ("Operating System :: POSIX", "Operating System :: POSIX :: Linux",
                       "Operating System :: MacOS", "Programming Language :: Python :: 3.11",
                       "Programming Language :: Python :: 3.12", "Programming Language :: Python :: 3.13",
                       "Topic :: Security :: Cryptography", "Topic :: System :: Networking",
                       "Typing :: Typed", "Environment :: Console"):
        assert classifier in classifiers, classifier
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert any(c.startswith("Intended Audience :: ") for c in classifiers)
    assert not any(c.startswith("Operating System :: Microsoft") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Issues"}
    assert all(u.startswith("https://") for u in urls.values())
    # The metadata is the pyproject's, and the sdist's PKG-INFO says the same.
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    assert classifiers == set(project["classifiers"])
    with tarfile.open(dists[0]) as tar:
        member = tar.extractfile(f"trustwire-{meta['Version']}/PKG-INFO")
        assert member is not None
        pkg_info = Parser().parsestr(member.read().decode())
    assert set(pkg_info.get_all("Classifier") or []) == classifiers
