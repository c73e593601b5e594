INSERT INTO ops.kafka_consumer_lag (observed_at, topic, consumer_group, partition, high_watermark, committed, lag)
SELECT observed_at, topic, consumer_group, partition, high_watermark, committed, lag
FROM format(
    JSONEachRow,
    'observed_at DateTime64(3, \'UTC\'), topic String, consumer_group String, partition UInt32, high_watermark Int64, committed Int64, lag UInt64',
    {rows:String}
)
