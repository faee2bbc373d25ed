"""Which users the model is fitted on: chosen by a hash of the user id, so that every engine fits
on the same users.

The model fits its scaler and preprocessing on the users it is given and draws its samples from
them (:class:`personas.model.PersonaModel`). Given every user of a log of tens of millions, that
would mean the whole feature table on one machine; given a random sample, a Spark run and a
DuckDB run would fit on different users and could find different personas. So the fit users are
the :data:`FIT_USERS` users whose ids hash lowest (all users of a smaller log): a uniform
sample that is the same set whatever engine, partitioning or row order, picked on Spark without
moving the table (:mod:`personas.spark.assign`). Everyone is then assigned to the personas fitted.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

FIT_USERS = 200_000  # users the model is fitted on at most: its scaler, medians and samples
# (each fit draws sample_size of them); 200k rows of features are about 80 MB on the driver


def user_hash(ids) -> np.ndarray:
    """A 63-bit hash of each user id (its text, UTF-8): the first 8 bytes of BLAKE2b, less the
    top bit, so that it fits Spark's signed 64-bit integers."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(i).encode("utf-8"), digest_size=8).digest()) >> 1
            for i in ids
        ),
        dtype=np.int64,
        count=len(ids),
    )


def fit_users(ids: pd.Index, size: int = FIT_USERS) -> np.ndarray:
    """Boolean mask of ``ids``: the ``size`` users with the lowest hashes (all when fewer).

    Ties of the hash (two ids of one 63-bit hash) are broken by the id's text, as on Spark.
    """
    if len(ids) <= size:
        return np.ones(len(ids), dtype=bool)
    order = np.lexsort((np.asarray(ids, dtype=str), user_hash(ids)))
    mask = np.zeros(len(ids), dtype=bool)
    mask[order[:size]] = True
    return mask
