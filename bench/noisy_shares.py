"""Does weighting noisy shares by their reliability (``features.NOISY_SHARE``) hold on order
tables it was not chosen on, including ones whose archetypes DO differ in weekend shopping?

The 32 worlds of docs/model.md never plant a weekend difference in an order table (the
generator's ``ORDER_ASPECTS`` leave it out), so on them weighting ``weekend_share`` down could
only help. Here the generator may also change an archetype's weekend share in order tables, on
fresh seeds, and every world is fitted twice per seed: as a run fits (noisy shares weighted) and
with no weights (``NOISY_SHARE`` = 0), beside k-means told the count.

    .venv/bin/python bench/noisy_shares.py --worlds 100-111

Prints one JSON row per world and a summary; docs/model-variants.md keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from worlds import kmeans_told_k, planted_ari, world_data  # noqa: E402

import personas.features as features  # noqa: E402
import personas.worlds as generator  # noqa: E402
from personas.model import FeatureMatrix, PersonaModel  # noqa: E402

FOLDER = BENCH / "data" / "worlds-weekend-orders"  # cached logs and features, git-ignored
SEEDS = (0, 1)


def weekend_planted(world) -> bool:
    """Whether some archetype's weekend share differs from the shop's usual one."""
    values = {round(a.weekend, 6) for a in world.cast.archetypes.values()}
    return len(values) > 1


def fit(data, noisy_share: float, seed: int) -> tuple[np.ndarray, dict]:
    features.NOISY_SHARE = noisy_share  # read by FeatureMatrix.fit
    model = PersonaModel(random_state=seed, preprocessor=FeatureMatrix()).fit(data.features)
    return model.predict(data.features), model.preprocessor_.weights_


def score(seed: int, users: int) -> dict:
    data = world_data(seed, users, FOLDER, order_table=True)
    default = features.NOISY_SHARE
    reliability = features.share_reliability(data.features, ["weekend_share"])
    row = {
        "world": seed,
        "planted": data.k,
        "users": len(data.features),
        "weekend_planted": weekend_planted(data.world),
        "orders_per_buyer": round(float(data.features["orders"].mean()), 2),
        "weekend_reliability": round(reliability.get("weekend_share", float("nan")), 3),
    }
    for name, threshold in (("weighted", default), ("unweighted", 0.0)):
        labels = [fit(data, threshold, s)[0] for s in SEEDS]
        row[name] = [round(planted_ari(data, lab), 4) for lab in labels]
        row[f"{name}_agreement"] = round(float(adjusted_rand_score(*labels)), 4)
    features.NOISY_SHARE = default
    from personas.features import model_matrix

    scaled = StandardScaler().fit_transform(model_matrix(data.features)[0])
    row["kmeans"] = round(planted_ari(data, kmeans_told_k(scaled, data.k)), 4)
    return row


def seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", default="100-111", help="seeds: 100-111 or 100,104")
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    FOLDER.mkdir(parents=True, exist_ok=True)
    generator.ORDER_ASPECTS = (*generator.ORDER_ASPECTS, "weekend")
    rows = []
    for seed in seeds(args.worlds):
        rows.append(score(seed, args.users))
        print(json.dumps(rows[-1]), flush=True)
    for name in ("weighted", "unweighted"):
        worse = [min(r[name]) for r in rows]
        gap = [min(r[name]) - r["kmeans"] for r in rows]
        agree = [r[f"{name}_agreement"] for r in rows]
        print(
            f"{name}: mean ARI (worse seed) {np.mean(worse):.3f}, worst {min(worse):.3f}; "
            f"against k-means told the count mean {np.mean(gap):+.3f}, worst {min(gap):+.3f}; "
            f"seed agreement mean {np.mean(agree):.3f}, worst {min(agree):.3f}"
        )


if __name__ == "__main__":
    main()
