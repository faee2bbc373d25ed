"""How much of PersonaModel's loss is the persona count? Count rules scored offline.

For each world and seed the model is fitted once (as ``PersonaModel.fit`` does: five fits, each
fit's grouping at every candidate count, the fits' votes on the first fit's sample) and the
agreed personas of EVERY candidate count are kept, with what the rules see (the fits' agreement
and mean silhouette at that count). Each count rule then picks a count per seed, and is scored
like docs/model.md: mean ARI against the planted archetypes, the worse seed's gap to k-means told
the count, and the ARI between the two seeds' personas. The "oracle" picks each seed's best count
by the planted truth: the most any count rule could gain.

    .venv/bin/python bench/count_rules.py --worlds 19,28,22,15,2,0,18,11,6,14,21,23,1,5,3,4,7,8,9,10

Uses bench/model_variants.py's cached UMAP layouts; the fits are kept in bench/data/variants/.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_variants  # noqa: E402  (caches UMAP layouts on disk)
from worlds import kmeans_told_k, planted_ari, world_data  # noqa: E402

import personas.model as pm  # noqa: E402
from personas.features import model_matrix  # noqa: E402
from personas.grouping import REPRODUCIBLE, consensus, mean_agreement, vote  # noqa: E402

SEEDS = (0, 1)


def every_count(X: np.ndarray, seed: int, truth) -> dict[int, dict]:
    """{count: the fits' agreement, mean silhouette, ARI and labels of every user} for one seed."""
    model = pm.PersonaModel(random_state=seed)
    prepared = model._prepare(X, fitting=True)
    model.scaler_ = StandardScaler().fit(prepared)
    scaled = model.scaler_.transform(prepared)
    rng = check_random_state(seed)
    fits = [model._fit_sample(scaled, rng) for _ in range(model.n_fits)]
    reference = scaled[fits[0][0]]
    counts = sorted(set.intersection(*(set(f[2]) for f in fits)))
    out = {}
    for k in counts:
        votes = [vote(scaled[index], grouped[k], reference) for index, _, grouped, _, _ in fits]
        personas, _, _ = consensus(votes)
        model._fit_assigner(reference, personas)
        labels, _ = model._vote(scaled)
        out[k] = {
            "agree": mean_agreement(votes),
            "sil": float(np.mean([f[4]["silhouette"][str(k)] for f in fits])),
            "ari": truth(labels),
            "labels": labels.astype(np.int8),
        }
    return out


def best_by(key):
    return lambda rows: max(rows, key=lambda k: (rows[k][key], -k))


def reproduced_then(fallback, threshold=REPRODUCIBLE):
    """The best separated reproduced count, else ``fallback``'s (the default is max agreement)."""

    def rule(rows):
        firm = [k for k, r in rows.items() if r["agree"] >= threshold]
        return best_by("sil")({k: rows[k] for k in firm}) if firm else fallback(rows)

    return rule


def fewest_within(tolerance):
    """The fewest personas among counts within ``tolerance`` of the best agreement."""

    def rule(rows):
        best = max(r["agree"] for r in rows.values())
        return min(k for k, r in rows.items() if r["agree"] >= best - tolerance)

    return rule


RULES = {
    "default (reproduced, then best separated; else most reproduced)": reproduced_then(
        best_by("agree")
    ),
    "reproduced, else best separated": reproduced_then(best_by("sil")),
    "best separated (silhouette)": best_by("sil"),
    "most reproduced (agreement)": best_by("agree"),
    "fewest within 0.05 of the most reproduced": fewest_within(0.05),
    "agreement x silhouette": lambda rows: max(
        rows, key=lambda k: (rows[k]["agree"] * rows[k]["sil"], -k)
    ),
    "oracle (each seed's best count by the truth)": best_by("ari"),
}


def score(fitted: dict, kmeans: dict) -> None:
    print(
        "| count rule | ARI mean | worst gap to k-means told the count | seed agreement mean / worst "
        "| at or above 0.9 | count right |"
    )
    print("|---|---:|---|---|---:|---:|")
    worlds = sorted({w for w, _ in fitted})
    for name, rule in RULES.items():
        aris, gaps, agreements, right = [], [], [], 0
        for w in worlds:
            chosen = {s: rule(fitted[w, s]["rows"]) for s in SEEDS}
            rows = {s: fitted[w, s]["rows"][chosen[s]] for s in SEEDS}
            aris += [rows[s]["ari"] for s in SEEDS]
            right += sum(chosen[s] == fitted[w, s]["planted"] for s in SEEDS)
            gaps.append((min(rows[s]["ari"] for s in SEEDS) - kmeans[w], w))
            agreements.append(adjusted_rand_score(rows[0]["labels"], rows[1]["labels"]))
        gap, world = min(gaps)
        print(
            f"| {name} | {np.mean(aris):.3f} | {gap:+.3f} (world {world}) | "
            f"{np.mean(agreements):.3f} / {min(agreements):.3f} | "
            f"{sum(a >= 0.9 for a in agreements)} of {len(worlds)} | {right} of {2 * len(worlds)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="19,28,22,15,2,0,18,11,6,14,21,23,1,5")
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    cache = model_variants.HERE / f"counts-{args.users}.pkl"
    fitted = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    kmeans = {}
    for w in (int(x) for x in args.worlds.split(",")):
        data = world_data(w, args.users)
        X = model_matrix(data.features)[0]
        kmeans[w] = planted_ari(data, kmeans_told_k(StandardScaler().fit_transform(X), data.k))
        for seed in SEEDS:
            if (w, seed) not in fitted:
                rows = every_count(X, seed, lambda labels, d=data: planted_ari(d, labels))
                fitted[w, seed] = {"planted": data.k, "rows": rows}
                cache.write_bytes(pickle.dumps(fitted))
            print(
                w,
                seed,
                json.dumps({k: round(r["ari"], 3) for k, r in fitted[w, seed]["rows"].items()}),
                file=sys.stderr,
            )
    score({key: v for key, v in fitted.items() if key[0] in kmeans}, kmeans)


if __name__ == "__main__":
    main()
