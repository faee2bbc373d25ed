"""Model quality on many random worlds, next to simple baselines; writes docs/model.md.

Every default of the model is judged here, on worlds nobody designed (``personas/worlds.py``:
4-8 random archetypes, unequal shares, noise users, four event vocabularies, order tables,
missing columns), never on the bundled sample alone. For each world (features computed once as
``personas run`` computes them, cached by ``bench/worlds.py``):

* ``PersonaModel(random_state=s, preprocessor=FeatureMatrix())`` with default settings (as a
  run fits it, on the feature table), for two seeds: adjusted Rand index
  (ARI) against the planted archetypes (planted noise users left out), the persona count, and
  the ARI between the two seeds' assignments of every user (seed agreement);
* baselines on the same users: k-means told the planted count, on the model's features and on
  every catalogue feature; k-means choosing its count (4-8) by silhouette; a supervised
  classifier trained on the planted labels (the ceiling: how separable the archetypes are);
* the names: every persona of seed 0 profiled and named as a run would; every claim a name
  makes is recomputed here from the features and checked against its bounds.

Then seed agreement on a few worlds at 100,000 users, and the bundled sample (both casts).

    .venv/bin/python bench/model_quality.py                       # ~1 h on 2 cores
    .venv/bin/python bench/model_quality.py --worlds 6 --big 0 --out /tmp/model.md   # a look
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import (  # noqa: E402
    ROOT,
    WorldData,
    catalogue_matrix,
    kmeans_by_silhouette,
    kmeans_told_k,
    planted_ari,
    supervised_ceiling,
    world_data,
)

from personas.features import BY_NAME, event_mix_counts, model_matrix  # noqa: E402
from personas.kpis import KPIS, figure_key  # noqa: E402
from personas.model import FeatureMatrix, PersonaModel  # noqa: E402
from personas.naming import clashes  # noqa: E402
from personas.profile import build_profiles  # noqa: E402
from personas.sample import write_sample  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "model.md"
SEEDS = (0, 1)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- one world -------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    k: int  # planted archetypes
    users: int
    describe: str
    ari: list[float]  # PersonaModel, one per seed
    found: list[int]  # personas found, one per seed
    agreement: float  # ARI between the two seeds' assignments of every user
    stability: float | None  # the model's own stability figure (seed 0)
    fit_s: float  # seconds per fit + assign (mean over seeds)
    kmeans_model: float = float("nan")
    kmeans_all: float = float("nan")
    kmeans_sil: float = float("nan")
    kmeans_sil_k: int = 0
    ceiling: float = float("nan")
    names: list[str] | None = None
    claims: int = 0  # claims checked
    broken: list[str] | None = None  # claims that do not hold, or names that clash


def fit_seeds(data: WorldData) -> tuple[list, list[float]]:
    fits, seconds = [], []
    for seed in SEEDS:
        start = time.perf_counter()
        # prepared as a run prepares them: the feature table through FeatureMatrix
        model = PersonaModel(random_state=seed, preprocessor=FeatureMatrix()).fit(data.features)
        labels, confidence = model.predict_with_confidence(data.features)
        seconds.append(time.perf_counter() - start)
        fits.append((model, labels, confidence))
    return fits, seconds


def recompute(check, features: pd.DataFrame, mask: np.ndarray) -> float | None:
    """The figure a claim names, computed here from the features (not by the profile code)."""
    kpis = {figure_key(k.key): k for k in KPIS}
    if check.figure in kpis:
        return float(kpis[check.figure].compute(features[mask]))
    column = features.loc[mask, check.figure].dropna()
    if column.empty:
        return None
    return float(column.median() if check.statistic == "median" else column.mean())


def bound_holds(test: str, bound: float, value: float | None, lift: float | None) -> bool:
    measured = lift if test.startswith("lift_") else value
    if measured is None or np.isnan(measured):
        return False
    return measured >= bound - 1e-9 if test.endswith("at_least") else measured <= bound + 1e-9


def check_names(data: WorldData, labels: np.ndarray, confidence: np.ndarray) -> tuple:
    """Profile and name seed 0's personas; recompute and check every claim; check head words."""
    features = data.features
    catalogue = features[[c for c in features.columns if c in BY_NAME]]
    profiles = build_profiles(
        catalogue,
        labels,
        confidence,
        order_table=data.world.order_table,
        role_counts=event_mix_counts(features),
    )
    broken, claims = [], 0
    for p in profiles:
        mask = labels == p.id
        for check in p.claims:
            claims += 1
            value = recompute(check, catalogue, mask)
            overall = recompute(check, catalogue, np.ones(len(labels), dtype=bool))
            lift = value / overall if value is not None and overall else None
            if (
                check.value is not None
                and value is not None
                and not np.isclose(value, check.value, rtol=1e-6, atol=1e-9)
            ):
                broken.append(
                    f"{p.name}: {check.figure} is {value:.4g}, card says {check.value:.4g}"
                )
            elif not all(bound_holds(t, b, value, lift) for t, b in check.bounds):
                broken.append(
                    f"{p.name}: {check.figure} = {value} (lift {lift}) fails {check.bounds}"
                )
    names = [p.name for p in profiles]
    for i, a in enumerate(names):
        broken += [f"{a} / {b} share a head word" for b in names[i + 1 :] if clashes(a, b)]
    return names, claims, broken


def score_world(seed: int, users: int, baselines: bool = True) -> Result:
    data = world_data(seed, users)
    fits, seconds = fit_seeds(data)
    labels = [f[1] for f in fits]
    result = Result(
        name=f"world {seed}",
        k=data.k,
        users=len(data.features),
        describe=data.world.describe(),
        ari=[planted_ari(data, lab) for lab in labels],
        found=[int(len(np.unique(lab))) for lab in labels],
        agreement=float(adjusted_rand_score(labels[0], labels[1])),
        stability=fits[0][0].stability_,
        fit_s=float(np.mean(seconds)),
    )
    if baselines:
        scaled = StandardScaler().fit_transform(model_matrix(data.features)[0])
        everything = catalogue_matrix(data.features)
        result.kmeans_model = planted_ari(data, kmeans_told_k(scaled, data.k))
        result.kmeans_all = planted_ari(data, kmeans_told_k(everything, data.k))
        chosen, result.kmeans_sil_k = kmeans_by_silhouette(everything)
        result.kmeans_sil = planted_ari(data, chosen)
        result.ceiling = supervised_ceiling(data)
        result.names, result.claims, result.broken = check_names(data, labels[0], fits[0][2])
    return result


def score_bundled(mix: str, users: int, seed: int) -> Result:
    """The bundled sample generator's own casts, through the same steps."""
    from personas.features import compute_features
    from personas.load import load_events
    from personas.params import PersonaParams
    from personas.worlds import draw_world

    folder = ROOT / "bench" / "data"
    events, truth_path = folder / f"{mix}-{users}.parquet", folder / f"{mix}-{users}.truth.csv"
    if not (events.exists() and truth_path.exists()):
        write_sample(events, users, seed=seed, mix=mix)
    log_ = load_events(PersonaParams(events_path=str(events)))
    features, _ = compute_features(log_)
    log_.con.close()
    truth = pd.read_csv(truth_path, dtype=str).set_index("user_id")["persona"]
    data = WorldData(
        draw_world(0, order_table=False),
        features,
        truth.reindex(features.index).to_numpy(dtype=object),
        0.0,
    )
    fits, seconds = fit_seeds(data)
    labels = [f[1] for f in fits]
    scaled = StandardScaler().fit_transform(model_matrix(features)[0])
    return Result(
        name=f"bundled sample, {mix} cast",
        k=data.k,
        users=len(features),
        describe=f'`write_sample(path, {users}, seed={seed}, mix="{mix}")`',
        ari=[planted_ari(data, lab) for lab in labels],
        found=[int(len(np.unique(lab))) for lab in labels],
        agreement=float(adjusted_rand_score(labels[0], labels[1])),
        stability=fits[0][0].stability_,
        fit_s=float(np.mean(seconds)),
        kmeans_model=planted_ari(data, kmeans_told_k(scaled, data.k)),
    )


# -- the page -------------------------------------------------------------------------------------


def fmt(x: float | None, digits: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def table(header: list[str], rows: list[list], align: str) -> list[str]:
    marks = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows
    ]


def machine() -> str:
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()}, Python {platform.python_version()}"


def summary_rows(results: list[Result]) -> list[list]:
    frame = pd.DataFrame(
        {
            "PersonaModel, seed 0": [r.ari[0] for r in results],
            "PersonaModel, seed 1": [r.ari[1] for r in results],
            "k-means told the count, model features": [r.kmeans_model for r in results],
            "k-means told the count, all features": [r.kmeans_all for r in results],
            "k-means, count by silhouette, all features": [r.kmeans_sil for r in results],
            "supervised ceiling (classifier on the planted labels)": [r.ceiling for r in results],
        }
    )
    counts = {
        "PersonaModel, seed 0": np.mean([r.found[0] == r.k for r in results]),
        "PersonaModel, seed 1": np.mean([r.found[1] == r.k for r in results]),
        "k-means, count by silhouette, all features": np.mean(
            [r.kmeans_sil_k == r.k for r in results]
        ),
    }
    return [
        [
            name,
            fmt(col.mean()),
            fmt(col.min()),
            fmt(col.quantile(0.1)),
            f"{counts[name]:.0%}" if name in counts else "told",
        ]
        for name, col in frame.items()
    ]


def render(
    worlds: list[Result],
    big: list[Result],
    bundled: list[Result],
    started: datetime,
    minutes: float,
    argv: list[str],
) -> str:
    gap = [min(r.ari) - r.kmeans_model for r in worlds]
    agreement = [r.agreement for r in worlds]
    claims = sum(r.claims for r in worlds)
    broken = [b for r in worlds for b in (r.broken or [])]
    lines = [
        "# Model quality",
        "",
        "How well `PersonaModel` finds planted personas in data nobody here designed, how much",
        "its answer depends on the seed, what it is up against, and whether its names hold.",
        "Generated by [`bench/model_quality.py`](../bench/model_quality.py); do not edit by hand.",
        "",
        f"- **Date**: {started:%Y-%m-%d %H:%M} UTC; the whole script took {minutes:.0f} min",
        f"- **Machine**: {machine()} (shared: seconds are indicative)",
        "- **Packages**: "
        + ", ".join(
            f"{n} {version(n)}"
            for n in ("umap-learn", "hdbscan", "scikit-learn", "numpy", "duckdb")
        ),
        "- **Model**: `PersonaModel(random_state=s, preprocessor=FeatureMatrix())` with default "
        "settings, seeds " + ", ".join(map(str, SEEDS)),
        "",
        "```bash",
        "make setup",
        " ".join([".venv/bin/python", "bench/model_quality.py", *argv]),
        "```",
        "",
        "## The worlds",
        "",
        f"{len(worlds)} worlds drawn by `personas.worlds.draw_world(seed)`, seeds 0-"
        f"{len(worlds) - 1}, {worlds[0].users if worlds else 0:,} users each (order tables: the "
        "users who bought): a shop's usual behaviour drawn from wide priors, then 4 to 8 "
        "archetypes that each change 2 to 10 aspects of it (lifecycle, visit frequency, "
        "browsing, carts, buying, order value, discounts, e-mail, app, weekends), shares from 4 %, "
        "0-12 % noise users who belong to no archetype, one of four event vocabularies (GA4, "
        "Segment, plain words, names of its own with a roles file) or an order table (one world "
        "in five), its own column names, Parquet or CSV, three time formats, and some optional "
        "columns left out. Each world's log goes through `load_events` and "
        "`compute_features` as in a run.",
        "",
        "ARI (adjusted Rand index) is 1 for the planted grouping and about 0 for chance; it is "
        "computed over the users of planted archetypes (noise users have no right answer). "
        "The supervised ceiling is what a classifier trained on the planted labels reaches "
        "(3-fold cross-validated, all features): archetypes that share most of their behaviour "
        "overlap, so even it is not 1, and order tables, which show only purchases, are hardest.",
        "",
        "## Summary",
        "",
        *table(
            ["method", "ARI mean", "ARI worst", "ARI 10th pct", "count right"],
            summary_rows(worlds),
            "lrrrr",
        ),
        "",
        f"- **Against k-means told the count** (the same model features): PersonaModel's worse "
        f"seed is {np.mean(gap):+.3f} on average; its worst world is {min(gap):+.3f} "
        f"(world {worlds[int(np.argmin(gap))].name.split()[-1]}); worlds more than 0.1 below: "
        f"{sum(g < -0.1 for g in gap)} of {len(worlds)}.",
        f"- **Seed agreement** (ARI between seed 0's and seed 1's assignments of every user) at "
        f"{worlds[0].users if worlds else 0:,} users: mean {np.mean(agreement):.3f}, worst "
        f"{min(agreement):.3f}; at or above 0.9 in {sum(a >= 0.9 for a in agreement)} of "
        f"{len(worlds)} worlds.",
        f"- **Names**: {claims} claims made by {sum(len(r.names or []) for r in worlds)} persona "
        f"names, each recomputed from the features and checked against its bounds: "
        f"{'all hold, and no two names share a head word' if not broken else f'{len(broken)} fail'}.",
        "",
    ]
    if broken:
        lines += ["Failed checks:", "", *[f"- {b}" for b in broken[:30]], ""]
    if big:
        rows = [
            [
                r.name,
                r.k,
                f"{r.users:,}",
                fmt(r.ari[0]),
                fmt(r.ari[1]),
                f"{r.found[0]}, {r.found[1]}",
                fmt(r.agreement),
                fmt(r.stability),
                fmt(r.fit_s, 0),
            ]
            for r in big
        ]
        big_agreement = [r.agreement for r in big]
        lines += [
            "## Seeds at 100,000 users",
            "",
            *table(
                [
                    "world",
                    "planted",
                    "users",
                    "ARI seed 0",
                    "ARI seed 1",
                    "personas",
                    "seed agreement",
                    "model's stability",
                    "fit + assign (s)",
                ],
                rows,
                "lrrrrrrrr",
            ),
            "",
            f"Seed agreement: mean {np.mean(big_agreement):.3f}, worst {min(big_agreement):.3f}.",
            "",
        ]
    if bundled:
        rows = [
            [
                r.name,
                r.describe,
                r.k,
                f"{r.users:,}",
                fmt(r.ari[0]),
                fmt(r.ari[1]),
                f"{r.found[0]}, {r.found[1]}",
                fmt(r.agreement),
                fmt(r.kmeans_model),
            ]
            for r in bundled
        ]
        lines += [
            "## The bundled sample",
            "",
            "The demo's planted casts (`personas.sample`), through the same steps; never "
            "used to choose a default.",
            "",
            *table(
                [
                    "data",
                    "generated by",
                    "planted",
                    "users",
                    "ARI seed 0",
                    "ARI seed 1",
                    "personas",
                    "seed agreement",
                    "k-means told the count",
                ],
                rows,
                "llrrrrrrr",
            ),
            "",
        ]
    rows = [
        [
            r.name.split()[-1],
            r.describe,
            r.k,
            f"{r.found[0]}, {r.found[1]}",
            fmt(r.ari[0]),
            fmt(r.ari[1]),
            fmt(r.agreement),
            fmt(r.kmeans_model),
            fmt(r.kmeans_all),
            f"{fmt(r.kmeans_sil)} ({r.kmeans_sil_k})",
            fmt(r.ceiling),
            ", ".join(r.names or []),
        ]
        for r in worlds
    ]
    lines += [
        "## Every world",
        "",
        *table(
            [
                "world",
                "what",
                "planted",
                "found",
                "ARI seed 0",
                "ARI seed 1",
                "seed agreement",
                "k-means told k (model features)",
                "k-means told k (all)",
                "k-means by silhouette (k)",
                "ceiling",
                "names (seed 0)",
            ],
            rows,
            "llrrrrrrrrrl",
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=32, help="worlds 0..N-1 (default 32)")
    parser.add_argument("--users", type=int, default=20_000, help="users per world")
    parser.add_argument(
        "--big",
        type=int,
        default=4,
        help="worlds also run at --big-users for seed agreement (default 4)",
    )
    parser.add_argument("--big-users", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    started, clock = datetime.now(UTC), time.perf_counter()

    worlds = []
    for seed in range(args.worlds):
        result = score_world(seed, args.users)
        log(
            f"world {seed}: ARI {result.ari[0]:.3f}/{result.ari[1]:.3f} ({result.found} of "
            f"{result.k}), agreement {result.agreement:.3f}, k-means {result.kmeans_model:.3f}, "
            f"ceiling {result.ceiling:.3f}, {len(result.broken or [])} broken"
        )
        worlds.append(result)
    big = []
    for seed in range(args.big):
        result = score_world(seed, args.big_users, baselines=False)
        log(f"world {seed} at {args.big_users:,}: agreement {result.agreement:.3f}")
        big.append(result)
    bundled = [score_bundled("default", args.users, 0), score_bundled("holdout", args.users, 1)]
    for r in bundled:
        log(f"{r.name}: ARI {r.ari}, agreement {r.agreement:.3f}")
    minutes = (time.perf_counter() - clock) / 60
    args.out.write_text(
        render(worlds, big, bundled, started, minutes, sys.argv[1:]), encoding="utf-8"
    )
    log(f"wrote {args.out} in {minutes:.0f} min")


if __name__ == "__main__":
    main()
