-- One table's UTC day to Parquet, written by ClickHouse itself (no rows pass through Python).
-- $sink is s3(...) or file(...): the one difference between the two targets.
-- $partition_by is empty for a day that fits one object; a bigger day is split into
-- part-NNNNN objects by a hash of the table's sort key, so a re-run writes the same sets.
-- ORDER BY the sort key: the MergeTree reads in order, and a re-run writes the rows alike.
INSERT INTO FUNCTION $sink
$partition_by
SELECT *
FROM $table
WHERE $day_expr = toDate('$day')
ORDER BY $order_by
