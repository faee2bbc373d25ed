"""The Spark engine (``-p engine=spark``): the DuckDB engine's features, personas and report for
logs beyond one machine.

One implementation of every feature, not two: Spark moves each user's rows to one partition
(a hash of the user id) and each partition runs the package's own load and feature SQL in an
in-process DuckDB (:func:`personas.load.load_events` given the rows and the whole log's
:class:`~personas.load.facts.LogFacts`). The few facts a load learns from the whole log (the
run's "now", the time unit, the span of the data, the event names, the population's totals) are
learnt first, by the same code over every partition, and handed to each. So the two engines give
the same features, to the last bit, and the model fitted on the same users gives the same
personas. docs/scale.md tells the design and how to run it on a cluster.

========== =================================================================================
module     what it does
========== =================================================================================
``session``  the SparkSession (an active one, as in Databricks, or one on ``spark_master``)
             and the input as a DataFrame (a path, a catalog table or the bundled sample)
``features`` the three passes over the partitions: clean and learn the span and names, sum
             the population, compute the features, written by the executors as a Parquet
             dataset (``features.parquet/``, a folder of parts)
``assign``   the fit users' features to the driver, every user assigned on the executors with
             the fitted model broadcast, written as a Parquet dataset
``profile``  every persona's figures (medians, means, KPIs, traits, event mix) as one Spark
             aggregation: the driver gets a row per persona, never the feature table
``report``   the final ids and names given to every user, ``assignments.parquet`` written by
             one task, the agreement with planted personas and the migration's counts: a
             row per persona (or pair) on the driver, never the assignments
========== =================================================================================

pyspark is an optional dependency (``pip install -e '.[spark]'``); without it
``engine=spark`` stops with one sentence saying so.
"""
