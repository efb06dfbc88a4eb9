"""Data access over DynamoDB. The only package that imports boto3; it raises typed errors, never ClientError."""
