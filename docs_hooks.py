"""The documentation site's two hooks (``mkdocs.yml`` names this file twice).

- As an mkdocs hook (``hooks:``): the benchmark charts, which live in
  ``benchmarks/results/`` outside ``docs/``, become files of the site at
  ``results/<name>.png``, so ``docs/performance.md`` shows them without a
  copy in git.
- As a griffe extension (mkdocstrings' ``extensions:``): the package's
  docstrings are Google-style with reStructuredText inline markup, which
  Markdown does not read. Before mkdocstrings parses a docstring,
  ``RestToMarkdown`` rewrites

  - the roles ``:class:`~conv1djax.Conv1D```, ``:func:`get```, ... into
    cross-references to the documented object (resolved from the
    docstring's scope, so a broken or undocumented one fails
    ``mkdocs build --strict``), or into code for names outside conv1djax
    (``:func:`jax.jit```);
  - doctest blocks into ``pycon`` code blocks (Markdown would read ``>>>``
    as nested quotes, and a ``[0.6, 0.8]`` output as a link);
  - literal blocks introduced by ``::`` into code blocks;
  - a wrapped line that starts with ``>``, ``+`` or ``*`` (``>= 0``,
    ``+ bias``) into a continuation of its paragraph, not a quote or a list;

  A role naming a private object (``:mod:`conv1djax._validation```), which
  the site does not document, becomes code. The extension also warns about
  any public object of the package without a docstring, and about each
  documented parameter that is not in the signature (entries documenting
  several at once included), so that these fail the strict build too.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import griffe
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent
BENCHMARK_CHARTS = ROOT / "benchmarks" / "results"
PACKAGE = "conv1djax"

# ---- mkdocs hook ----------------------------------------------------------------


def on_files(files, config):
    """Adds ``benchmarks/results/*.png`` to the site as ``results/*.png``:
    where ``docs/performance.md`` and ``benchmarks/README.md`` (included in
    ``docs/benchmark-details.md``) link them (``results/sweep.png``, right
    on GitHub too)."""
    for chart in sorted(BENCHMARK_CHARTS.glob("*.png")):
        files.append(
            File.generated(config, f"results/{chart.name}", abs_src_path=str(chart))
        )
    return files


# ---- griffe extension -------------------------------------------------------------

_ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc|obj):`(~?)([^`<>]+)`")
_DOCTEST = re.compile(r">>> |>>>$")
_NOT_MARKUP = (">", "+ ", "* ")


def _lookup(obj: griffe.Object | griffe.Alias, target: str) -> str | None:
    """The full path of ``target`` as seen from ``obj``'s docstring, or None
    when it is not an object of the package."""
    collection = obj.modules_collection
    if target.startswith(PACKAGE + ".") or target == PACKAGE:
        try:
            collection.get_member(target)
        except (KeyError, ValueError, griffe.AliasResolutionError):
            return None
        return target
    head, _, rest = target.partition(".")
    scope = obj if obj.is_class or obj.is_module else obj.parent
    while scope is not None:
        try:
            path = scope.resolve(head)
        except griffe.NameResolutionError:
            return None
        full = f"{path}.{rest}" if rest else path
        if not full.startswith(PACKAGE):
            return None
        try:
            member = collection.get_member(full)
        except (KeyError, ValueError, griffe.AliasResolutionError):
            return None
        # A module-level alias (``swish = silu``) has no docstring of its own
        # and no entry on the site: link to what it names.
        if member.is_attribute and isinstance(member.value, griffe.ExprName):
            try:
                return member.parent.resolve(member.value.name)
            except griffe.NameResolutionError:
                return full
        return full
    return None


def _roles(obj: griffe.Object | griffe.Alias, text: str) -> str:
    def replace(match: re.Match) -> str:
        tilde, target = match.groups()
        target = target.strip()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        path = _lookup(obj, target)
        if path is not None and any(p.startswith("_") for p in path.split(".")):
            return f"`{shown}`"  # a private module or object: not on the site
        if path is None:
            if target.startswith(PACKAGE):
                griffe.logger.warning(
                    "%s: cross-reference %r names no object of the package",
                    obj.path,
                    target,
                )
            return f"`{shown}`"
        return f"[`{shown}`][{path}]"

    return _ROLE.sub(replace, text)


def _fence_blocks(text: str) -> str:
    """Fences doctest blocks and ``::`` literal blocks, at any indentation
    (an ``Example:`` section is an admonition to griffe, its body Markdown)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            out.append(line)
            i += 1
            continue
        if in_fence:
            out.append(line)
            i += 1
            continue
        if _DOCTEST.match(line.lstrip()):
            indent = len(line) - len(line.lstrip())
            pad = " " * indent
            block = []
            while (
                i < len(lines)
                and lines[i].strip()
                and len(lines[i]) - len(lines[i].lstrip()) >= indent
            ):
                block.append(lines[i][indent:])
                i += 1
            if out and out[-1].strip():
                out.append("")
            out += [pad + "```pycon", *(pad + b for b in block), pad + "```"]
            continue
        if line.rstrip().endswith("::"):
            indent = len(line) - len(line.lstrip())
            stripped = line.rstrip()[:-2].rstrip()
            out.append(line[:indent] + stripped.lstrip() + (":" if stripped else ""))
            i += 1
            block = []
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            body = [b for b in block if b.strip()]
            margin = min((len(b) - len(b.lstrip()) for b in body), default=0)
            pad = " " * indent
            out += ["", pad + "```"]
            out += [pad + b[margin:] if b.strip() else "" for b in block if block]
            while out and not out[-1].strip():
                out.pop()
            out += [pad + "```", ""]
            continue
        if line.lstrip().startswith(_NOT_MARKUP) and out and out[-1].strip():
            # a wrapped ">= 0" or "+ bias" continues its paragraph (and may
            # be inside a code span): Markdown would start a quote or a list
            out[-1] = out[-1].rstrip() + " " + line.strip()
            i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _is_public_api(obj: griffe.Object | griffe.Alias) -> bool:
    if not obj.path.startswith(PACKAGE):
        return False
    return all(not part.startswith("_") for part in obj.path.split("."))


def _check_parameter_names(obj: griffe.Object) -> None:
    """Warns about documented parameters missing from the signature.

    The package documents related parameters in one entry
    (``kernel_regularizer, bias_regularizer: ...``), which griffe's own check
    (``warn_unknown_params``, turned off in ``mkdocs.yml``) reads as one
    unknown name; here each name of such an entry is checked."""
    if not (obj.is_function or obj.is_class) or obj.docstring is None:
        return
    try:
        known = {p.name.lstrip("*") for p in obj.parameters}
        if obj.is_class:
            # A dataclass's fields, inherited ones included (griffe's own
            # dataclass extension may not have written its __init__ yet).
            known |= {n for n, m in obj.all_members.items() if m.is_attribute}
    except (KeyError, griffe.AliasResolutionError):
        return
    logging.disable(logging.WARNING)  # the render reports griffe's own warnings
    try:
        sections = obj.docstring.parse("google", warn_unknown_params=False)
    finally:
        logging.disable(logging.NOTSET)
    for section in sections:
        if section.kind is not griffe.DocstringSectionKind.parameters:
            continue
        for item in section.value:
            for name in item.name.split(","):
                name = name.strip().lstrip("*")
                if name and name not in known:
                    griffe.logger.warning(
                        "%s: documented parameter %r is not in the signature",
                        obj.path,
                        name,
                    )


class RestToMarkdown(griffe.Extension):
    """Rewrites reStructuredText inline markup in docstrings into Markdown
    (see the module's docstring) and warns about public objects of the
    package without a docstring."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        seen: set[int] = set()
        self._walk(pkg, seen)

    def _walk(self, obj: griffe.Object, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if obj.docstring is not None:
            text = _fence_blocks(obj.docstring.value)
            obj.docstring.value = _roles(obj, text)
            _check_parameter_names(obj)
        elif _is_public_api(obj) and not obj.is_attribute:
            griffe.logger.warning("%s has no docstring", obj.path)
        for member in obj.members.values():
            if member.is_alias:
                continue
            self._walk(member, seen)
