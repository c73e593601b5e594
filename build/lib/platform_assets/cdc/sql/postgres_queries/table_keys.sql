-- Each named table in schema public: its replica identity and primary-key columns (check_tables).
SELECT c.relname, c.relreplident,
       coalesce(array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attname IS NOT NULL), '{}')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
WHERE c.relkind = 'r' AND c.relname = ANY(%s)
GROUP BY c.relname, c.relreplident
