-- Column names of the named tables in schema public, in table order.
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = ANY(%s) ORDER BY table_name, ordinal_position
