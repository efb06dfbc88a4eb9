"""WorldLand Cloud's shared domain: models, settings, DynamoDB access, allocation and auth."""
