#!/usr/bin/env bash
# The distributions a user installs: build the sdist and, from it, the wheel
# (python -m build), check their metadata and long description as the package
# index would (twine check --strict), check what each archive holds, then
# install the wheel alone into an empty virtual environment outside the clone
# and run one module's doctests there, from a folder outside the clone, so
# that nothing of the clone's source can be imported.
#
# Usage: .ci/check_dist.sh PYTHON, a Python that has the release extra
# (build, twine).
set -euo pipefail
cd "$(dirname "$0")/.."
python="$1"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
"$python" -m twine check --strict "$work"/dist/*

# What the archives hold: the sdist, enough to rebuild the package with its
# license and long description; the wheel, the package with its type marker
# and license; neither, the tests or the benchmarks (MANIFEST.in).
"$python" - "$work"/dist/*.tar.gz "$work"/dist/*.whl <<'EOF'
import sys
import tarfile
import zipfile

sdist, wheel = sys.argv[1:]
with tarfile.open(sdist) as archive:
    # conv1djax-0.2.0/README.md -> README.md
    names = {name.partition("/")[2] for name in archive.getnames()}
needed = {"LICENSE", "README.md", "pyproject.toml", "conv1djax/__init__.py",
          "conv1djax/py.typed"}
assert needed <= names, f"the sdist lacks {sorted(needed - names)}"
stray = sorted(n for n in names if n.split("/")[0] in {"tests", "benchmarks"})
assert not stray, f"the sdist holds {stray}"
with zipfile.ZipFile(wheel) as archive:
    names = set(archive.namelist())
assert "conv1djax/py.typed" in names, "the wheel lacks conv1djax/py.typed"
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), (
    "the wheel lacks its LICENSE"
)
stray = sorted(n for n in names if n.split("/")[0] in {"tests", "benchmarks"})
assert not stray, f"the wheel holds {stray}"
tops = sorted({n.split("/")[0] for n in names if "/" in n})
print(f"{sdist.rpartition('/')[2]} and {wheel.rpartition('/')[2]}: {tops}")
EOF

# The wheel alone, with the dependencies it declares, in an empty venv.
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/*.whl
cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'EOF'
import doctest
import sys

import conv1djax
import conv1djax.shapes

assert conv1djax.__file__.startswith(sys.argv[1]), conv1djax.__file__
result = doctest.testmod(conv1djax.shapes)
assert result.attempted > 0 and result.failed == 0, result
print(f"conv1djax {conv1djax.__version__} from the wheel, outside the clone: "
      f"{result.attempted} doctests of conv1djax.shapes passed")
EOF
