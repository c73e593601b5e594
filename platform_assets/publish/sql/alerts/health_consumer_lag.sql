SELECT topic, sum(last_lag) AS lag_messages
FROM
(
    SELECT topic, partition, argMax(lag, observed_at) AS last_lag
    FROM ops.kafka_consumer_lag
    WHERE observed_at >= now() - INTERVAL 5 MINUTE
    GROUP BY topic, partition
)
GROUP BY topic
