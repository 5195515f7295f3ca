"""What every layer uses: settings, observability, time budgets, pacing and the cold-start hooks."""
