"""summary(): text, HTML and LaTeX exports of every model, small and compact tables."""

import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import mtltransfer as mt
from mtltransfer.summary import MAX_COEF_CELLS, fmt, latex_escape

SMART_CFG = dict(rank=2, structural_rank=(3, 3), lam=0.01)
LINEAR = ["OLS", "Ridge", "ReducedRank", "NuclearNorm", "SMART"]
SIZES = {"full": (60, 6, 3), "compact": (80, 20, 8)}  # 18 and 160 coefficients
FORMATS = ["text", "html", "latex"]


def _frame(n, p, q, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    C = rng.standard_normal((p, 2)) @ rng.standard_normal((2, q))
    Y = 1.5 + X @ C + 0.3 * rng.standard_normal((n, q))
    xn, yn = [f"x_{j + 1}" for j in range(p)], [f"Y{j + 1}" for j in range(q)]
    df = pd.concat([pd.DataFrame(Y, columns=yn), pd.DataFrame(X, columns=xn)], axis=1)
    # the source: the true coefficients, perturbed
    source = pd.DataFrame(C + 0.1 * rng.standard_normal((p, q)), index=xn, columns=yn)
    return df, " + ".join(yn) + " ~ " + " + ".join(xn), source


@pytest.fixture(scope="module")
def fitted():
    """Fitted results by (model name, size), fitted once on first use."""
    cache = {}

    def get(name, size):
        if (name, size) not in cache:
            df, formula, source = _frame(*SIZES[size])
            if name == "SMART":
                res = mt.SMART.from_formula(formula, df, source=source).fit(**SMART_CFG)
            else:
                res = getattr(mt, name).from_formula(formula, df).fit()
            cache[name, size] = res
        return cache[name, size]

    return get


def _export(smry, how):
    return {"text": smry.as_text, "html": smry.as_html, "latex": smry.as_latex}[how]()


def _row(text, how, stub):
    """The cells of the first row of an exported table whose stub is ``stub``."""
    if how == "latex":
        start = r"\textbf{%s}" % latex_escape(stub)
        lines = [ln for ln in text.splitlines() if ln.startswith(start + " ")]
    elif how == "html":
        # an HTML row spans lines: <tr>, the cells, </tr>
        lines = [ln for ln in text.splitlines() if ln.strip().startswith(f"<th>{stub}</th>")]
    else:
        lines = [ln for ln in text.splitlines() if ln.startswith(stub + " ")]
    assert lines, f"no row {stub!r} in the {how} output"
    line = lines[0]
    if how == "latex":
        return [c.strip() for c in line.rstrip().removesuffix("\\\\").split("&")]
    if how == "html":
        return re.findall(r"<t[dh]>(.*?)</t[dh]>", line)
    return [stub] + line[len(stub):].split()


def _check_structure(smry, text, how):
    n = len(smry.tables)
    if how == "latex":
        assert text.count(r"\begin{tabular}") == n
        assert text.count(r"\end{tabular}") == n
        assert text.count(r"\begin{center}") == 1 and text.count(r"\end{center}") == 1
        assert text.count(r"\toprule") == n and text.count(r"\bottomrule") == n
    elif how == "html":
        assert text.count("<table") == n and text.count("</table>") == n
    else:
        assert text == str(smry)


@pytest.mark.parametrize("how", FORMATS)
@pytest.mark.parametrize("name", [m for m in LINEAR if m != "OLS"])
def test_full_coefficient_table_exports(fitted, name, how):
    res = fitted(name, "full")
    smry = res.summary()
    text = _export(smry, how)
    _check_structure(smry, text, how)
    assert f"{name} Results" in text
    assert res.params.size <= MAX_COEF_CELLS
    # every predictor's row holds its coefficients, formatted as in the text output
    for x in res.params.index:
        cells = _row(text, how, x)
        assert cells[1:] == [fmt(v) for v in res.params.loc[x]], (x, cells)
    cells = _row(text, how, "Intercept")
    assert cells[1:] == [fmt(v) for v in res.intercept]
    if how == "latex":
        assert r"\textbf{x\_3}" in text and r"\textbf{Y2}" in text  # escaped names
        assert "Coefficients (rows: predictors, columns: responses)" in text


@pytest.mark.parametrize("how", FORMATS)
@pytest.mark.parametrize("name", LINEAR)
def test_compact_per_response_table_exports(fitted, name, how):
    res = fitted(name, "compact")
    smry = res.summary()
    text = _export(smry, how)
    _check_structure(smry, text, how)
    assert f"{name} Results" in text
    p, q = res.params.shape
    assert p * q > MAX_COEF_CELLS
    assert f"Per-response summary; {p} x {q} coefficients in .params" in text
    for y in ("Y1", "Y5"):
        cells = _row(text, how, y)
        norm = float(np.sqrt((res.params[y] ** 2).sum()))
        if name == "SMART":  # its per-response fit table comes first: R2 and RSS
            cells = _row(text.split("Per-response summary")[1], how, y)
        assert cells[1] == fmt(res.intercept[y]) and cells[2] == fmt(norm)
        assert cells[-1] == fmt(res.rsquared[y])
    # the coefficients themselves are left out
    assert "x_7" not in text


@pytest.mark.parametrize("how", FORMATS)
def test_smart_tables_in_every_format(fitted, how):
    res = fitted("SMART", "full")
    smry = res.summary()
    text = _export(smry, how)
    # top table, its rows too long for two columns (method, lambda), spectrum,
    # per-response fit, coefficients
    assert len(smry.tables) == 5
    s0 = np.linalg.svd(_frame(*SIZES["full"])[2].to_numpy(), compute_uv=False)
    cells = _row(text, how, "comp1")
    assert cells[2] == fmt(s0[0])
    cells = _row(text, how, "Y3")
    assert cells[1:] == [fmt(res.rsquared["Y3"]), fmt(res.ssr_per_response["Y3"])]
    if how == "latex":
        assert r"\textbf{angle U (deg)}" in text
        assert r"nnz Omega\_u, Omega\_v" in text
        # the extra text follows the tables, escaped
        tail = text.split(r"\end{center}")[1]
        assert "Only the source's coefficient matrix was used" in tail
        assert r"(U\_perp\^{}T U, V\_perp\^{}T V)" in tail and r"\newline" in tail
    elif how == "html":
        assert "<th>angle U (deg)</th>" in text
    else:
        assert "Only the source's coefficient matrix was used" in text


@pytest.fixture(scope="module", params=[10, 40], ids=["10 tasks", "40 tasks"])
def shared(request):
    T, d = request.param, 6
    sim = mt.datasets.simulate_shared(T, 20, d, 2, sigma=0.5, random_state=3)
    xn = [f"x_{j + 1}" for j in range(d)]
    df = pd.DataFrame(sim.X, columns=xn)
    df["y"] = sim.y
    df["task"] = [f"t{t:02d}" for t in sim.task]
    return mt.SharedRepresentation.from_formula("y ~ " + " + ".join(xn), df,
                                                groups="task").fit(k=2)


@pytest.mark.parametrize("how", FORMATS)
def test_shared_representation_exports(shared, how):
    res = shared
    smry = res.summary()
    text = _export(smry, how)
    _check_structure(smry, text, how)
    assert "SharedRepresentation Results" in text
    r2 = res.rsquared.describe()
    cells = _row(text, how, "per-task R2")
    assert cells[1:] == [fmt(r2[k]) for k in ("mean", "min", "25%", "50%", "75%", "max")]
    tasks = res.model.n_tasks
    if tasks <= 12:  # the task weights with their posterior sd, a row per (task, b_j)
        assert len(smry.tables) == 3
        stub = {"latex": r"w[t03, b2]", "html": "w[t03, b2]", "text": "w[t03, b2]"}[how]
        cells = _row(text, how, stub)
        assert cells[1:3] == [fmt(res.task_params.loc["b2", "t03"]),
                              fmt(np.sqrt(res.task_params_cov[3, 1, 1]))]
    else:
        assert len(smry.tables) == 2 and "t03" not in text
    if how == "latex":
        assert r"sigma\^{}2 (RSS/N):" in text and r"\textbf{25\%}" in text


def test_longley_ols_latex_has_one_tabular_per_table():
    data = sm.datasets.longley.load_pandas().data
    res = mt.OLS.from_formula("TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR",
                              data).fit()
    smry = res.summary()
    latex = smry.as_latex()
    assert latex.count(r"\begin{tabular}") == len(smry.tables) == 2
    assert latex.count(r"\end{tabular}") == len(smry.tables)
    # statsmodels' parameter row: coef, std err, t, P>|t|, interval (NIST: 15.06, 84.91)
    row = re.search(r"^\\textbf\{GNPDEFL\}(.*)\\\\$", latex, re.M).group(1)
    cells = [c.strip() for c in row.split("&")[1:]]
    assert cells[:4] == ["15.0619", "84.915", "0.177", "0.863"]
    # the top table keeps statsmodels' layout: label & value & label & value
    assert re.search(r"^\\textbf\{Model:\}\s+&\s+OLS\s+&", latex, re.M)
    # _repr_latex_ (Jupyter) goes through the same export
    assert smry._repr_latex_() == latex


def test_latex_escape_does_not_escape_twice():
    assert latex_escape("a_b^2 ~ {c} 5% $x$ #&") == \
        r"a\_b\^{}2 \~{} \{c\} 5\% \$x\$ \#\&"
    assert latex_escape("a\\b <>|") == r"a\textbackslash{}b $<$$>$$|$"


@pytest.mark.parametrize("how", FORMATS)
def test_ols_parameter_tables_are_statsmodels(fitted, how):
    """OLS shows statsmodels' parameter table per response: coef, std err, t, P>|t| and
    the interval, cell for cell as statsmodels' own summary of that response."""
    res = fitted("OLS", "full")
    df, formula, _ = _frame(*SIZES["full"])
    text = _export(res.summary(), how)
    _check_structure(res.summary(), text, how)
    rhs = formula.split("~")[1]
    for y in ("Y1", "Y3"):
        ref = sm.OLS.from_formula(f"{y} ~ {rhs}", df).fit()
        ref_text = _export(ref.summary(), how)
        part = text.split(f"{y} (nonrobust covariance)")[1]
        for x in ("Intercept", "x_2", "x_6"):
            assert _row(part, how, x) == _row(ref_text, how, x)
    assert "P>|t|" in text or "P$> |$t$|$" in text or "P&gt;|t|" in text


def test_ols_summary_alpha_and_covariance_type():
    df, formula, _ = _frame(40, 3, 1)
    res = mt.OLS.from_formula(formula, df).fit(cov_type="HC3")
    ref = sm.OLS.from_formula(formula, df).fit(cov_type="HC3")
    text = res.summary(alpha=0.1).as_text()
    ref_text = ref.summary(alpha=0.1).as_text()
    assert "Covariance Type:" in text and "HC3" in text
    assert "[0.05" in text and "P>|z|" in text
    for x in ("Intercept", "x_1", "x_3"):
        assert _row(text, "text", x) == _row(ref_text, "text", x)


@pytest.mark.parametrize("how", FORMATS)
def test_bootstrap_intervals_in_the_summary(how):
    """A results object with a stored bootstrap shows its std err and percentile
    interval per response, labelled as bootstrap."""
    df, formula, _ = _frame(50, 3, 2)
    res = mt.Ridge.from_formula(formula, df).fit(alpha=0.1)
    res.bootstrap_results = res.bootstrap(n_boot=30, random_state=1)
    text = _export(res.summary(alpha=0.1), how)
    assert "bootstrap (residual, 30 replicates)" in text
    ci = res.bootstrap_results.conf_int(0.1)
    se = res.bootstrap_results.bse
    for y in ("Y1", "Y2"):
        part = text.split(f"{y}: bootstrap")[1]
        cells = _row(part, how, "x_2")
        assert cells[1:] == [fmt(res.params.loc["x_2", y]), fmt(se.loc["x_2", y]),
                             fmt(ci.loc[("x_2", y), 0]),
                             fmt(ci.loc[("x_2", y), 1])]
    # without a stored bootstrap: the plain coefficient table
    res.bootstrap_results = None
    assert "bootstrap" not in _export(res.summary(), how)


@pytest.fixture(scope="module")
def smart_boot():
    """A SMART fit with a stored bootstrap (its own object: the shared fits stay clean)."""
    df, formula, source = _frame(*SIZES["full"])
    res = mt.SMART.from_formula(formula, df, source=source).fit(**SMART_CFG)
    res.bootstrap(n_boot=20, random_state=0)
    return res


@pytest.mark.parametrize("how", FORMATS)
def test_smart_summary_alpha_sets_the_bootstrap_interval(smart_boot, how):
    res = smart_boot
    se = res.bootstrap_results.bse
    for alpha, lo, hi in ((0.1, "[0.05", "0.95]"), (0.05, "[0.025", "0.975]")):
        smry = res.summary(alpha=alpha) if alpha != 0.05 else res.summary()
        text = _export(smry, how)
        ci = res.bootstrap_results.conf_int(alpha)
        assert "bootstrap (residual, 20 replicates)" in text
        for y in ("Y1", "Y3"):
            part = text.split(f"{y}: bootstrap")[1]
            header = _export(smry, "text").split(f"{y}: bootstrap")[1].splitlines()[2]
            assert header.split()[-2:] == [lo, hi]
            for x in ("Intercept", "x_2"):
                coef = res.intercept[y] if x == "Intercept" else res.params.loc[x, y]
                se_x = res.bootstrap_results.bse_intercept[y] if x == "Intercept" \
                    else se.loc[x, y]
                assert _row(part, how, x)[1:] == [fmt(coef), fmt(se_x),
                                                  fmt(ci.loc[(x, y), 0]),
                                                  fmt(ci.loc[(x, y), 1])]
    # the level matters: the 90% interval lies inside the 95% one, and is narrower
    ci90, ci95 = (res.bootstrap_results.conf_int(a) for a in (0.1, 0.05))
    assert np.all(ci90[0] >= ci95[0]) and np.all(ci90[1] <= ci95[1])
    assert np.any(ci90[1] - ci90[0] < ci95[1] - ci95[0])


def test_compact_table_counts_significant_slopes(fitted):
    """Above the cell limit the summary still reports inference: per response, the
    number of slopes whose 95% interval excludes zero, which for least squares is the
    number with P>|t| < 0.05 (statsmodels' p-values, an independent path)."""
    res = fitted("OLS", "compact")
    text = res.summary().as_text()
    assert "CI excl. 0 (95%)" in text and "res.conf_int(alpha=0.05)" in text
    slopes = list(res.params.index)
    expected = (res.pvalues.loc[slopes] < 0.05).sum(axis=0)
    for y in ("Y1", "Y5", "Y8"):
        cells = _row(text, "text", y)
        assert int(cells[-2]) == int(expected[y])
    df, formula, _ = _frame(*SIZES["compact"])
    boot_res = mt.ReducedRank.from_formula(formula, df).fit(rank=2)
    boot = boot_res.bootstrap(n_boot=20, random_state=0)
    text = boot_res.summary().as_text()
    ci = boot.conf_int(0.05).loc[slopes]
    excl = ((ci[0] > 0) | (ci[1] < 0)).groupby(level="response").sum()
    assert int(_row(text, "text", "Y2")[-2]) == int(excl["Y2"])
    # notes are wrapped to the summary's width: compare with the line breaks undone
    assert "residual bootstrap, 20 replicates" in " ".join(text.split())


def test_shared_summary_posterior_and_bootstrap_intervals():
    from scipy import stats

    X, y, task, B, W = mt.datasets.simulate_shared(8, 30, 6, 2, random_state=0)
    res = mt.SharedRepresentation(y, X, groups=task).fit(2)
    text = res.summary(alpha=0.1).as_text()
    cov = res.task_params_cov                    # (T, k, k) posterior covariances
    w = res.task_params
    z = stats.norm.ppf(0.95)
    for t, comp in ((0, "b1"), (5, "b2")):
        j = ["b1", "b2"].index(comp)
        sd = np.sqrt(cov[t, j, j])
        cells = _row(text, "text", f"w[{t}, {comp}]")
        assert cells[1:] == [fmt(w.loc[comp, t]), fmt(sd), fmt(w.loc[comp, t] - z * sd),
                             fmt(w.loc[comp, t] + z * sd)]
    boot = res.bootstrap(n_boot=12, random_state=0)
    text = res.summary(alpha=0.1).as_text()
    dist = boot.extra["subspace_distance"].ravel()
    cells = _row(text, "text", "sin-theta distance")
    assert cells[1] == fmt(dist.mean()) and cells[3] == fmt(np.quantile(dist, 0.05))
    assert "conf_int(alpha=0.1)" in text
    with pytest.raises(ValueError, match="alpha"):
        res.summary(alpha=2)
