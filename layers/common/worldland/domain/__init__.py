"""Domain logic: pure functions over models, handed their repositories; no AWS imports."""
