"""Export domain: daily Parquet exports of the raw tables and marts, written by ClickHouse
itself to S3 or a local directory, with a manifest per table and day and a read-back check."""
