"""Region routing: rules that give a task's host a preferred region, and the fallback to any."""
