"""The README's code blocks run as written (in a temporary directory: one saves a file)."""
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_code_runs_as_written(tmp_path, monkeypatch):
    blocks = _python_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "readme"}
    exec(compile(blocks[0], "README.md (SMART block)", "exec"), ns)
    # what the block claims: the saved file reloads to the same fit, the last fit has the
    # configuration it was given, and the predictions are one row per new row
    assert (tmp_path / "fit.mtl").is_file()
    res = ns["res"]
    assert res.rank == 3 and tuple(res.structural_rank) == (6, 6)
    assert res.predict(ns["newdata"]).shape == (len(ns["newdata"]), 12)
    assert np.all(np.isfinite(ns["boot"].bse.to_numpy()))
    exec(compile(blocks[1], "README.md (SharedRepresentation block)", "exec"), ns)
    frame = ns["new"].get_prediction(ns["new_rows"]).summary_frame(alpha=0.05)
    assert len(frame) == len(ns["new_rows"])


def test_no_readme_line_is_wider_than_95_characters():
    wide = [ln for ln in README.read_text(encoding="utf-8").splitlines() if len(ln) > 95]
    assert wide == [], wide
