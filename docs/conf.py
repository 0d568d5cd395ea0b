"""Sphinx configuration of the mtltransfer documentation.

Build (warnings are errors)::

    pip install -r docs/requirements.txt
    sphinx-build -W -b html docs docs/_build/html

The tutorials in ``tutorials/`` are executed during the build and rendered with their
output (see ``docs/_ext/tutorial_pages.py``); ``MTLTRANSFER_DOCS_EXECUTE=0`` skips the
execution for a quick build.
"""

import os
import sys

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

# MyST (the rendered tutorials)
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# tutorials (docs/_ext/tutorial_pages.py)
tutorials_dir = "../tutorials"
tutorials_execute = True

html_theme = "alabaster"
html_theme_options = {
    "description": "Transfer and multi-task linear regression",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "body_max_width": "none",
}
html_static_path = []
