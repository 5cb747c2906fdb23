"""Practice: tempo and key changes, the beat grid, count-in and clicks."""
