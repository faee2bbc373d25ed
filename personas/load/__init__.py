"""The load stage: read, type, clean, code and sum the raw event log in DuckDB.

:func:`load_events` turns whatever the user points at (CSV, CSV.gz, Parquet, a folder or glob of
Parquet, or the bundled synthetic sample) into tables in one DuckDB connection, returned as an
:class:`EventLog` with what was learnt on the way (counts, roles, the rows each cleaning rule
touched). Nothing is copied into pandas. In order, one module per concern:

============ =========================================================================
module       what it does
============ =========================================================================
``source``   opens the input as the view ``raw`` (CSV dialects from ``sniff``), checks
             each Parquet part, looks up the columns the parameters name
``values``   the SQL that types the time, amount and quantity columns, and the checks
             that refuse values that are none
``cleaning`` the view ``kept``: rows dropped or repaired by :data:`CLEANING_RULES`,
             counted in one pass
``window``   the start/end window and the reference date
``roles``    the event-name vocabulary: which names are views, carts, purchases, ...
``encoding`` small integer codes for every name and value, and the one sort per user
             (the view ``event_rows``)
``stage``    :func:`load_events`, which runs the above in order, then the per-user
             pass of :mod:`personas.activity`
============ =========================================================================

What the stage hands on (the tables later stages may read)
------------------------------------------------------------
``user_activity`` (table, one row per user ``uid``)
    The per-user tallies the features are computed from; its columns are listed in
    :mod:`personas.activity`. The per-user pass runs here, not in the features stage, because
    it reads the same sort that drops the duplicate rows: the load's counts of users, events and
    duplicates come out of it, and a second sort of the log would cost more than the rest of the
    features together.
``users (uid, user_id)``
    The user ids and their codes; codes follow the text order of the ids.
``event_names (code, event, role)``
    Every event name kept, its code and the role it maps to (``other`` for none).
``platforms``, ``categories``, ``products``
    Codes of the optional columns' values (``pcode``, ``ccode``, ``prcode``).
``events`` (view)
    The clean log decoded, for people exploring it in SQL and for tests; each read sorts the
    log again. Columns:

    =========== ========= ====================================================================
    column      type      meaning
    =========== ========= ====================================================================
    user_id     VARCHAR   the user
    ts          TIMESTAMP event time, naive UTC
    event       VARCHAR   the event name as given (``'purchase'`` for order tables)
    role        VARCHAR   the role it maps to (``view``, ``cart``, ``purchase``, ... or ``other``)
    amount      DOUBLE    revenue of the event, NULL when unknown
    quantity    DOUBLE    items on the event (``quantity`` column when present), NULL when unknown
    discount    BOOLEAN   a discount was used (NULL without a ``discount`` column)
    platform    VARCHAR   ``platform`` column when present
    category    VARCHAR   ``category`` column when present
    product     VARCHAR   ``product`` column when present (a product id or name)
    session_no  BIGINT    session number within the user, from 1, in the order sessions start
    =========== ========= ====================================================================

``kept`` (view)
    The rows left after the cleaning rules (user_id, ts, event, amount, quantity, discount,
    platform, category, product, session_key), exact duplicates still in. The forecast's
    purchase summary reads it (:func:`personas.forecast.purchase_rows` drops the duplicates by
    hashing), because reading ``events`` would sort the whole log again.

The views ``raw``, ``typed``, ``coded`` and ``event_rows`` are the stage's own steps; later
stages do not read them. ``personas run --explain`` prints the SQL of every step
(:mod:`personas.explain`).
"""

from .cleaning import CLEANING_RULES
from .roles import load_role_vocabulary, normalise_event_name
from .source import OPTIONAL_COLUMNS, suggest_column
from .stage import DUCKDB_MEMORY_LIMIT, EventLog, connect, load_events, track_progress

__all__ = [
    "CLEANING_RULES",
    "DUCKDB_MEMORY_LIMIT",
    "OPTIONAL_COLUMNS",
    "EventLog",
    "connect",
    "load_events",
    "load_role_vocabulary",
    "normalise_event_name",
    "suggest_column",
    "track_progress",
]
