"""Sphinx configuration of the mtltransfer documentation.

Build (warnings are errors)::

    pip install ".[docs]"
    sphinx-build -W -b html docs docs/_build/html

The tutorials in ``tutorials/`` are executed during the build and rendered with their
output (see ``docs/_ext/tutorial_pages.py``); ``MTLTRANSFER_DOCS_EXECUTE=0`` skips the
execution for a quick build.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, os.path.abspath("_ext"))

import mtltransfer  # noqa: E402

project = "mtltransfer"
author = "mtltransfer developers"
copyright = "mtltransfer developers"
version = release = mtltransfer.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "matplotlib.sphinxext.plot_directive",
    "numpydoc",
    "myst_parser",
    "tutorial_pages",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# API reference
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Members the models, the bootstrap and the solvers call, not the user: kept out of the
# class pages (they are documented in the source for contributors).
INTERNAL_MEMBERS = {
    "center", "collinear_groups", "fold_stats", "folds", "init_options", "intercept_for",
    "moments", "rank_rows", "replace_data", "residual_ss", "select_rank", "total_ss",
    "warn_design", "target_rank", "task_means", "bootstrap_extra", "bootstrap_spec",
    "coefficient_arrays", "default_bootstrap_method", "predict_draws",
    "warm_start_kwargs", "cv_folds", "row_multiplicity",
}


def _skip_internal(app, what, name, obj, skip, options):
    return True if what == "class" and name in INTERNAL_MEMBERS else None


# Every cross-reference must resolve (warnings are errors), except these, which have no
# page to link to: private names; the solvers' and internal base classes' helpers that a
# docstring names for readers of the source (the API reference documents the solvers
# the methods pages discuss); and other packages' objects (no inventory offline).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(.*\.)?_\w+(\..*)?"),
    (r"py:.*", r"mtltransfer\.solvers(\..*)?"),
    (r"py:.*", r"(mtltransfer\.smart\.problem\.)?SmartProblem(\..*)?"),
    # SMART's solver modules (as mtltransfer.solvers) and the data-access layer: the
    # functions the methods pages discuss have pages; their helpers do not
    (r"py:.*", r"mtltransfer\.smart(\.\w+)*\.?"),
    (r"py:.*", r"mtltransfer\.access(\..*)?"),
    (r"py:.*", r"mtltransfer\.holdout(\..*)?"),
    (r"py:.*", r"mtltransfer\.models\.results\.(Results|MultiResponseResults|PenalizedResults)"),
    (r"py:.*", r"(mtltransfer\.bootstrap\.)?BootstrapPrediction"),
    (r"py:.*", r"(shared_marginal\.)?(sums_data|rows_data)|RowsData\.equilibrate"),
    (r"py:.*", r"mtltransfer\.models\.(base|source|sparse)\.\w+"),
    (r"py:.*", r"(statsmodels|sklearn|scipy|numpy|pandas|dask|json|patsy)(\..*)?"),
]
# helpers that docstrings of the tuning and solver functions name by their short name,
# for readers of the source; they have no page of their own
nitpick_ignore = [("py:func", name) for name in (
    "svt", "stationarity", "source_rank", "source_d0", "complement_basis",
    "validation_loss", "default_structural_grid", "kfold_stats", "moment_noise_signal",
    "n_cov_params", "pooled_moments", "align_source", "mtltransfer.gram.offset_moments",
    "mtltransfer.selection.default_structural_grid", "moment_start", "eb_intercept")] + [
    ("py:class", "SourceLayout"), ("py:class", "GroupStats"), ("py:class", "AdmmParams"),
    ("py:meth", "SmartProblem.from_moments"),
    # a mixin's docstring naming the results' own predict (every results class has one)
    ("py:meth", "predict"), ("py:meth", "warm_start_kwargs")]



# ---- models name their scikit-learn regressors ------------------------------------------
def _sklearn_see_also(app, what, name, obj, options, lines):
    """A model's See Also names its regressor in :mod:`mtltransfer.sklearn` (run before
    numpydoc, which renders the section)."""
    if what != "class":
        return
    from mtltransfer import sklearn as mts

    specs = [spec for spec in mts.ESTIMATORS if spec.model is obj]
    if not specs:
        return
    entry = (f"mtltransfer.sklearn.{specs[0].name} : the model as a scikit-learn "
             "regressor (pipelines, ``GridSearchCV``).")
    for i, line in enumerate(lines[:-1]):
        if line.strip() == "See Also" and set(lines[i + 1].strip()) == {"-"}:
            lines.insert(i + 2, entry)
            return
    at = next((i for i, line in enumerate(lines[:-1]) if line.strip() == "Examples"
               and set(lines[i + 1].strip()) == {"-"}), len(lines))
    lines[at:at] = ["See Also", "--------", entry, ""]


# ---- [source] links (sphinx.ext.viewcode) ------------------------------------------------
# There is no public repository: every documented object links to its highlighted source
# in the site. viewcode finds ``def`` and ``class`` statements; the scikit-learn regressors
# are made by ``Name = _make(...)``, so their assignment line is added as their source.
def _find_source(app, modname):
    import re

    from sphinx.pycode import ModuleAnalyzer

    try:
        analyzer = ModuleAnalyzer.for_module(modname)
        analyzer.find_tags()
    except Exception:
        return None
    code, tags = analyzer.code, dict(analyzer.tags)
    module = None
    for i, line in enumerate(code.splitlines(), 1):
        m = re.match(r"([A-Z]\w*) = _make\(", line)
        if m and m.group(1) not in tags:
            name = m.group(1)
            tags[name] = ("class", i, i)
            # its methods are those of the base classes defined in the module
            module = module or importlib.import_module(modname)
            for base in getattr(module, name).__mro__[1:]:
                for attr in vars(base):
                    tag = tags.get(f"{base.__name__}.{attr}")
                    if tag is not None:
                        tags.setdefault(f"{name}.{attr}", tag)
    return code, tags


def _resolve_by_suffix(app, env, node, contnode):
    """A Python name a docstring writes as its module does (``save``, ``SufficientStats``,
    ``SharedRepresentation.fit``) resolves to the one documented object it names, if
    exactly one documented object ends with that name (Sphinx's own search for
    ``.name``)."""
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip(".~")
    matches = domain.find_obj(env, node.get("py:module"), node.get("py:class"), target,
                              node.get("reftype"), 1)
    if len({m[1].node_id for m in matches}) != 1 and len(matches) != 1:
        return None
    name, obj = matches[0]
    from sphinx.util.nodes import make_refnode
    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode,
                        name)


# MyST (the rendered tutorials)
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# tutorials (docs/_ext/tutorial_pages.py)
tutorials_dir = "../tutorials"
tutorials_execute = True

# figures drawn by the build (``.. plot::``), so they cannot go stale
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 90)]

html_theme = "alabaster"
html_theme_options = {
    "description": "Transfer and multi-task linear regression",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "body_max_width": "none",
}
html_static_path = []


# ---- maths offline ----------------------------------------------------------------------
# MathJax 3 comes from the docs extra's django-static-mathjax (a package that ships only
# MathJax's files, Apache-2.0; nothing of Django is imported) and is copied into the built
# site, so the pages render their maths without a network (no CDN).
mathjax_path = "mathjax/tex-chtml.js"       # relative to the site's _static/


def _mathjax_es5():
    spec = importlib.util.find_spec("mathjax")
    es5 = None if spec is None or spec.origin is None else \
        Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if es5 is None or not (es5 / "tex-chtml.js").is_file():
        from sphinx.errors import ConfigError
        raise ConfigError("the offline MathJax is missing: pip install '.[docs]' "
                          "(it brings django-static-mathjax)")
    return es5


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        shutil.copytree(_mathjax_es5(), Path(app.outdir) / "_static" / "mathjax",
                        dirs_exist_ok=True)


def setup(app):
    _mathjax_es5()                      # fail early, before the tutorials run
    app.connect("build-finished", _copy_mathjax)
    app.connect("autodoc-skip-member", _skip_internal)
    app.connect("missing-reference", _resolve_by_suffix)
    app.connect("viewcode-find-source", _find_source)
    app.connect("autodoc-process-docstring", _sklearn_see_also, priority=400)
