SELECT name AS disk, 1 - free_space / total_space AS used
FROM system.disks
WHERE total_space > 0
