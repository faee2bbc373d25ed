"""From an embedding to persona groupings: the count control of one fit and the consensus of
several (steps 2 to 5 of :mod:`personas.model`, which says why each step is there).

:func:`candidate_groupings` clusters one fit's embedding and derives a grouping for every persona
count (Ward merges down, condensed-tree cuts or 2-means splits up, noise joined by a vote);
:func:`choose_count` picks the count the fits reproduce and separate best, and
:func:`consensus` the personas most fits agree on. Every function here works on plain arrays of
labels (-1: noise), so each can be tested on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils import check_random_state

ASSIGN_NEIGHBOURS = 15  # neighbours voting on a user's persona
SILHOUETTE_POINTS = 3000  # sample rows scoring each candidate persona count
REPRODUCIBLE = 0.8  # agreement between the fits from which a persona count is reproduced


def cluster(clusterer, embedding: np.ndarray) -> np.ndarray:
    """The clusterer's groups of ``embedding`` (-1 = noise), numbered by decreasing size:
    ``fit_predict`` where it has one, else ``fit`` then ``labels_``."""
    if hasattr(clusterer, "fit_predict"):
        labels = clusterer.fit_predict(embedding)
    else:
        clusterer.fit(embedding)
        labels = clusterer.labels_
    return relabel_by_size(np.asarray(labels, dtype=np.int64))


def bisect_groups(embedding: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Split groups in two until there are ``k``: each time the widest one (the largest sum of
    squared distances to its centre in ``embedding``), by 2-means.

    This is how count control reaches a count above the groups of a clusterer without HDBSCAN's
    condensed tree (k-means, agglomerative...). Like the tree cut it only divides the clusterer's
    groups, and the same ``seed`` repeats the same splits, so the groups of a larger count nest
    in those of a smaller one, as the Ward merges below it do. Noise (-1) stays noise; when every
    row is noise, all rows are the first group. Stops early when no group has two distinct rows.
    Labels are numbered by decreasing size.
    """
    from sklearn.cluster import KMeans

    out = labels.copy() if (labels >= 0).any() else np.zeros_like(labels)
    unsplittable: set[int] = set()
    while len(np.unique(out[out >= 0])) < k:
        spread = {}
        for group in set(np.unique(out[out >= 0]).tolist()) - unsplittable:
            points = embedding[out == group]
            spread[group] = float(((points - points.mean(axis=0)) ** 2).sum())
        widest = max(
            (g for g in spread if spread[g] > 0), key=lambda g: (spread[g], -g), default=None
        )
        if widest is None:
            break
        rows = np.flatnonzero(out == widest)
        halves = KMeans(n_clusters=2, n_init=4, random_state=seed).fit_predict(embedding[rows])
        if halves.min() == halves.max():
            unsplittable.add(widest)
            continue
        out[rows[halves == 1]] = out.max() + 1
    return relabel_by_size(out)


def cut_condensed_tree(tree: pd.DataFrame, n_points: int, k: int) -> np.ndarray:
    """Labels from cutting HDBSCAN's condensed tree into (at most) ``k`` clusters.

    Starting from the root, the cluster that splits earliest (lowest lambda, i.e. at the largest
    distance) is replaced by its children until there are ``k``. Points that fall out of the tree
    above the cut are noise (-1). Labels are numbered by decreasing size.
    """
    clusters = tree[tree["child_size"] > 1]
    children: dict[int, list[int]] = {}
    split_at: dict[int, float] = {}
    for parent, child, lam in zip(clusters["parent"], clusters["child"], clusters["lambda_val"]):
        children.setdefault(int(parent), []).append(int(child))
        split_at[int(parent)] = float(lam)
    root = n_points
    frontier = [root]
    while len(frontier) < k:
        splittable = [node for node in frontier if node in children]
        if not splittable:
            break
        node = min(splittable, key=lambda c: (split_at[c], c))
        frontier.remove(node)
        frontier.extend(children[node])
    # map every cluster node to the frontier node above it (or -1 above the cut)
    owner: dict[int, int] = {}
    stack = [(root, -1)]
    frontier_set = set(frontier)
    while stack:
        node, current = stack.pop()
        current = node if node in frontier_set else current
        owner[node] = current
        stack.extend((child, current) for child in children.get(node, []))
    points = tree[tree["child_size"] == 1]
    raw = np.full(n_points, -1, dtype=np.int64)
    raw[points["child"].to_numpy()] = [owner.get(int(p), -1) for p in points["parent"]]
    return relabel_by_size(raw)


def relabel_by_size(raw: np.ndarray) -> np.ndarray:
    """Renumber labels 0..k-1 by decreasing size (ties by first label); -1 stays -1."""
    ids, sizes = np.unique(raw[raw >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -sizes))]
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping.get(v, -1) for v in raw], dtype=np.int64)


def merge_by_ward(features: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Merge clusters into ``k`` by Ward linkage of their centres, each centre one point
    whatever its cluster's size (weighting by size was tried and lost on the random worlds:
    docs/model-variants.md).

    A cluster's centre is the median of its members, feature by feature, not their mean: a few
    members far out on a heavy-tailed feature pull a mean, and which clusters merge then
    changes from layout to layout (docs/model-variants.md, "Median centres")."""
    from scipy.cluster.hierarchy import fcluster, linkage

    ids = np.unique(labels[labels >= 0])
    if len(ids) <= k:
        return labels.copy()
    centres = np.array([np.median(features[labels == i], axis=0) for i in ids])
    groups = fcluster(linkage(centres, method="ward"), k, criterion="maxclust") - 1
    lookup = np.full(int(ids.max()) + 2, -1, dtype=np.int64)
    lookup[ids] = groups
    return relabel_by_size(np.where(labels >= 0, lookup[labels], -1))


def join_noise(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Give every HDBSCAN noise row (-1) the persona most of its nearest labelled rows have, in
    the scaled feature space (:func:`vote`): the rule that assigns every user later, so the
    fitted rows and everyone else are labelled alike."""
    dense = labels >= 0
    if dense.all() or not dense.any():
        return np.where(dense, labels, 0)
    out = labels.copy()
    out[~dense] = vote(features[dense], labels[dense], features[~dense])
    return relabel_by_size(out)


def silhouettes(distances: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of every row, from the rows' pairwise ``distances`` (all -1 when there are
    fewer than two labels)."""
    from sklearn.metrics import silhouette_samples

    if len(np.unique(labels)) < 2:
        return np.full(len(labels), -1.0)
    return silhouette_samples(distances, labels, metric="precomputed")


def candidate_groupings(
    embedding: np.ndarray, features: np.ndarray, clusterer, min_k: int, max_k: int, seed: int = 0
) -> tuple[dict[int, np.ndarray], dict, np.ndarray]:
    """Cluster the embedding; one grouping of every row per persona count in [min_k, max_k].

    Returns {count: persona of every row of ``features``}, what was found (the clusterer's
    groups and noise share, how counts above them were reached, and each candidate's mean
    silhouette over the dense rows) and the clusterer's own groups (-1 = noise). The groups are
    merged by Ward linkage in ``features`` down to each count, and split up to it along
    HDBSCAN's condensed tree where the clusterer has one, else by :func:`bisect_groups`; a count
    the splits cannot reach is left out.
    """
    raw = cluster(clusterer, embedding)
    found = int(raw.max()) + 1
    tree = clusterer.condensed_tree_.to_pandas() if hasattr(clusterer, "condensed_tree_") else None
    candidates: dict[int, np.ndarray] = {}
    for k in range(min_k, max_k + 1):
        if k <= found:
            grouped = merge_by_ward(features, raw, k)
        elif tree is not None:
            grouped = cut_condensed_tree(tree, len(embedding), k)
        else:
            grouped = bisect_groups(embedding, raw, k, seed)
        labels = join_noise(features, grouped)
        candidates.setdefault(int(labels.max()) + 1, labels)
    # separation of each candidate, on the rows HDBSCAN found in dense groups (the noise rows
    # between personas blur every candidate alike); all rows when too few are dense
    dense = raw >= 0
    rows = np.flatnonzero(dense) if dense.sum() > 10 * max_k else np.arange(len(features))
    if len(rows) > SILHOUETTE_POINTS:  # the same rows score every candidate
        rows = np.sort(check_random_state(seed).choice(rows, SILHOUETTE_POINTS, replace=False))
    distances = pairwise_distances(features[rows])
    silhouette = {
        str(k): round(float(np.mean(silhouettes(distances, labels[rows]))), 4)
        for k, labels in candidates.items()
    }
    return (
        candidates,
        {
            "clusters_found": found,
            "noise_share": round(float(np.mean(~dense)), 4),
            "split_by": "condensed tree" if tree is not None else "2-means bisection",
            "silhouette": silhouette,
        },
        raw,
    )


def vote(sample: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Persona of each of ``rows``: the one most of its :data:`ASSIGN_NEIGHBOURS` nearest
    ``sample`` rows have (a fit's labels carried onto other users)."""
    knn = KNeighborsClassifier(n_neighbors=min(ASSIGN_NEIGHBOURS, len(sample)), algorithm="brute")
    return knn.fit(sample, labels).predict(rows)


def common_counts(fit_votes: list[dict[int, np.ndarray]]) -> tuple[int, dict[int, list]]:
    """The fits that decide together and their personas at each count they all reached.

    ``fit_votes`` holds, per fit, {count: personas of the same rows}. Returns the number of fits
    that decide (all of them, or only the first when they reached no count in common) and
    {count: [personas of that count in each of those fits]}.
    """
    common = set.intersection(*(set(v) for v in fit_votes))
    deciding = fit_votes if common else fit_votes[:1]
    counts = sorted(common) if common else sorted(fit_votes[0])
    return len(deciding), {k: [v[k] for v in deciding] for k in counts}


def mean_agreement(labelings: list[np.ndarray]) -> float:
    """Mean adjusted Rand index over every pair of ``labelings`` of the same rows."""
    from itertools import combinations

    from sklearn.metrics import adjusted_rand_score

    pairs = [adjusted_rand_score(a, b) for a, b in combinations(labelings, 2)]
    return float(np.mean(pairs)) if pairs else float("nan")


def choose_count(scores: dict[int, float], separation: dict[int, float]) -> int:
    """Among the counts the fits reproduce (``scores``, their agreement, at least
    :data:`REPRODUCIBLE`; else the most reproduced count), the one whose personas are best
    separated (``separation``: mean silhouette). Reproducible alone is not enough: merging two
    clear groups the same way every time is reproducible too."""
    firm = [k for k, v in scores.items() if v >= REPRODUCIBLE]
    if not firm:
        firm = [max(scores, key=lambda k: (scores[k], -k))]
    return max(firm, key=lambda k: (separation.get(k, -1.0), -k))


def align(labels: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """``labels`` renumbered to match ``anchor`` as well as possible (the most users kept under the
    same number, by the Hungarian method on their contingency table)."""
    from scipy.optimize import linear_sum_assignment

    size = int(max(labels.max(), anchor.max())) + 1
    table = np.zeros((size, size), dtype=np.int64)
    np.add.at(table, (labels, anchor), 1)
    rows, cols = linear_sum_assignment(-table)
    mapping = np.empty(size, dtype=np.int64)
    mapping[rows] = cols
    return mapping[labels]


def consensus(labelings: list[np.ndarray]) -> tuple[np.ndarray, list[float], dict[int, float]]:
    """Personas most of the ``labelings`` (of the same rows) agree on; each fit's agreement with
    them; and per persona its mean best overlap (Jaccard) with one persona of each fit.

    The fits' persona numbers are first matched to the fit that agrees best with the others;
    then each row takes its most frequent persona (the anchor fit's on a tie).
    """
    from sklearn.metrics import adjusted_rand_score

    if len(labelings) == 1:
        only = relabel_by_size(labelings[0])
        return only, [1.0], {int(p): 1.0 for p in np.unique(only)}
    agreement = [
        np.mean([adjusted_rand_score(a, b) for b in labelings if b is not a]) for a in labelings
    ]
    anchor = labelings[int(np.argmax(agreement))]
    aligned = np.array([align(labels, anchor) for labels in labelings])
    counts = np.zeros((aligned.max() + 1, aligned.shape[1]), dtype=np.int64)
    for row in aligned:
        counts[row, np.arange(aligned.shape[1])] += 1
    counts[anchor, np.arange(len(anchor))] += 1  # the anchor breaks ties
    final = relabel_by_size(counts.argmax(axis=0))
    per_fit = [float(adjusted_rand_score(labels, final)) for labels in labelings]
    overlap = {}
    for p in np.unique(final):
        members = final == p
        overlap[int(p)] = float(
            np.mean(
                [
                    max(
                        np.sum(members & (labels == q)) / np.sum(members | (labels == q))
                        for q in np.unique(labels)
                    )
                    for labels in labelings
                ]
            )
        )
    return final, per_fit, overlap
