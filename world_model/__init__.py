"""Predicting what an action does to a page, and measuring how right the predictions were."""
