"""Writes of the conversations app. Each public function is keyword-only, typed, and owns
its transaction; a rule it refuses is a common.errors.DomainError."""
