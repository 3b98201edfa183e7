"""The world: a headless browser to observe and act in, tasks, and their evaluators."""
