"""What every linklab Spark job shares: the session, and each record's number.

linklab writes this module next to the job's script in `work_dir/spark/`, so the script imports
it from its own folder (the driver's; the jobs use no Python functions on the executors).

A record's number is its position in its extract: part files in the order the job lists them,
rows in file order. It comes from the Parquet reader's hidden `_metadata.file_path` and
`_metadata.row_index` columns plus each part file's row offset (never from
monotonically_increasing_id, whose values depend on the partitioning).
"""

import json
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def session(job, phase):
    builder = SparkSession.builder.appName(f"linklab-link-{phase}")
    if job["set_master"]:
        # Launched with plain python: the master and conf come from the job. Under spark-submit
        # they came on its command line and are not overridden here.
        builder = builder.master(job["master"])
        for key, value in job["conf"].items():
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def records(spark, extract, columns=None):
    """The extract's `columns` (default: its token columns) and each row's number (`record`)."""
    parts = extract["parts"]
    frame = spark.read.parquet(*[p["path"] for p in parts])
    offsets = F.create_map(
        *[x for p in parts for x in (F.lit(p["name"]), F.lit(p["offset"]).cast("long"))]
    )
    name = F.expr("url_decode(regexp_extract(_metadata.file_path, '([^/]*)$', 1))")
    offset = F.element_at(offsets, name)
    record = F.when(
        offset.isNull(), F.raise_error(F.lit("a part file that the job does not list was read"))
    ).otherwise(offset + F.col("_metadata.row_index"))
    if columns is None:
        columns = [t for t in extract["tokens"] if t is not None]
    return frame.select(record.cast("long").alias("record"), *columns)


def main(script, phases):
    """Runs the phase named on the command line (`script JOB.json PHASE`) in a new session."""
    if len(sys.argv) != 3 or sys.argv[2] not in phases:
        sys.stderr.write(f"usage: {script} JOB.json {'|'.join(phases)}\n")
        sys.exit(2)
    with open(sys.argv[1], encoding="utf-8") as handle:
        job = json.load(handle)
    phase = sys.argv[2]
    spark = session(job, phase)
    try:
        phases[phase](spark, job)
    finally:
        spark.stop()
