-- One BACKUP or RESTORE operation as the server tracks it (system.backups lives in memory).
SELECT id, name, status, error, num_files, total_size, num_entries, uncompressed_size, compressed_size,
       files_read, bytes_read, start_time, end_time
FROM system.backups
WHERE id = {id:String}
