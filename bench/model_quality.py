"""Model quality on planted samples: agreement with the planted personas, stability, baselines.

Writes ``docs/model.md``. For each data set -- the default planted cast at 100,000 and 20,000
users and the held-out cast (``mix="holdout"``, seed 1) at 20,000 users -- the features are
computed once, as ``personas run`` computes them (``load_events`` -> ``compute_features`` ->
``model_matrix``), and then:

* ``PersonaModel(random_state=s)`` with default settings is fitted for each seed and assigns
  every user: personas found, adjusted Rand index (ARI) against the planted personas, fit and
  assign seconds; then the pairwise ARI between the seeds' assignments (stability);
* baselines on the same features: a supervised classifier trained on the planted labels (the
  ceiling), k-means told the planted persona count, and UMAP + HDBSCAN out of the box;
* on the 100k set only: a ``sample_size`` sweep and two ablations (no k-means refinement;
  silhouette judged over all fitted rows instead of the dense ones).

ARI against the planted personas always leaves out the planted ``noise`` users; stability
compares the seeds' assignments of all users. Missing samples are generated in ``bench/data/``.

    .venv/bin/python bench/model_quality.py                     # ~10-15 min on 2 cores
    .venv/bin/python bench/model_quality.py --seeds 2 --out /tmp/model.md   # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import itertools
import os
import platform
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, adjusted_rand_score
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from personas import model as model_module  # noqa: E402
from personas.events import load_events  # noqa: E402
from personas.features import compute_features, model_matrix  # noqa: E402
from personas.model import PersonaModel  # noqa: E402
from personas.params import PersonaParams  # noqa: E402
from personas.sample import write_sample  # noqa: E402

DATA = ROOT / "bench" / "data"
DEFAULT_OUT = ROOT / "docs" / "model.md"
SWEEP_SIZES = (3000, 5000, 10000, 20000)
SUPERVISED_MAX = 30_000      # users the supervised ceiling is cross-validated on
NAIVE_USERS = 20_000         # users the out-of-the-box UMAP + HDBSCAN runs on
ISSUE_ARI, ISSUE_STABILITY = 0.85, 0.9


# -- data -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataSpec:
    name: str          # shown in the tables
    stem: str          # bench/data/<stem>.parquet and <stem>.truth.csv
    users: int
    seed: int
    mix: str


@dataclass
class DataSet:
    spec: DataSpec
    X: np.ndarray                 # model_matrix of every user
    columns: list[str]
    truth: np.ndarray             # planted persona per row of X ("noise" = planted noise)
    feature_s: float

    @property
    def planted(self) -> np.ndarray:
        return self.truth != "noise"

    @property
    def k(self) -> int:
        return len(np.unique(self.truth[self.planted]))


SPECS = (
    DataSpec("default cast, 100k", "sample-100000", 100_000, 0, "default"),
    DataSpec("default cast, 20k", "sample-20000", 20_000, 0, "default"),
    DataSpec("held-out cast, 20k", "holdout-20000", 20_000, 1, "holdout"),
)


def ensure_sample(spec: DataSpec) -> tuple[Path, Path]:
    """The events and truth files of ``spec``, written by ``write_sample`` when missing."""
    events, truth = DATA / f"{spec.stem}.parquet", DATA / f"{spec.stem}.truth.csv"
    if not (events.exists() and truth.exists()):
        log(f"writing {events.relative_to(ROOT)} ({spec.users} users, seed {spec.seed}, "
            f"mix {spec.mix})")
        write_sample(events, spec.users, seed=spec.seed, mix=spec.mix)
    return events, truth


def load(spec: DataSpec) -> DataSet:
    """Features as ``personas run`` computes them, with the planted persona of each user."""
    events, truth_path = ensure_sample(spec)
    start = time.perf_counter()
    event_log = load_events(PersonaParams(events_path=str(events)))
    features, _ = compute_features(event_log)
    X, columns = model_matrix(features)
    event_log.con.close()
    feature_s = time.perf_counter() - start
    truth = pd.read_csv(truth_path, dtype={"user_id": str}).set_index("user_id")["persona"]
    aligned = truth.reindex(features.index.astype(str))
    if aligned.isna().any():
        raise SystemExit(f"{truth_path}: no planted persona for {int(aligned.isna().sum())} "
                         "users of the events file; regenerate the sample")
    return DataSet(spec, X, columns, aligned.to_numpy(dtype=object), feature_s)


# -- measures -------------------------------------------------------------------------------------

def planted_ari(data: DataSet, labels: np.ndarray, rows: np.ndarray | None = None) -> float:
    """ARI of ``labels`` against the planted personas, planted noise users left out."""
    truth = data.truth if rows is None else data.truth[rows]
    keep = truth != "noise"
    return float(adjusted_rand_score(truth[keep], labels[keep]))


def pairwise(labelings: list[np.ndarray]) -> list[float]:
    """ARI between every pair of labelings (all users)."""
    return [float(adjusted_rand_score(a, b)) for a, b in itertools.combinations(labelings, 2)]


@dataclass
class Run:
    seed: int
    labels: np.ndarray
    ari: float
    fit_s: float
    assign_s: float
    info: dict

    @property
    def personas(self) -> int:
        return int(self.info["personas"])


@dataclass
class Runs:
    """Several seeds of one configuration."""

    runs: list[Run] = field(default_factory=list)

    @property
    def aris(self) -> list[float]:
        return [r.ari for r in self.runs]

    @property
    def stability(self) -> list[float]:
        return pairwise([r.labels for r in self.runs])

    def personas(self) -> str:
        counts = sorted({r.personas for r in self.runs})
        return ", ".join(map(str, counts))


def fit_seeds(data: DataSet, seeds, **settings) -> Runs:
    """Fit ``PersonaModel(random_state=s, **settings)`` per seed and assign every user."""
    out = Runs()
    for seed in seeds:
        start = time.perf_counter()
        model = PersonaModel(random_state=seed, **settings).fit(data.X)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        labels = model.predict(data.X)
        assign_s = time.perf_counter() - start
        run = Run(seed, labels, planted_ari(data, labels), fit_s, assign_s, dict(model.info_))
        log(f"  seed {seed}: {run.personas} personas, ARI {run.ari:.3f}, fit {fit_s:.1f} s, "
            f"assign {assign_s:.1f} s")
        out.runs.append(run)
    return out


def warm_up(data: DataSet) -> None:
    """One small untimed fit, so that loading numba's compiled UMAP code is not in seed 0's time."""
    PersonaModel(random_state=0, sample_size=1000).fit(data.X[:5000])


# -- baselines ------------------------------------------------------------------------------------

def supervised_ceiling(data: DataSet) -> dict:
    """HistGradientBoosting on the planted labels, 3-fold cross-validated predictions."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rows = np.flatnonzero(data.planted)
    if len(rows) > SUPERVISED_MAX:
        rows = np.sort(np.random.default_rng(0).choice(rows, SUPERVISED_MAX, replace=False))
    start = time.perf_counter()
    predicted = cross_val_predict(HistGradientBoostingClassifier(random_state=0), data.X[rows],
                                  data.truth[rows],
                                  cv=StratifiedKFold(3, shuffle=True, random_state=0))
    seconds = time.perf_counter() - start
    return {"users": len(rows), "ari": float(adjusted_rand_score(data.truth[rows], predicted)),
            "accuracy": float(accuracy_score(data.truth[rows], predicted)), "seconds": seconds}


def kmeans_planted_k(data: DataSet) -> dict:
    """k-means on the standardised features of all users, told the planted persona count."""
    from sklearn.cluster import KMeans

    start = time.perf_counter()
    scaled = StandardScaler().fit_transform(data.X)
    labels = KMeans(n_clusters=data.k, n_init=4, random_state=0).fit_predict(scaled)
    return {"k": data.k, "ari": planted_ari(data, labels),
            "seconds": time.perf_counter() - start}


def umap_hdbscan_defaults(data: DataSet) -> dict:
    """Default ``umap.UMAP(random_state=0)`` + ``hdbscan.HDBSCAN(min_cluster_size=1 %)``;
    HDBSCAN noise (-1) counts as one more group."""
    import hdbscan
    import umap

    rows = np.arange(len(data.X))
    if len(rows) > NAIVE_USERS:
        rows = np.sort(np.random.default_rng(0).choice(rows, NAIVE_USERS, replace=False))
    start = time.perf_counter()
    scaled = StandardScaler().fit_transform(data.X)[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # "n_jobs overridden by random_state", etc.
        embedding = umap.UMAP(random_state=0).fit_transform(scaled)
    labels = hdbscan.HDBSCAN(min_cluster_size=max(2, int(0.01 * len(rows)))).fit_predict(embedding)
    return {"users": len(rows), "clusters": int(len(set(labels) - {-1})),
            "noise_share": float(np.mean(labels == -1)), "ari": planted_ari(data, labels, rows),
            "seconds": time.perf_counter() - start}


# -- ablations ------------------------------------------------------------------------------------

@contextlib.contextmanager
def patched(name: str, replacement):
    """Replace ``personas.model.<name>`` for the duration of the block."""
    original = getattr(model_module, name)
    setattr(model_module, name, replacement)
    try:
        yield
    finally:
        setattr(model_module, name, original)


def unrefined(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Stand-in for ``refine``: keep the merged groups; a noise row (-1) joins its nearest
    labelled row's group (in the scaled features), since the KNN assigner would otherwise learn
    -1 as a persona of its own."""
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    if noise.all():
        return np.zeros(len(labels), dtype=np.int64)
    if noise.any():
        nearest = NearestNeighbors(n_neighbors=1).fit(features[~noise])
        index = nearest.kneighbors(features[noise], return_distance=False)[:, 0]
        labels[noise] = labels[~noise][index]
    return model_module.relabel_by_size(labels)


JUDGED_LINE = "judged = dense if dense.sum() > max_k else np.ones(len(raw), dtype=bool)"


def count_control_judged_on_all_rows():
    """``cluster_with_count_control`` with its one ``judged = ...`` line set to all rows.

    Built from the installed function's own source, so everything else stays identical to the
    shipped code; fails loudly if that line is no longer there.
    """
    source = textwrap.dedent(inspect.getsource(model_module.cluster_with_count_control))
    if source.count(JUDGED_LINE) != 1:
        raise SystemExit("personas.model.cluster_with_count_control no longer has the line "
                         f"{JUDGED_LINE!r}; update the silhouette ablation in {__file__}")
    source = source.replace(JUDGED_LINE, "judged = np.ones(len(raw), dtype=bool)")
    namespace: dict = {}
    exec(compile(source, "<silhouette over all rows>", "exec"), vars(model_module), namespace)
    return namespace["cluster_with_count_control"]


# -- report ---------------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f", {kib / 2**20:.1f} GiB memory"
    return (f"{os.cpu_count()} CPUs ({cpu}){memory}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def packages() -> str:
    names = ("umap-learn", "hdbscan", "scikit-learn", "numpy", "numba", "duckdb")
    return ", ".join(f"{n} {version(n)}" for n in names)


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def table(header: list[str], rows: list[list], align: str) -> list[str]:
    """A Markdown table; ``align`` has one letter per column, l or r."""
    marks = ["---" if a == "l" else "---:" for a in align]
    return (["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def silhouettes(run: Run) -> str:
    """The count-control scores, the chosen count in bold ("" when nothing was merged)."""
    scores = run.info.get("silhouette", {})
    return " · ".join(f"**{k}: {v:.3f}**" if int(k) == run.personas else f"{k}: {v:.3f}"
                      for k, v in scores.items()) or run.info.get("action", "")


def seed_table(runs: Runs) -> list[str]:
    rows = [[r.seed, r.personas, r.info["clusters_found"], f"{r.info['noise_share']:.0%}",
             silhouettes(r), fmt(r.ari), fmt(r.fit_s, 1), fmt(r.assign_s, 1)]
            for r in runs.runs]
    return table(["seed", "personas", "HDBSCAN groups", "HDBSCAN noise",
                  "silhouette by persona count", "ARI vs planted", "fit (s)", "assign (s)"],
                 rows, "rrrrlrrr")


def composition(data: DataSet, run: Run) -> list[str]:
    """What each found persona of one run is made of, in planted personas."""
    frame = pd.DataFrame({"found": run.labels, "planted": data.truth})
    rows = []
    for label, group in frame.groupby("found"):
        shares = group["planted"].value_counts(normalize=True)
        top = [f"{name} {share:.0%}" for name, share in shares.head(3).items() if share >= 0.05]
        rows.append([label, f"{len(group):,}", f"{len(group) / len(frame):.1%}", ", ".join(top)])
    return table(["persona", "users", "share", "planted personas in it (≥ 5 %)"], rows, "rrrl")


def render(results: dict, started: datetime, total_s: float, argv: list[str]) -> str:
    seeds = results["seeds"]
    lines = [
        "# Model quality",
        "",
        "How well `PersonaModel` recovers planted personas, how much its answer depends on the",
        "seed, and what it is up against. Generated by",
        "[`bench/model_quality.py`](../bench/model_quality.py); do not edit by hand.",
        "",
        f"- **Date**: {started:%Y-%m-%d %H:%M} UTC; the whole script took {total_s / 60:.1f} min",
        f"- **Machine**: {machine()}; load average at the start "
        f"{', '.join(f'{x:.1f}' for x in results['load'])} (a shared machine: other work ran "
        "alongside, so seconds are indicative)",
        f"- **Packages**: {packages()}",
        f"- **Model**: `PersonaModel(random_state=s)` with default settings, seeds "
        f"{seeds[0]}..{seeds[-1]}",
        "",
        "Reproduce:",
        "",
        "```bash",
        "make setup",
        " ".join([".venv/bin/python", "bench/model_quality.py", *argv]),
        "```",
        "",
        "Data (generated in `bench/data/` when missing, by `personas.sample.write_sample`):",
        "",
    ]
    for data in results["data"]:
        spec = data.spec
        lines.append(f"- **{spec.name}**: `bench/data/{spec.stem}.parquet`, "
                     f"`write_sample(path, {spec.users}, seed={spec.seed}, mix=\"{spec.mix}\")`; "
                     f"{data.k} planted personas + {np.mean(~data.planted):.0%} planted noise; "
                     f"{len(data.columns)} model features, computed in {data.feature_s:.0f} s")
    lines += ["", "## How to read this", "",
              textwrap.fill(
                  "ARI (adjusted Rand index) is 1 for identical groupings and about 0 for "
                  "chance; it ignores how groups are numbered and penalises both splitting a "
                  "planted persona and lumping two together. **ARI vs planted** compares each "
                  "user's persona with the persona the sample planted, over users that are not "
                  "planted noise (noise users copy parameters from random personas and have no "
                  "right answer); the issue asks for at least "
                  f"{ISSUE_ARI} at 100k users. **Stability** is the ARI between two seeds' "
                  "assignments of every user (planted noise included), over all pairs of seeds; "
                  f"the issue asks for at least {ISSUE_STABILITY}. The supervised ceiling is "
                  "what a classifier trained on the planted labels reaches with the same "
                  "features: the personas overlap by design, so even it is not 1, and the gap "
                  "between it and the model is what unsupervised discovery loses. The model can "
                  "find more personas than were planted (up to `max_personas` = 8): a planted "
                  "persona split in two costs some ARI, and seeds that pick different counts "
                  "cost stability. The silhouette column shows how the count was picked (on the "
                  "users HDBSCAN put in dense groups; the fewest personas within two standard "
                  "errors of the highest score win). Fit is `fit` "
                  "on all users (which samples `sample_size` of them for UMAP and HDBSCAN); "
                  "assign is `predict` of every user. Seconds come from a shared 2-core "
                  "machine and move by ±30 % between runs; ARI figures are exact for the seeds "
                  "shown.",
                  width=100), ""]

    summary = []
    for data in results["data"]:
        r = results[data.spec.name]
        runs = r["model"]
        summary.append([data.spec.name, runs.personas(), fmt(np.mean(runs.aris)),
                        fmt(min(runs.aris)), fmt(min(runs.stability)),
                        fmt(np.mean(runs.stability)), fmt(r["supervised"]["ari"]),
                        fmt(r["kmeans"]["ari"]), fmt(r["naive"]["ari"])])
    lines += ["## Summary", "",
              *table(["data", "personas", "ARI mean", "ARI min", "stability min",
                      "stability mean", "supervised ceiling", "k-means, planted k",
                      "UMAP + HDBSCAN defaults"], summary, "lrrrrrrrr"), ""]

    for data in results["data"]:
        r = results[data.spec.name]
        runs = r["model"]
        sup, km, nv = r["supervised"], r["kmeans"], r["naive"]
        lines += [f"## {data.spec.name}", "",
                  f"`PersonaModel`, {len(runs.runs)} seeds, {len(data.X):,} users:", "",
                  *seed_table(runs), "",
                  f"ARI vs planted: mean **{np.mean(runs.aris):.3f}**, min "
                  f"**{min(runs.aris):.3f}**. Stability over {len(runs.stability)} pairs of "
                  f"seeds: min **{min(runs.stability):.3f}**, mean "
                  f"**{np.mean(runs.stability):.3f}**.", "",
                  "Baselines on the same features:", "",
                  *table(["method", "users", "groups", "ARI vs planted", "seconds", "note"], [
                      ["supervised ceiling: HistGradientBoostingClassifier, 3-fold "
                       "cross_val_predict", f"{sup['users']:,}", data.k, fmt(sup["ari"]),
                       fmt(sup["seconds"], 0),
                       f"accuracy {sup['accuracy']:.1%}; planted-noise users left out"],
                      ["k-means, planted k (n_init=4), standardised features",
                       f"{len(data.X):,}", km["k"], fmt(km["ari"]), fmt(km["seconds"], 0), ""],
                      ["`umap.UMAP(random_state=0)` + `hdbscan.HDBSCAN(min_cluster_size=1 %)`",
                       f"{nv['users']:,}", nv["clusters"], fmt(nv["ari"]), fmt(nv["seconds"], 0),
                       f"{nv['noise_share']:.0%} HDBSCAN noise, counted as one more group"],
                      ["`PersonaModel`, mean of seeds", f"{len(data.X):,}", runs.personas(),
                       fmt(np.mean(runs.aris)), fmt(np.mean([x.fit_s + x.assign_s
                                                             for x in runs.runs]), 0),
                       "fit + assign"],
                  ], "lrrrrl"), "",
                  f"What seed {runs.runs[0].seed}'s personas are made of:", "",
                  *composition(data, runs.runs[0]), ""]

    big = results["data"][0].spec.name
    lines += [f"## `sample_size` sweep ({big})", "",
              "Users the model fits UMAP and HDBSCAN on; everyone is then assigned by the "
              f"KNN vote. Seeds {results['few'][0]}..{results['few'][-1]} each.", ""]
    rows = []
    for size, runs in results["sweep"].items():
        note = " (default)" if size == PersonaModel().sample_size else ""
        rows.append([f"{size:,}{note}", runs.personas(), fmt(np.mean(runs.aris)),
                     fmt(min(runs.aris)), fmt(min(runs.stability)),
                     fmt(np.mean([x.fit_s for x in runs.runs]), 1),
                     fmt(np.mean([x.assign_s for x in runs.runs]), 1)])
    lines += table(["sample_size", "personas", "ARI mean", "ARI min", "stability min",
                    "fit mean (s)", "assign mean (s)"], rows, "lrrrrrr")
    lines += ["", "The default row reuses the first seeds of the run above (same settings, same "
              "seeds, so the same fits).", ""]

    lines += [f"## Ablations ({big})", "",
              f"Seeds {results['few'][0]}..{results['few'][-1]}; each variant changes one step "
              "of the shipped model (see `personas/model.py`'s docstring for the steps).", ""]
    rows = [[name, runs.personas(), fmt(np.mean(runs.aris)), fmt(min(runs.aris)),
             fmt(min(runs.stability)), fmt(np.mean(runs.stability)), how]
            for name, (runs, how) in results["ablation"].items()]
    lines += table(["variant", "personas", "ARI mean", "ARI min", "stability min",
                    "stability mean", "how"], rows, "lrrrrrl")
    lines.append("")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5,
                        help="seeds 0..N-1 per data set (default 5; sweep and ablations use "
                             "the first 3)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file to write")
    args = parser.parse_args()
    argv = list(sys.argv[1:])

    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    seeds = list(range(args.seeds))
    few = seeds[:3]
    results: dict = {"seeds": seeds, "few": few, "data": [], "load": os.getloadavg()}

    for spec in SPECS:
        log(f"{spec.name}: features")
        data = load(spec)
        log(f"  {len(data.X):,} users x {len(data.columns)} features in {data.feature_s:.0f} s")
        if not results["data"]:
            warm_up(data)
        results["data"].append(data)
        entry = results[spec.name] = {}
        log(f"{spec.name}: PersonaModel, seeds {seeds}")
        entry["model"] = fit_seeds(data, seeds)
        log(f"{spec.name}: baselines")
        entry["supervised"] = supervised_ceiling(data)
        entry["kmeans"] = kmeans_planted_k(data)
        entry["naive"] = umap_hdbscan_defaults(data)
        log(f"  supervised {entry['supervised']['ari']:.3f}, k-means {entry['kmeans']['ari']:.3f},"
            f" UMAP+HDBSCAN {entry['naive']['ari']:.3f} ({entry['naive']['clusters']} clusters)")

        if spec is SPECS[0]:
            shipped = Runs([r for r in entry["model"].runs if r.seed in few])
            results["sweep"] = {}
            for size in SWEEP_SIZES:
                if size == PersonaModel().sample_size:
                    results["sweep"][size] = shipped
                    continue
                log(f"{spec.name}: sample_size={size}")
                results["sweep"][size] = fit_seeds(data, few, sample_size=size)
            results["ablation"] = {"as shipped": (shipped, "default settings (runs above)")}
            log(f"{spec.name}: ablation, no k-means refinement")
            with patched("refine", unrefined):
                results["ablation"]["no k-means refinement"] = (
                    fit_seeds(data, few),
                    "`refine` replaced: merged HDBSCAN groups kept as they are, each HDBSCAN "
                    "noise row joins its nearest labelled row's group")
            log(f"{spec.name}: ablation, silhouette over all rows")
            with patched("cluster_with_count_control", count_control_judged_on_all_rows()):
                results["ablation"]["silhouette over all fitted rows"] = (
                    fit_seeds(data, few),
                    "`cluster_with_count_control` rebuilt from its source with "
                    "`judged = np.ones(len(raw), dtype=bool)`: the persona count is chosen "
                    "by silhouette over every fitted row, HDBSCAN noise included")

    total_s = time.perf_counter() - clock
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, started, total_s, argv), encoding="utf-8")
    log(f"wrote {args.out} in {total_s / 60:.1f} min")


if __name__ == "__main__":
    main()
