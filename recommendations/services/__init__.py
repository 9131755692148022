"""Writes and serving of the recommender: `training` (train, evaluate, activate),
`serving` (recommend, similar items), `feedback` (record a mentee's feedback)."""
