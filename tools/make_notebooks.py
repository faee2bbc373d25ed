"""Regenerate the notebooks (parameters cell from PersonaParams). Run: .venv/bin/python tools/make_notebooks.py"""

import dataclasses
import sys
from pathlib import Path

import nbformat as nbf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from personas.params import PersonaParams


def params_cell():
    lines = []
    for f in dataclasses.fields(PersonaParams):
        t = f.type if isinstance(f.type, str) else f.type.__name__
        lines.append(f"{f.name}: {t} = {f.default!r}  # {f.metadata['help']}")
    c = nbf.v4.new_code_cell("\n".join(lines))
    c.metadata["tags"] = ["parameters"]
    return c


def code(s):
    return nbf.v4.new_code_cell(s)


def md(s):
    return nbf.v4.new_markdown_cell(s)


setup = code(
    "from personas import PersonaParams, pipeline, plots\n\nparams = PersonaParams.from_mapping(globals())\nparams.run_dir()"
)
nbs = {
    "01_features": [
        md(
            "# 1 · Behaviour features\n\nLoads the event log (`events_path`; empty = the bundled synthetic sample), checks it, and computes one row of behaviour features per user in DuckDB (or on Spark with `engine=spark`: the same features, see docs/scale.md). Change a parameter in the next cell and re-run; then run `02_personas` and `03_report` with the same parameters.\n\nScheduled runs: `papermill notebooks/01_features.ipynb out.ipynb -p events_path data.parquet -p output_dir reports/x`."
        ),
        params_cell(),
        setup,
        code("features = pipeline.features_step(params)\nfeatures.shape"),
        md(
            "## The feature catalogue\n\nWhat each feature means, whether the model uses it, and its median here. Features the data cannot support are absent (`present` = False), never filled with zeros."
        ),
        code("plots.catalogue_table(features)"),
        md(
            "## Distributions of the model's features\n\nOn the scale the model sees (log1p for heavy-tailed counts). Look for features that are constant, or dominated by one value."
        ),
        code("plots.feature_distributions(features)"),
    ],
    "02_personas": [
        md(
            "# 2 · Personas\n\nFits the persona model (scale → UMAP → HDBSCAN → persona count control, over several independent fits that agree on the count and the personas) on samples of users and assigns everyone. Needs `01_features` run first with the same parameters. The model's own settings (`min_personas`, `max_personas`, `n_fits`, ...) are read here; `03_report` must be given the same values, or it stops and names the one that differs."
        ),
        params_cell(),
        setup,
        code(
            "assignments = pipeline.model_step(params)\nnames = pipeline.persona_names(params)  # the names 03_report will give\nnames"
        ),
        md(
            "## Why this many personas\n\nEvery persona count between `min_personas` and `max_personas` the model tried, with its score: how alike the independent fits group the users into that many personas (1 = the same grouping every time; with `n_fits` = 1, how well separated the personas are). The kept count is dark; the subtitle is the model's rule for choosing it."
        ),
        code("plots.count_scores(pipeline.model_info(params))"),
        md(
            "## Persona sizes and confidence\n\nA user's confidence is the share of its 15 most similar fitted users that are in its persona; right of the dashed line it clearly belongs. A persona with most of its users left of the line sits between others."
        ),
        code("plots.persona_sizes(assignments, names)"),
        code("plots.persona_confidence(assignments, names)"),
        md(
            "## The 2-D map\n\nA 2-D UMAP of the fitted sample, coloured by persona. Well-separated islands mean distinct behaviour; a persona spread over several islands may merge unlike users — try other `min_personas`/`max_personas`."
        ),
        code("plots.persona_map(pipeline.map_points(params), names)"),
    ],
    "03_report": [
        md(
            "# 3 · Names, profiles and the report\n\nProfiles and names the personas, writes `index.html`, `personas.json/csv`, `assignments.parquet/csv` and `run.json`, and moves the finished run into `output_dir` (empty: `reports/<run_name>` in the project folder). Needs `02_personas` first, with the same parameters."
        ),
        params_cell(),
        setup,
        code("result = pipeline.report_step(params)"),
        md("## The personas\n\nThe report's persona cards, with a link to the report itself."),
        code("result"),
        md(
            "## How the personas differ\n\nEach persona against all users on every feature the model uses: the difference of means in standard deviations (z). Red: higher than average, blue: lower."
        ),
        code("plots.trait_heatmap(result.traits)"),
    ],
}
for name, cells in nbs.items():
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"  # fixed ids: regenerating changes only what the cells say
    # python3: the kernel every Jupyter lists for its own environment (`make lab` runs the
    # .venv's JupyterLab) and the one papermill finds on a bare CI machine; nothing to register
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, Path(__file__).resolve().parents[1] / "personas" / "notebooks" / f"{name}.ipynb")
print("ok")
