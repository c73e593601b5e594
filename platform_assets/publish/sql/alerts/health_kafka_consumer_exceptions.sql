SELECT database, table, sum(arrayCount(t -> t >= now() - INTERVAL 5 MINUTE, exceptions.time)) AS exceptions_5m
FROM system.kafka_consumers
GROUP BY database, table
