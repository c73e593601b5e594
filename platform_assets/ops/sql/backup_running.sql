-- Operations still writing to or reading from a location (the name holds the URL, secrets masked).
SELECT id, status
FROM system.backups
WHERE status IN ('CREATING_BACKUP', 'RESTORING') AND position(name, {url:String}) > 0
