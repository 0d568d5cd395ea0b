"""Sphinx extension: render the jupytext percent-format tutorials as documentation pages.

At ``builder-inited`` every ``tutorials/*.py`` of the repository is read with jupytext,
its code cells are executed in order in one namespace (no Jupyter kernel: plain ``exec``
with stdout captured per cell, matplotlib on the Agg backend), and a MyST Markdown page is
written to ``docs/generated/tutorials/<name>.md`` with the markdown cells as text, the
code cells as Python blocks, and each cell's printed output (and the repr of a final
expression, as a notebook shows it) and figures below it.

Configuration (``conf.py``):

``tutorials_dir``
    Directory of the tutorial scripts, relative to the documentation's source directory.
``tutorials_execute``
    Run the tutorials (default True). Set the environment variable
    ``MTLTRANSFER_DOCS_EXECUTE=0`` for a quick build that shows the code only.

A tutorial that raises makes the build fail (a Sphinx ``ExtensionError``, with or without
``-W``), so the rendered tutorials are known to run.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import time
import traceback
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

OUT_SUBDIR = Path("generated") / "tutorials"


def _fence(text, lang):
    """A fenced block whose fence is longer than any backtick run inside ``text``."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}\n"


class _Executor:
    """Run code cells in one namespace, like a notebook kernel would."""

    def __init__(self, script: Path, fig_dir: Path, stem: str):
        self.ns = {"__name__": "__main__", "__file__": str(script)}
        self.script = script
        self.fig_dir = fig_dir
        self.stem = stem
        self.n_figs = 0
        try:
            import matplotlib
            matplotlib.use("Agg", force=True)
            import matplotlib.pyplot as plt
            self.plt = plt
        except ImportError:
            self.plt = None

    def run(self, source: str, cell_no: int):
        """Execute one cell; returns (text output, list of figure file names)."""
        tree = ast.parse(source, filename=str(self.script))
        last_expr = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last_expr = ast.Expression(tree.body.pop().value)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(tree, f"{self.script} (cell {cell_no})", "exec"), self.ns)
            if last_expr is not None:
                value = eval(compile(last_expr, f"{self.script} (cell {cell_no})", "eval"),
                             self.ns)
                if value is not None and not _is_figure(value):
                    print(repr(value))
        return buf.getvalue(), self._save_figures()

    def _save_figures(self):
        if self.plt is None:
            return []
        names = []
        for num in self.plt.get_fignums():
            fig = self.plt.figure(num)
            self.n_figs += 1
            name = f"{self.stem}_{self.n_figs:02d}.png"
            fig.savefig(self.fig_dir / name, dpi=90)
            names.append(name)
        self.plt.close("all")
        return names


def _is_figure(value):
    return type(value).__name__ == "Figure" and hasattr(value, "savefig")


def render(script: Path, out_dir: Path, execute: bool, rel_script: str) -> str:
    """MyST Markdown of one tutorial (executing it when asked)."""
    import jupytext

    nb = jupytext.read(script)
    stem = script.stem
    executor = _Executor(script, out_dir, stem) if execute else None
    parts = []
    old_cwd = os.getcwd()
    t0 = time.perf_counter()
    try:
        os.chdir(script.parent)
        code_no = 0
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                parts.append(cell.source.rstrip() + "\n")
                if not parts[:-1]:   # after the title: where to get the script
                    parts.append(f"The script: {{download}}`{stem}.py <{rel_script}>` "
                                 f"(run it with `python {stem}.py`, or open it as a "
                                 "notebook with jupytext).\n")
                continue
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            code_no += 1
            parts.append(_fence(cell.source, "python"))
            if executor is None:
                continue
            try:
                text, figs = executor.run(cell.source, code_no)
            except Exception:
                raise RuntimeError(f"tutorial {script.name}, code cell {code_no} failed:\n"
                                   + traceback.format_exc()) from None
            if text.strip():
                parts.append(_fence(text, "none"))
            for name in figs:
                parts.append(f"![figure of {stem}, cell {code_no}]({name})\n")
    finally:
        os.chdir(old_cwd)
    if executor is not None:
        logger.info(f"tutorial {script.name} executed in {time.perf_counter() - t0:.1f} s")
    return "\n".join(parts)


def generate(app):
    conf = app.config
    src = Path(app.srcdir)
    tut_dir = (src / conf.tutorials_dir).resolve()
    out_dir = src / OUT_SUBDIR
    out_dir.mkdir(parents=True, exist_ok=True)
    execute = conf.tutorials_execute and \
        os.environ.get("MTLTRANSFER_DOCS_EXECUTE", "1") not in ("0", "false", "no")
    scripts = sorted(tut_dir.glob("*.py"))
    if not scripts:
        logger.warning(f"no tutorials found in {tut_dir}")
    for script in scripts:
        rel = os.path.relpath(script, out_dir).replace(os.sep, "/")
        try:
            text = render(script, out_dir, execute, rel)
        except Exception as err:  # a tutorial that fails fails the build, -W or not
            raise ExtensionError(str(err)) from None
        target = out_dir / f"{script.stem}.md"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def setup(app):
    app.add_config_value("tutorials_dir", "../tutorials", "env")
    app.add_config_value("tutorials_execute", True, "env")
    app.connect("builder-inited", generate)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
