"""The documentation site covers the API and the examples.

Parses the Markdown under docs/ and mkdocs.yml as text (no mkdocs import):
every public name of ``conv1djax.__all__`` is documented by a
``::: conv1djax.<name>`` directive, or by a ``::: conv1djax.<module>``
directive that renders it as a member; every example has a page in the nav,
and shows the plot the example saves once that plot is in docs/; the
README's links lead to files of the repository. The pages' doctests run as
pytest collects docs/ (pyproject's testpaths). ``mkdocs build --strict`` (in
.ci/run) checks the rest: links, cross-references, docstrings.
"""

from __future__ import annotations

import re
import tomllib
import types
from pathlib import Path

import pytest

import conv1djax as cj

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DIRECTIVE = re.compile(r"^:::\s+(\S+)\s*$")


def directives() -> dict[str, list[str]]:
    """``{identifier: [option lines]}`` of every ``:::`` directive in docs/."""
    found: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            match = DIRECTIVE.match(line)
            if not match:
                continue
            options = []
            for more in lines[i + 1 :]:
                if more.strip() and not more.startswith("    "):
                    break
                options.append(more.strip())
            found.setdefault(match.group(1), []).extend(options)
    return found


def module_members(module: types.ModuleType, options: list[str]) -> set[str]:
    """The names a ``::: module`` directive renders as members: its public
    names defined in it (or listed in its ``__all__``), less ``members:
    false`` and the names its ``filters`` exclude."""
    if "members: false" in options:
        return set()
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", None) == module.__name__
        ]
    excluded = [
        re.compile(pattern)
        for line in options
        if line.startswith("filters:")
        for pattern in re.findall(r'"!([^"]+)"', line)
    ]
    return {n for n in names if not any(p.search(n) for p in excluded)}


def test_every_public_name_is_documented():
    found = directives()
    documented = {
        path.removeprefix("conv1djax.")
        for path in found
        if path.startswith("conv1djax.")
    }
    # Names documented as members of a module directive (``::: conv1djax.
    # streaming`` renders stream_init, ...), whatever the module's name.
    for path, options in found.items():
        module = cj
        for part in path.split(".")[1:]:
            module = getattr(module, part, None)
        if isinstance(module, types.ModuleType):
            documented |= module_members(module, options)
    missing = [name for name in cj.__all__ if name not in documented]
    assert not missing, (
        f"no `::: conv1djax.<name>` directive in docs/*.md for: {missing}"
    )


def test_directives_name_public_objects():
    """A directive for a name that left the API would fail the build; say so
    here first, naming the page."""
    for path in directives():
        assert path.startswith("conv1djax"), path
        obj = cj
        for part in path.split(".")[1:]:
            assert hasattr(obj, part), f"`::: {path}`: conv1djax has no {part!r}"
            obj = getattr(obj, part)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_has_a_page(example):
    page = DOCS / "examples" / f"{example.stem}.md"
    assert page.exists(), f"{example.name} has no page: write {page.relative_to(ROOT)}"
    text = page.read_text()
    assert f"examples/{example.name}" in text, f"{page.name} does not name its example"
    nav = (ROOT / "mkdocs.yml").read_text()
    assert f"examples/{example.stem}.md" in nav, (
        f"{page.name} is not in mkdocs.yml's nav"
    )
    # The plot the example saves, once it is in docs/, is on its page.
    for plot in sorted(set(re.findall(r"[\w-]+\.png", example.read_text()))):
        if (DOCS / plot).exists():
            assert f"](../{plot})" in text, f"{page.name} does not show ../{plot}"


@pytest.mark.parametrize("name", cj.__all__)
def test_every_public_name_has_a_doctest(name):
    """Each public name's docstring shows it in use (pytest's
    --doctest-modules runs the examples; here, that there is one)."""
    doc = getattr(cj, name).__doc__ or ""
    assert ">>>" in doc, f"conv1djax.{name}'s docstring has no >>> example"


def test_readme_links_lead_to_files():
    """The README is read on the repository's page, outside the site's
    strict build: each relative link or image in it names a file of the
    repository."""
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links no page"
    missing = [t for t in local if not (ROOT / t).is_file()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_site_and_package_name_the_same_places():
    """mkdocs.yml's source link and site address are the package
    metadata's Source and Documentation URLs."""
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    mkdocs = (ROOT / "mkdocs.yml").read_text()
    assert f"repo_url: {urls['Source']}\n" in mkdocs
    assert f"site_url: {urls['Documentation']}\n" in mkdocs
