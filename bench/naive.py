"""The notebook approach, as a script: pandas features -> StandardScaler -> UMAP -> HDBSCAN.

This is the baseline that ``bench/run.py`` times against ``personas run``: what an analyst would
write by hand in a notebook. The whole log is read into memory with pandas, per-user features are
built with ``groupby``, and UMAP (default settings, ``random_state=0``) and HDBSCAN
(``min_cluster_size`` = 1% of users) run on ALL users. Nothing is smoothed, sampled or tuned.

Prints one JSON line: users, clusters, noise share and the adjusted Rand index against the
planted personas (planted noise users excluded; HDBSCAN noise, label -1, counts as its own label).

    python bench/naive.py --events bench/data/sample-20000.parquet \
                          --truth bench/data/sample-20000.truth.csv
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

SESSION_GAP = pd.Timedelta(minutes=30)


def user_features(events: pd.DataFrame) -> pd.DataFrame:
    """One row per user: event counts, sessions, revenue, orders, funnel ratios, recency..."""
    events = events.sort_values(["user_id", "timestamp"])
    counts = events.pivot_table(
        index="user_id", columns="event", values="timestamp", aggfunc="count", fill_value=0
    )
    counts.columns = [f"n_{c}" for c in counts.columns]

    gap = events.groupby("user_id")["timestamp"].diff()
    events["session"] = (gap.isna() | (gap > SESSION_GAP)).cumsum()
    purchases = events[events["event"] == "purchase"]
    now = events["timestamp"].max()

    by_user = events.groupby("user_id")
    feats = pd.DataFrame(
        {
            "sessions": by_user["session"].nunique(),
            "first_seen_days": (now - by_user["timestamp"].min()).dt.days,
            "recency_days": (now - by_user["timestamp"].max()).dt.days,
        }
    )
    orders = purchases.groupby("user_id")
    feats["orders"] = orders.size()
    feats["revenue"] = orders["amount"].sum()
    feats["discount_share"] = orders["discount"].mean()
    feats[["orders", "revenue"]] = feats[["orders", "revenue"]].fillna(0)
    feats["aov"] = (feats["revenue"] / feats["orders"]).fillna(0)
    feats["discount_share"] = feats["discount_share"].fillna(0)
    feats = feats.join(counts)
    for col in ("n_view_item", "n_add_to_cart", "n_purchase", "n_email_open", "n_email_click"):
        if col not in feats:
            feats[col] = 0
    feats["view_to_cart"] = (feats["n_add_to_cart"] / feats["n_view_item"]).fillna(0)
    feats["cart_to_purchase"] = (feats["n_purchase"] / feats["n_add_to_cart"]).fillna(0)
    return feats.replace([np.inf, -np.inf], 0)


def cluster(feats: pd.DataFrame, min_cluster_share: float) -> np.ndarray:
    """StandardScaler -> UMAP(random_state=0) -> HDBSCAN; returns labels (-1 = noise)."""
    import hdbscan
    import umap
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(feats.to_numpy(dtype=float))
    embedding = umap.UMAP(random_state=0).fit_transform(scaled)
    min_size = max(2, int(min_cluster_share * len(feats)))
    return hdbscan.HDBSCAN(min_cluster_size=min_size).fit_predict(embedding)


def planted_ari(user_ids: pd.Index, labels: np.ndarray, truth_path: str) -> float:
    """Adjusted Rand index against the planted personas, planted noise users left out."""
    from sklearn.metrics import adjusted_rand_score

    truth = pd.read_csv(truth_path, dtype={"user_id": str})
    found = pd.DataFrame({"user_id": user_ids.astype(str), "label": labels})
    both = truth.merge(found, on="user_id")
    both = both[both["persona"] != "noise"]
    return round(float(adjusted_rand_score(both["persona"], both["label"])), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", required=True, help="event log (Parquet)")
    parser.add_argument("--truth", required=True, help="<stem>.truth.csv beside the sample")
    parser.add_argument(
        "--min-cluster-share",
        type=float,
        default=0.01,
        help="HDBSCAN min_cluster_size as a share of users (default 0.01)",
    )
    args = parser.parse_args()

    feats = user_features(pd.read_parquet(args.events))
    labels = cluster(feats, args.min_cluster_share)
    print(
        json.dumps(
            {
                "approach": "naive",
                "users": len(feats),
                "features": feats.shape[1],
                "clusters": int(len(set(labels) - {-1})),
                "noise_share": round(float(np.mean(labels == -1)), 4),
                "ari_vs_planted": planted_ari(feats.index, labels, args.truth),
            }
        )
    )


if __name__ == "__main__":
    main()
