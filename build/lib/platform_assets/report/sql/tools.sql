-- Tool calls on the day {day} per tool: successes, failures other than timeouts, timeouts.
SELECT
    tool_name,
    sum(calls) AS tool_calls,
    sum(successes) AS ok,
    sum(failures) - sum(timeouts) AS other_failures,
    sum(timeouts) AS timed_out
FROM marts.mart_tool_reliability_hourly
WHERE toDate(hour) = {day:Date}
GROUP BY tool_name
ORDER BY tool_calls DESC, tool_name
