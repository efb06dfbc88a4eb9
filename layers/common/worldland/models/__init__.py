"""Pydantic models: one per request and per response; limits live on the fields."""
