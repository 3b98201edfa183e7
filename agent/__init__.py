"""The planner: propose candidate actions, imagine them, score them, act on the best."""
